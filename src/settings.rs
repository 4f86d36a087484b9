//! Queue settings: applying a change to a queue's settings, and the rules a queue (and its push
//! subscribers) must keep. Plain functions, shared by the store, the REST API and the controller.

use crate::model::{
    Alert, AlertDirection, AlertType, AlertsChange, ChangedBy, DEFAULT_MAX_RESERVATIONS,
    DeadLetter, DeadLetterPatch, MAX_ALERTS, MAX_MAX_RESERVATIONS, MAX_MESSAGE_EXPIRATION,
    MAX_MESSAGE_TIMEOUT, MAX_PUSH_TIMEOUT, MAX_QUEUE_MESSAGE_SIZE, MAX_RETRIES, MAX_RETRIES_DELAY,
    MIN_MESSAGE_TIMEOUT, MIN_RETRIES_DELAY, PushConfig, QueueConfig, QueueSettings, QueueType,
    Subscriber,
};

/// Headers that frame the HTTP request itself; set by anyone else they would break delivery.
pub const FRAMING_HEADERS: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

/// Longest subscriber name, in bytes.
const MAX_SUBSCRIBER_NAME: usize = 128;

/// A change that would leave a queue in a state it may not be in; the text says why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(msg.into()))
}

/// Where a subscriber's URL points.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Parsed once: delivery posts to it and checks its address.
    Http(reqwest::Url),
    /// Another queue on this service: `project` is `None` for the pushing queue's own project.
    Queue {
        project: Option<String>,
        token: Option<String>,
        queue: String,
    },
    /// A queue on another IronMQ-compatible server: delivery posts the message to `messages`
    /// (`https://host[:port]/3/projects/P/queues/Q/messages`) with `token`.
    Remote {
        messages: reqwest::Url,
        token: String,
    },
}

/// Reads a subscriber URL.
pub fn parse_target(url: &str) -> Result<Target, Invalid> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return match reqwest::Url::parse(url) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(Target::Http(u)),
            _ => invalid(format!("Invalid subscriber url {url:?}")),
        };
    }
    if let Some(rest) = url.strip_prefix("ironmq://") {
        // ironmq:///queue or ironmq://project:token@/queue on this service, or
        // ironmq://project:token@host[:port]/queue on another one.
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let queue = path.trim_end_matches('/');
        if queue.is_empty() || queue.contains('/') {
            return invalid(format!("Invalid subscriber url {url:?}: no queue name"));
        }
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (project, token) = match credentials {
            Some(c) => {
                let (p, t) = c.split_once(':').unwrap_or((c, ""));
                (
                    Some(p.to_string()).filter(|p| !p.is_empty()),
                    Some(t.to_string()).filter(|t| !t.is_empty()),
                )
            }
            None => (None, None),
        };
        // The target must be a queue the REST API can reach.
        crate::model::check_queue_name(queue)
            .and_then(|()| {
                project
                    .as_deref()
                    .map_or(Ok(()), crate::model::check_project)
            })
            .map_err(|e| Invalid(format!("Invalid subscriber url {url:?}: {e}")))?;
        if !host.is_empty() {
            return remote_target(url, host, project, token, queue);
        }
        return Ok(Target::Queue {
            project,
            token,
            queue: queue.to_string(),
        });
    }
    invalid(format!(
        "Invalid subscriber url {url:?}: use http://, https:// or ironmq:///queue"
    ))
}

/// A subscriber URL to show (push status, error-queue reports): a password or token in it
/// (`ironmq://project:token@...`, `https://user:password@...`) replaced by `***`.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _secret)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// `ironmq://project:token@host[:port]/queue`: the messages endpoint of that queue over HTTPS.
fn remote_target(
    url: &str,
    host: &str,
    project: Option<String>,
    token: Option<String>,
    queue: &str,
) -> Result<Target, Invalid> {
    let (Some(project), Some(token)) = (project, token) else {
        return invalid(format!(
            "Invalid subscriber url {url:?}: a queue on another server needs project:token@"
        ));
    };
    let mut messages = reqwest::Url::parse(&format!("https://{host}/"))
        .ok()
        .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()) && u.path() == "/")
        .ok_or_else(|| Invalid(format!("Invalid subscriber url {url:?}: bad host {host:?}")))?;
    messages
        .path_segments_mut()
        .map_err(|()| Invalid(format!("Invalid subscriber url {url:?}")))?
        .clear()
        .extend(["3", "projects", &project, "queues", queue, "messages"]);
    Ok(Target::Remote { messages, token })
}

