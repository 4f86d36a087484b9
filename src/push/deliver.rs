//! One delivery attempt: an HTTP POST of the message to a subscriber's URL, or a post of it to
//! another queue of this service (`ironmq:///queue`) or of another server
//! (`ironmq://project:token@host/queue`).

use super::auth::Bearers;
use super::guard::{AddressPolicy, GuardedResolver};
use super::state::Outcome;
use crate::metrics::METRICS;
use crate::model::Trace;
use crate::model::{NewMessage, PushConfig, Subscriber};
use crate::settings::{Target, parse_target};
use crate::store::{Claimed, Store};
use crate::telemetry::spans::{self, Attribute, Kind, Span};
use crate::tokens::Tokens;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use std::sync::Arc;
use std::time::Duration;

/// Characters escaped in one path segment of a subscriber-message URL.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Header carrying the signature of a push from a queue with a `signing_secret`:
/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`. A subscriber
/// recomputes it to know the request came from this service, and checks `t` to refuse replays.
pub const SIGNATURE_HEADER: &str = "ferromq-signature";

/// The value of `SIGNATURE_HEADER` for `body` sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: u64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any size");
    mac.update(format!("{unix_seconds}.").as_bytes());
    mac.update(body.as_bytes());
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// What every delivery of a process shares.
pub struct Courier {
    pub http: reqwest::Client,
    pub store: Store,
    pub tokens: Arc<Tokens>,
    /// Base URL of this data plane as subscribers reach it, for acknowledgement URLs.
    pub public_url: String,
    /// Networks subscribers may not be reached at (the HTTP client's resolver applies it to
    /// names; addresses written in URLs are checked here).
    pub deny: Arc<AddressPolicy>,
    /// Bearer tokens of subscribers with `jwt`.
    pub bearers: Arc<Bearers>,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl Courier {
    /// An HTTP client that follows no redirects (a redirect counts as a failed delivery) and
    /// gives up after `timeout`. `https://` subscribers must present a certificate the system
    /// trusts or one that chains to `extra_roots`.
    pub fn http_client(
        timeout: Duration,
        extra_roots: &[reqwest::Certificate],
        deny: &Arc<AddressPolicy>,
    ) -> Result<reqwest::Client, reqwest::Error> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true);
        for root in extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if !deny.is_empty() {
            // Through a proxy, the resolver would only ever see the proxy's address.
            builder = builder
                .dns_resolver(Arc::new(GuardedResolver(deny.clone())))
                .no_proxy();
        }
        builder.build()
    }

    /// The URL a subscriber that answered 202 sends DELETE to, to acknowledge the message.
    pub fn ack_url(
        &self,
        project: &str,
        queue: &str,
        message: &Claimed,
        subscriber: &str,
    ) -> String {
        let seg = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
        format!(
            "{}/3/projects/{}/queues/{}/messages/{}/subscribers/{}?reservation_id={}",
            self.public_url.trim_end_matches('/'),
            seg(project),
            seg(queue),
            seg(&message.id),
            seg(subscriber),
            message.reservation_id
        )
    }

    /// Delivers `message` to `to`, whose key in the push state (its name, unless the name is
    /// used twice) its acknowledgement URL carries.
    pub async fn deliver(
        &self,
        project: &str,
        queue: &str,
        message: &Claimed,
        key: &str,
        to: &Subscriber,
        push: &PushConfig,
    ) -> Outcome {
        match parse_target(&to.url) {
            Ok(Target::Http(url)) => {
                if let Some(refused) = self.refused_address(&url) {
                    return refused;
                }
                self.post_http(url, project, queue, message, key, to, push)
                    .await
            }
            Ok(Target::Queue {
                project: other,
                token,
                queue: target,
            }) => {
                self.post_to_queue(project, other, token, &target, message)
                    .await
            }
            Ok(Target::Remote { messages, token }) => {
                if let Some(refused) = self.refused_address(&messages) {
                    return refused;
                }
                self.post_remote(messages, &token, message, push).await
            }
            Err(err) => Outcome::Failed {
                code: 0,
                msg: err.to_string(),
            },
        }
    }

    /// A failed attempt when `url` names a denied address itself (no DNS lookup to guard).
    fn refused_address(&self, url: &reqwest::Url) -> Option<Outcome> {
        if self.deny.is_empty() {
            return None;
        }
        let host = url.host_str()?;
        let ip: std::net::IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        (!self.deny.allows(ip)).then(|| Outcome::Failed {
            code: 0,
            msg: format!("{ip} is refused by FERROMQ_PUSH_DENY"),
        })
    }

    fn headers(
        &self,
        project: &str,
        queue: &str,
        message: &Claimed,
        key: &str,
        to: &Subscriber,
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("IronMQ Pusherd"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; encoding=utf-8"),
        );
        // The subscriber's headers, then the message's, may override the two above.
        for (name, value) in to.headers.iter().chain(&message.push_headers) {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        if to.cloudevents {
            cloudevent_headers(&mut headers, project, queue, message);
        }
        let ack = self.ack_url(project, queue, message, key);
        for (name, value) in [
            ("iron-message-id", message.id.as_str()),
            ("iron-subscriber-message-id", message.id.as_str()),
            ("iron-reservation-id", message.reservation_id.as_str()),
            ("iron-subscriber-name", to.name.as_str()),
            ("iron-subscriber-message-url", ack.as_str()),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        headers
    }

    #[allow(clippy::too_many_arguments)]
    async fn post_http(
        &self,
        url: reqwest::Url,
        project: &str,
        queue: &str,
        message: &Claimed,
        key: &str,
        to: &Subscriber,
        push: &PushConfig,
    ) -> Outcome {
        let mut headers = self.headers(project, queue, message, key, to);
        if let Some(jwt) = &to.jwt {
            let subject = format!("{project}/{queue}");
            match self.bearers.token(jwt, url.as_str(), &subject) {
                Ok(token) => {
                    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                        headers.insert(reqwest::header::AUTHORIZATION, value);
                    }
                }
                // Not sent without its token: a failed try, retried as any other.
                Err(msg) => return Outcome::Failed { code: 0, msg },
            }
        }
        if let Some(secret) = push.signing_secret.as_deref() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if let Ok(value) = HeaderValue::from_str(&signature(secret, now, &message.body)) {
                headers.insert(HeaderName::from_static(SIGNATURE_HEADER), value);
            }
        }
        let mut span = self.continue_trace(&mut headers, project, queue, message, to);
        let request = self
            .http
            .post(url)
            .headers(headers)
            .body(message.body.clone());
        let started = std::time::Instant::now();
        let sent = with_timeout(request, push).send().await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status();
                let code = status.as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                if code == 202 {
                    Outcome::Accepted
                } else if status.is_success() {
                    Outcome::Delivered { code }
                } else if let (429 | 503, Some(wait)) = (code, retry_after) {
                    let reason = status.canonical_reason().unwrap_or("Busy");
                    // At least a second: a 429 spends no retry, so "0" must not mean at once.
                    let wait = wait.max(Duration::from_secs(1)).min(self.max_retry_after);
                    Outcome::Busy {
                        code,
                        msg: format!("{reason}; Retry-After {} s", wait.as_secs()),
                        retry_after: wait,
                    }
                } else {
                    let reason = status.canonical_reason().unwrap_or("Unexpected status");
                    Outcome::Failed {
                        code,
                        msg: reason.to_string(),
                    }
                }
            }
            Err(err) => unanswered(&err),
        };
        let (kind, code) = match &outcome {
            Outcome::Delivered { code } => ("delivered", *code),
            Outcome::Accepted => ("accepted", 202),
            Outcome::Failed { code, .. }
            | Outcome::Busy { code, .. }
            | Outcome::ProbeFailed { code, .. } => ("failed", *code),
        };
        METRICS
            .push_attempts
            .get_or_create(&crate::metrics::PushLabels {
                outcome: kind,
                status: crate::metrics::status_class(code),
            })
            .inc();
        if code != 0 {
            METRICS
                .push_latency
                .observe(started.elapsed().as_secs_f64());
        }
        if let Some(span) = &mut span {
            span.set(Attribute::new("http.response.status_code", i64::from(code)));
            if let Outcome::Failed { msg, .. } | Outcome::Busy { msg, .. } = &outcome {
                span.fail(msg.clone());
            }
        }
        outcome
    }

    /// A push of a message posted with a trace context carries it on, with a span of its own:
    /// the span of this attempt when spans are exported, else a new span id. When spans are
    /// exported, a push of a message without one starts a trace. Returns the span.
    fn continue_trace(
        &self,
        headers: &mut HeaderMap,
        project: &str,
        queue: &str,
        message: &Claimed,
        to: &Subscriber,
    ) -> Option<Span> {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if parent.is_none() && !spans::on() {
            return None;
        }
        let state = headers
            .get(Trace::STATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let span = spans::start(
            "ferromq.push",
            Kind::Client,
            parent.as_deref().map(|p| (p, state.as_deref())),
            &[],
            vec![
                Attribute::new("messaging.system", "ferromq"),
                Attribute::new("messaging.destination.name", format!("{project}/{queue}")),
                Attribute::new("messaging.message.id", message.id.clone()),
                Attribute::new("ferromq.subscriber", to.name.clone()),
            ],
        );
        let child = match (&span, &parent) {
            (Some(span), _) => HeaderValue::from_str(&span.traceparent()).ok(),
            (None, Some(parent)) => next_span(parent),
            (None, None) => None,
        };
        if let Some(child) = child {
            headers.insert(TRACEPARENT, child);
        }
        span
    }

    /// Posts a copy of the message to a queue on another server, as an IronMQ client would.
    async fn post_remote(
        &self,
        messages: reqwest::Url,
        token: &str,
        message: &Claimed,
        push: &PushConfig,
    ) -> Outcome {
        let mut copy = serde_json::json!({ "body": message.body });
        if !message.push_headers.is_empty() {
            copy["push_headers"] = serde_json::json!(message.push_headers);
        }
        let copy = serde_json::json!({ "messages": [copy] });
        let request = self
            .http
            .post(messages)
            .header(reqwest::header::AUTHORIZATION, format!("OAuth {token}"))
            .header(USER_AGENT, "IronMQ Pusherd")
            .json(&copy);
        match with_timeout(request, push).send().await {
            Ok(response) if response.status().is_success() => Outcome::Delivered {
                code: response.status().as_u16(),
            },
            Ok(mut response) => {
                let code = response.status().as_u16();
                // The other server says why in an IronMQ-style {"msg": ...}: read a little of
                // it, and keep a short line (it is stored with every message's push status).
                let mut body = Vec::new();
                while body.len() < 16 * 1024 {
                    match response.chunk().await {
                        Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                let msg = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["msg"].as_str().map(|m| m.chars().take(256).collect()))
                    .unwrap_or_else(|| "The other server refused the message".into());
                Outcome::Failed { code, msg }
            }
            Err(err) => unanswered(&err),
        }
    }

    async fn post_to_queue(
        &self,
        project: &str,
        other: Option<String>,
        token: Option<String>,
        target: &str,
        message: &Claimed,
    ) -> Outcome {
        let target_project = other.unwrap_or_else(|| project.to_string());
        if target_project != project
            && let Err(err) = self.tokens.check(token.as_deref(), &target_project)
        {
            return Outcome::Failed {
                code: err.status(),
                msg: err.to_string(),
            };
        }
        let copy = NewMessage {
            body: message.body.clone(),
            delay: 0,
            push_headers: message.push_headers.clone(),
        };
        match self.store.post(&target_project, target, [copy]).await {
            Ok(_) => Outcome::Delivered { code: 200 },
            Err(err) => Outcome::Failed {
                code: 0,
                msg: err.to_string(),
            },
        }
    }
}

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A W3C `traceparent` for one push of a message posted with `parent`: the same trace and
/// flags, a new span id (each attempt is a span of its own). `None` when `parent` is not one.
pub fn next_span(parent: &str) -> Option<HeaderValue> {
    let (trace, flags) = crate::model::Trace::parse_parent(parent)?;
    let span = loop {
        let span = fastrand::u64(..);
        if span != 0 {
            break span;
        }
    };
    HeaderValue::from_str(&format!("00-{trace}-{span:016x}-{flags}")).ok()
}

/// CloudEvents binary-mode headers (spec 1.0), under those the message already carries.
fn cloudevent_headers(headers: &mut HeaderMap, project: &str, queue: &str, message: &Claimed) {
    let source = format!("/projects/{project}/queues/{queue}");
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", message.id.as_str()),
        ("ce-source", source.as_str()),
        ("ce-type", "dev.ferromq.message"),
    ] {
        let name = HeaderName::from_static(name);
        // The subscriber's and the message's own headers are already there, and win.
        if !headers.contains_key(&name)
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (a date past is no wait).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// The queue's own answer timeout, when it has one, instead of the server's.
fn with_timeout(request: reqwest::RequestBuilder, push: &PushConfig) -> reqwest::RequestBuilder {
    match push.timeout {
        0 => request,
        seconds => request.timeout(Duration::from_secs(seconds)),
    }
}

/// A delivery that got no answer: too slow, or no connection.
fn unanswered(err: &reqwest::Error) -> Outcome {
    let msg = if err.is_timeout() {
        "No answer within the timeout".into()
    } else {
        error_text(err)
    };
    Outcome::Failed { code: 0, msg }
}

/// The error and its causes in one line (reqwest's own text leaves the cause out).
fn error_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        use std::time::{Duration, SystemTime};
        assert_eq!(super::parse_retry_after("2"), Some(Duration::from_secs(2)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = super::parse_retry_after(&later).unwrap();
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            super::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(super::parse_retry_after("soon"), None);
    }

    #[test]
    fn each_push_gets_a_new_span_of_the_posted_trace() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let a = super::next_span(parent).unwrap();
        let b = super::next_span(parent).unwrap();
        let a = a.to_str().unwrap();
        assert!(a.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && a.ends_with("-01"));
        assert_ne!(a, parent);
        assert_ne!(a, b.to_str().unwrap());
        assert!(
            super::next_span("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(super::next_span("garbage").is_none());
    }

    #[test]
    fn signature_matches_a_known_hmac_sha256() {
        // HMAC-SHA256(key "secret", "1700000000.hello"), as Python's hmac module computes it.
        assert_eq!(
            super::signature("secret", 1_700_000_000, "hello"),
            "t=1700000000,v1=47b1df0ab12338b2685470b0d2b37033add7c3b2bc8172f313e77413f1bb78c8"
        );
    }
}