/// Names unique, URLs deliverable, headers well-formed and not framing ones.
pub fn check_subscribers(subscribers: &[Subscriber]) -> Result<(), Invalid> {
    for (i, s) in subscribers.iter().enumerate() {
        // The name goes out in the Iron-Subscriber-Name header and in acknowledgement URLs.
        if s.name.is_empty()
            || s.name.len() > MAX_SUBSCRIBER_NAME
            || s.name.chars().any(char::is_control)
            || crate::model::is_dot_segment(&s.name)
        {
            return invalid(format!(
                "subscribers[{i}] needs a name of 1 to {MAX_SUBSCRIBER_NAME} bytes, without control characters, not . or .."
            ));
        }
        parse_target(&s.url)?;
        if s.retries.is_some_and(|r| r > MAX_RETRIES) {
            return invalid(format!(
                "Subscriber {:?}: retries must be at most {MAX_RETRIES}",
                s.name
            ));
        }
        if s.retries_delay
            .is_some_and(|d| !(MIN_RETRIES_DELAY..=MAX_RETRIES_DELAY).contains(&d))
        {
            return invalid(format!(
                "Subscriber {:?}: retries_delay must be between {MIN_RETRIES_DELAY} and {MAX_RETRIES_DELAY} seconds",
                s.name
            ));
        }
        check_delivery_controls(s)?;
        for (name, value) in &s.headers {
            if FRAMING_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return invalid(format!(
                    "Subscriber {:?} may not set the {name} header",
                    s.name
                ));
            }
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(value).is_err()
            {
                return invalid(format!(
                    "Subscriber {:?} has an invalid header {name:?}",
                    s.name
                ));
            }
        }
    }
    Ok(())
}

/// Most deliveries a second a subscriber may be limited to, and most in flight at once.
const MAX_PER_SECOND: f64 = 100_000.0;
const MAX_CONCURRENCY: u32 = 10_000;
/// Most failed tries in a row before a pause, and the longest first probe interval.
const MAX_PAUSE_AFTER: u32 = 1_000;
const MAX_PROBE_INTERVAL: u64 = 3_600;

/// What this process can send as push JWTs (set at start by `push::auth::Bearers`): whether
/// it holds a signing key, and the only directory token files may be read from.
static JWT_SOURCES: std::sync::RwLock<(bool, Option<std::path::PathBuf>)> =
    std::sync::RwLock::new((false, None));

pub fn set_jwt_sources(signing_key: bool, token_dir: Option<std::path::PathBuf>) {
    *JWT_SOURCES.write().unwrap_or_else(|e| e.into_inner()) = (signing_key, token_dir);
}

/// The file a subscriber's `jwt.token_file` names, if it lies in the token directory
/// (`FERROMQ_PUSH_TOKEN_DIR`, links resolved): no other file of the server may be sent out.
pub fn token_file(path: &str) -> Result<std::path::PathBuf, String> {
    let dir = JWT_SOURCES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .1
        .clone();
    let outside = || match &dir {
        Some(dir) => format!(
            "jwt.token_file must name a file in {} (FERROMQ_PUSH_TOKEN_DIR)",
            dir.display()
        ),
        None => "jwt.token_file needs FERROMQ_PUSH_TOKEN_DIR on the server".to_string(),
    };
    let dir = dir.as_ref().ok_or_else(outside)?;
    if !std::path::Path::new(path).starts_with(dir) {
        return Err(outside());
    }
    let resolved = std::fs::canonicalize(path)
        .map_err(|err| format!("cannot read jwt.token_file {path:?}: {err}"))?;
    match std::fs::canonicalize(dir) {
        Ok(dir) if resolved.starts_with(&dir) => Ok(resolved),
        _ => Err(outside()),
    }
}

/// Flow control, circuit breaker and authentication settings of one subscriber.
fn check_delivery_controls(s: &Subscriber) -> Result<(), Invalid> {
    let name = &s.name;
    if let Some(rate) = s.max_per_second
        && !(rate > 0.0 && rate <= MAX_PER_SECOND)
    {
        return invalid(format!(
            "Subscriber {name:?}: max_per_second must be above 0 and at most {MAX_PER_SECOND}"
        ));
    }
    if s.max_concurrency
        .is_some_and(|n| !(1..=MAX_CONCURRENCY).contains(&n))
    {
        return invalid(format!(
            "Subscriber {name:?}: max_concurrency must be between 1 and {MAX_CONCURRENCY}"
        ));
    }
    if s.pause_after_failures
        .is_some_and(|n| !(1..=MAX_PAUSE_AFTER).contains(&n))
    {
        return invalid(format!(
            "Subscriber {name:?}: pause_after_failures must be between 1 and {MAX_PAUSE_AFTER}"
        ));
    }
    if s.probe_interval
        .is_some_and(|n| !(1..=MAX_PROBE_INTERVAL).contains(&n))
    {
        return invalid(format!(
            "Subscriber {name:?}: probe_interval must be between 1 and {MAX_PROBE_INTERVAL} seconds"
        ));
    }
    if let Some(jwt) = &s.jwt {
        if !matches!(parse_target(&s.url), Ok(Target::Http(_))) {
            return invalid(format!(
                "Subscriber {name:?}: jwt is for http(s) subscribers"
            ));
        }
        if jwt
            .audience
            .as_ref()
            .is_some_and(|a| a.is_empty() || a.len() > 2048)
        {
            return invalid(format!(
                "Subscriber {name:?}: jwt.audience must be 1 to 2048 bytes"
            ));
        }
    }
    Ok(())
}

/// Whether this process can send the JWTs subscribers ask for: a readable `token_file`, or its
/// own signing key. Checked where subscribers are set over the API (on the data plane, which
/// pushes), not for Subscriptions, whose controller runs elsewhere: a push that cannot get its
/// token is a failed try that says why.
pub fn check_jwt_sources(subscribers: &[Subscriber]) -> Result<(), Invalid> {
    for s in subscribers {
        let (name, Some(jwt)) = (&s.name, &s.jwt) else {
            continue;
        };
        let signing_key = JWT_SOURCES.read().unwrap_or_else(|e| e.into_inner()).0;
        match &jwt.token_file {
            Some(path) => {
                let read = token_file(path).and_then(|file| {
                    std::fs::read_to_string(&file)
                        .map_err(|err| format!("cannot read jwt.token_file {path:?}: {err}"))
                });
                if let Err(why) = read {
                    return invalid(format!("Subscriber {name:?}: {why}"));
                }
            }
            None if !signing_key => {
                return invalid(format!(
                    "Subscriber {name:?}: jwt needs a key source: give jwt.token_file, or start the server with FERROMQ_PUSH_JWT_KEY"
                ));
            }
            None => {}
        }
    }
    Ok(())
}

/// Adds subscribers to a list, replacing those with the same name.
pub fn merge_subscribers(current: &[Subscriber], added: &[Subscriber]) -> Vec<Subscriber> {
    let mut merged: Vec<Subscriber> = current
        .iter()
        .filter(|s| !added.iter().any(|a| a.name == s.name))
        .cloned()
        .collect();
    merged.extend(added.iter().cloned());
    merged
}

/// The settings a queue stands with after `change`, or why the change is refused.
/// `queue` is the queue's own name (its error queue may not be itself). A push queue set up
/// over REST needs a subscriber; one declared by a resource may wait for its Subscriptions
/// (its messages are kept meanwhile).
pub fn apply(
    current: Option<&QueueConfig>,
    change: &QueueSettings,
    queue: &str,
    by: ChangedBy,
) -> Result<QueueConfig, Invalid> {
    let mut next = current.cloned().unwrap_or_default();
    let patch = change.push.clone().unwrap_or_default();
    let gives_subscribers = patch.subscribers.as_ref().is_some_and(|s| !s.is_empty());
    next.queue_type = match change.queue_type {
        Some(t) => t,
        // Push settings on a new queue without a type make a multicast queue, as in IronMQ.
        None if current.is_none() && gives_subscribers => QueueType::Multicast,
        None => next.queue_type,
    };
    if let Some(t) = change.message_timeout {
        if !(MIN_MESSAGE_TIMEOUT..=MAX_MESSAGE_TIMEOUT).contains(&t) {
            return invalid(format!(
                "message_timeout must be between {MIN_MESSAGE_TIMEOUT} and {MAX_MESSAGE_TIMEOUT} seconds"
            ));
        }
        next.message_timeout = t;
    }
    if let Some(e) = change.message_expiration {
        if !(1..=MAX_MESSAGE_EXPIRATION).contains(&e) {
            return invalid(format!(
                "message_expiration must be between 1 and {MAX_MESSAGE_EXPIRATION} seconds"
            ));
        }
        next.message_expiration = e;
    }
    if let Some(m) = change.max_message_size {
        if m > MAX_QUEUE_MESSAGE_SIZE {
            return invalid(format!(
                "max_message_size must be at most {MAX_QUEUE_MESSAGE_SIZE} bytes (0: the server's limit)"
            ));
        }
        next.max_message_size = m;
    }
    if let Some(d) = &change.dead_letter {
        next.dead_letter = dead_letter(next.dead_letter.take(), d, queue)?;
    }
    if let Some(a) = &change.alerts {
        next.alerts = alerts(std::mem::take(&mut next.alerts), a, queue)?;
    }
    if next.queue_type.is_push() && !next.alerts.is_empty() {
        return invalid("Push queues do not support alerts (remove the alerts first)");
    }
    if next.queue_type.is_push() && next.dead_letter.is_some() {
        return invalid(
            "dead_letter is for pull queues: push queues have an error_queue (remove the dead_letter first)",
        );
    }
    if !next.queue_type.is_push() {
        if gives_subscribers {
            return invalid(
                "Subscribers can only be set on a push queue (type unicast or multicast)",
            );
        }
        return Ok(next);
    }
    let mut push = next.push.take().unwrap_or_default();
    if let Some(subscribers) = patch.subscribers {
        push.subscribers = subscribers;
    }
    if let Some(r) = patch.retries {
        if r > MAX_RETRIES {
            return invalid(format!("retries must be between 0 and {MAX_RETRIES}"));
        }
        push.retries = r;
    }
    if let Some(d) = patch.retries_delay {
        if !(MIN_RETRIES_DELAY..=MAX_RETRIES_DELAY).contains(&d) {
            return invalid(format!(
                "retries_delay must be between {MIN_RETRIES_DELAY} and {MAX_RETRIES_DELAY} seconds"
            ));
        }
        push.retries_delay = d;
    }
    if let Some(e) = patch.error_queue {
        if e == queue {
            return invalid("A queue cannot be its own error_queue");
        }
        if !e.is_empty() && (e.len() > 128 || e.chars().any(|c| c == '/' || c.is_control())) {
            return invalid(format!("Invalid error_queue name {e:?}"));
        }
        push.error_queue = e;
    }
    if let Some(b) = patch.backoff {
        push.backoff = b;
    }
    if let Some(secret) = patch.signing_secret {
        push.signing_secret = Some(secret).filter(|s| !s.is_empty());
    }
    if let Some(t) = patch.timeout {
        if t > MAX_PUSH_TIMEOUT {
            return invalid(format!(
                "push timeout must be at most {MAX_PUSH_TIMEOUT} seconds (0: the server's timeout)"
            ));
        }
        push.timeout = t;
    }
    if push.subscribers.is_empty() && by == ChangedBy::Api {
        return invalid("Push queues must have at least one subscriber");
    }
    check_subscribers(&push.subscribers)?;
    next.push = Some(push);
    Ok(next)
}

/// The dead-letter queue after `change`: an empty name removes it; a new one starts with
/// `DEFAULT_MAX_RESERVATIONS`.
fn dead_letter(
    current: Option<DeadLetter>,
    change: &DeadLetterPatch,
    queue: &str,
) -> Result<Option<DeadLetter>, Invalid> {
    let name = match change.queue_name.as_deref() {
        Some("") => return Ok(None),
        Some(name) => Some(name.to_string()),
        None => current.as_ref().map(|d| d.queue.clone()),
    };
    let Some(name) = name else {
        return invalid("dead_letter needs a queue_name");
    };
    if name == queue {
        return invalid("A queue cannot be its own dead_letter queue");
    }
    crate::model::check_queue_name(&name)
        .map_err(|e| Invalid(format!("Invalid dead_letter queue_name: {e}")))?;
    let max_reservations = match change.max_reservations {
        Some(n) if (1..=u64::from(MAX_MAX_RESERVATIONS)).contains(&n) => n as u32,
        Some(_) => {
            return invalid(format!(
                "dead_letter max_reservations must be between 1 and {MAX_MAX_RESERVATIONS}"
            ));
        }
        None => current.map_or(DEFAULT_MAX_RESERVATIONS, |d| d.max_reservations),
    };
    Ok(Some(DeadLetter {
        queue: name,
        max_reservations,
    }))
}

/// The alerts after `change`. A replacing alert identical to a current one (but for its id)
/// keeps that one's id.
fn alerts(current: Vec<Alert>, change: &AlertsChange, queue: &str) -> Result<Vec<Alert>, Invalid> {
    let (mut next, new) = match change {
        AlertsChange::Remove(ids) => {
            let next = current
                .into_iter()
                .filter(|a| !ids.contains(&a.id))
                .collect();
            return Ok(next);
        }
        AlertsChange::Add(added) => (current.clone(), added),
        AlertsChange::Replace(replacing) => (Vec::new(), replacing),
    };
    for (i, alert) in new.iter().enumerate() {
        if new[..i].iter().any(|other| other.same_crossing(alert)) {
            return invalid(format!(
                "alerts[{i}] repeats another alert's type, direction and trigger"
            ));
        }
        if alert.trigger == 0 {
            return invalid(format!("alerts[{i}] needs a trigger of 1 or more"));
        }
        crate::model::check_queue_name(&alert.queue)
            .map_err(|e| Invalid(format!("Invalid alerts[{i}] queue: {e}")))?;
        // Its own message would move the size again: a progressive alert would post for ever,
        // a shrinking one keep the queue from draining past its trigger.
        let feeds_itself =
            alert.alert_type == AlertType::Progressive || alert.direction == AlertDirection::Desc;
        if feeds_itself && alert.queue == queue {
            return invalid(format!(
                "alerts[{i}]: a progressive or desc alert may not post to its own queue"
            ));
        }
        if next.iter().any(|a| a.same_crossing(alert)) {
            return invalid(format!(
                "alerts[{i}]: the queue has an alert of this type, direction and trigger already"
            ));
        }
        let id = current
            .iter()
            .find(|a| a.same_as(alert))
            .map_or_else(new_alert_id, |a| a.id.clone());
        next.push(Alert {
            id,
            ..alert.clone()
        });
    }
    if next.len() > MAX_ALERTS {
        return invalid(format!("A queue may have at most {MAX_ALERTS} alerts"));
    }
    Ok(next)
}

/// 24 hex digits, like a queue's id.
fn new_alert_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..24].to_string()
}

/// The push settings of a push queue, unchanged when `change` is `None`.
pub fn push_of(config: &QueueConfig) -> Option<&PushConfig> {
    config
        .queue_type
        .is_push()
        .then_some(config.push.as_ref())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PushPatch;

    fn sub(name: &str) -> Subscriber {
        Subscriber {
            name: name.into(),
            url: format!("http://example.test/{name}"),
            ..Default::default()
        }
    }

    fn push_change(subscribers: Vec<Subscriber>) -> QueueSettings {
        QueueSettings {
            push: Some(PushPatch {
                subscribers: Some(subscribers),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn subscribers_on_a_new_queue_make_it_multicast_with_defaults() {
        let config = apply(None, &push_change(vec![sub("a")]), "q", ChangedBy::Api).unwrap();
        assert_eq!(config.queue_type, QueueType::Multicast);
        let push = config.push.unwrap();
        assert_eq!(
            (push.retries, push.retries_delay, push.error_queue.as_str()),
            (3, 60, "")
        );
    }

    #[test]
    fn a_push_queue_needs_a_subscriber() {
        let change = QueueSettings {
            queue_type: Some(QueueType::Unicast),
            ..Default::default()
        };
        assert!(apply(None, &change, "q", ChangedBy::Api).is_err());
    }

    #[test]
    fn a_declared_push_queue_may_wait_for_its_subscriptions() {
        let change = QueueSettings {
            queue_type: Some(QueueType::Multicast),
            ..Default::default()
        };
        let declared = apply(None, &change, "q", ChangedBy::Resource("Queue ns/q")).unwrap();
        assert!(push_of(&declared).unwrap().subscribers.is_empty());
    }

    #[test]
    fn subscribers_on_a_pull_queue_are_refused() {
        let mut change = push_change(vec![sub("a")]);
        change.queue_type = Some(QueueType::Pull);
        assert!(apply(None, &change, "q", ChangedBy::Api).is_err());
    }

    #[test]
    fn push_settings_survive_a_switch_to_pull_and_back() {
        let push = apply(None, &push_change(vec![sub("a")]), "q", ChangedBy::Api).unwrap();
        let pull = apply(
            Some(&push),
            &QueueSettings {
                queue_type: Some(QueueType::Pull),
                ..Default::default()
            },
            "q",
            ChangedBy::Api,
        )
        .unwrap();
        assert!(push_of(&pull).is_none());
        let back = apply(
            Some(&pull),
            &QueueSettings {
                queue_type: Some(QueueType::Unicast),
                ..Default::default()
            },
            "q",
            ChangedBy::Api,
        )
        .unwrap();
        assert_eq!(push_of(&back).unwrap().subscribers, vec![sub("a")]);
    }

    #[test]
    fn ranges_names_and_urls_are_checked() {
        let base = apply(None, &push_change(vec![sub("a")]), "q", ChangedBy::Api).unwrap();
        let with = |patch: PushPatch| QueueSettings {
            push: Some(patch),
            ..Default::default()
        };
        assert!(
            apply(
                Some(&base),
                &with(PushPatch {
                    retries: Some(101),
                    ..Default::default()
                }),
                "q",
                ChangedBy::Api
            )
            .is_err()
        );
        assert!(
            apply(
                Some(&base),
                &with(PushPatch {
                    retries_delay: Some(2),
                    ..Default::default()
                }),
                "q",
                ChangedBy::Api
            )
            .is_err()
        );
        assert!(
            apply(
                Some(&base),
                &with(PushPatch {
                    error_queue: Some("q".into()),
                    ..Default::default()
                }),
                "q",
                ChangedBy::Api
            )
            .is_err()
        );
        let mut bad = sub("b");
        bad.url = "ftp://x".into();
        assert!(apply(Some(&base), &push_change(vec![bad]), "q", ChangedBy::Api).is_err());
        // Two subscribers may share a name (IronMQ allowed it).
        assert!(
            apply(
                Some(&base),
                &push_change(vec![sub("a"), sub("a")]),
                "q",
                ChangedBy::Api
            )
            .is_ok()
        );
        let cleared = apply(
            Some(&base),
            &with(PushPatch {
                error_queue: Some(String::new()),
                ..Default::default()
            }),
            "q",
            ChangedBy::Api,
        );
        assert_eq!(cleared.unwrap().push.unwrap().error_queue, "");
    }

    #[test]
    fn queue_targets_are_parsed() {
        assert_eq!(
            parse_target("ironmq:///other").unwrap(),
            Target::Queue {
                project: None,
                token: None,
                queue: "other".into()
            }
        );
        assert_eq!(
            parse_target("ironmq://proj:tok@/other").unwrap(),
            Target::Queue {
                project: Some("proj".into()),
                token: Some("tok".into()),
                queue: "other".into()
            }
        );
        assert!(parse_target("ironmq:///").is_err());
    }

    #[test]
    fn secrets_in_subscriber_urls_are_not_shown() {
        assert_eq!(
            shown_url("ironmq://proj:tok@mq.example.com/q"),
            "ironmq://proj:***@mq.example.com/q"
        );
        assert_eq!(shown_url("ironmq://proj:tok@/q"), "ironmq://proj:***@/q");
        assert_eq!(
            shown_url("https://u:pw@h.test/a@b"),
            "https://u:***@h.test/a@b"
        );
        assert_eq!(shown_url("https://h.test/a@b"), "https://h.test/a@b");
        assert_eq!(shown_url("ironmq:///q"), "ironmq:///q");
    }

    #[test]
    fn queues_on_other_servers_are_reached_over_https() {
        let Target::Remote { messages, token } =
            parse_target("ironmq://proj:tok@mq.example.com:8443/other").unwrap()
        else {
            panic!("not a remote target");
        };
        assert_eq!(
            messages.as_str(),
            "https://mq.example.com:8443/3/projects/proj/queues/other/messages"
        );
        assert_eq!(token, "tok");
        // The default port, and a queue name that needs escaping in a path.
        let Target::Remote { messages, .. } =
            parse_target("ironmq://proj:tok@mq.example.com/a%20b").unwrap()
        else {
            panic!("not a remote target");
        };
        assert_eq!(messages.port_or_known_default(), Some(443));
        // Another server is never reached without credentials, nor at a malformed host.
        assert!(parse_target("ironmq://mq.example.com/other").is_err());
        assert!(parse_target("ironmq://proj@mq.example.com/other").is_err());
        assert!(parse_target("ironmq://proj:tok@bad host/other").is_err());
    }

    #[test]
    fn added_subscribers_replace_those_of_the_same_name() {
        let mut a2 = sub("a");
        a2.url = "http://example.test/new".into();
        let merged = merge_subscribers(&[sub("a"), sub("b")], &[a2.clone(), sub("c")]);
        assert_eq!(merged, vec![sub("b"), a2, sub("c")]);
    }
}
