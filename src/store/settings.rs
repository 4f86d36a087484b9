//! Creating queues and changing their settings, and who may: a queue managed by a Kubernetes
//! resource (or a standalone manifest) is changed only by that resource. Every change is a
//! compare-and-set on the settings' revision (`ops/apply.rs`), retried on a conflict.

use super::keys::DECLARED_QUEUES;
use super::{Result, Store, StoreError};
use crate::model::{
    Alert, AlertType, AlertsChange, ChangedBy, QueueConfig, QueueInfo, QueueSettings,
};
use redis::AsyncCommands;

/// Most queues a chain of dead-letter queues or progressive alerts may link.
const MAX_LINKED_QUEUES: usize = 16;

/// Where progressive alerts post.
fn progressive_targets(alerts: &[Alert]) -> Vec<String> {
    alerts
        .iter()
        .filter(|a| a.alert_type == AlertType::Progressive)
        .map(|a| a.queue.clone())
        .collect()
}

impl Store {
    /// Creates a queue or changes its settings: the one path from settings to the store, taken by
    /// the REST API, the controller and standalone mode. `create` false answers `QueueNotFound`
    /// for a queue that does not exist. Returns the queue as it now stands and whether it was
    /// created.
    pub async fn apply_queue(
        &self,
        project: &str,
        name: &str,
        settings: &QueueSettings,
        create: bool,
        by: ChangedBy<'_>,
    ) -> Result<(QueueInfo, bool)> {
        // REST paths check these; resources come from elsewhere and must be reachable too.
        crate::model::check_project(project).map_err(StoreError::Invalid)?;
        crate::model::check_queue_name(name).map_err(StoreError::Invalid)?;
        let target = settings
            .dead_letter
            .as_ref()
            .and_then(|d| d.queue_name.clone())
            .filter(|t| !t.is_empty());
        if let Some(target) = &target {
            self.check_no_cycle(
                project,
                name,
                vec![target.clone()],
                "dead_letter queues",
                |c| c.dead_letter.iter().map(|d| d.queue.clone()).collect(),
            )
            .await?;
        }
        if let Some(AlertsChange::Add(alerts) | AlertsChange::Replace(alerts)) = &settings.alerts {
            self.check_no_cycle(
                project,
                name,
                progressive_targets(alerts),
                "progressive alerts",
                |c| progressive_targets(&c.alerts),
            )
            .await?;
        }
        let applied = self
            .update_queue(project, name, create, by, |current| {
                Ok(crate::settings::apply(current, settings, name, by)?)
            })
            .await?;
        // The dead-letter queue exists from now on, with default settings when it was missing.
        if let Some(target) = &target
            && matches!(
                self.queue_info(project, target).await,
                Err(StoreError::QueueNotFound)
            )
            && let Err(err) = self
                .update_queue(project, target, true, ChangedBy::Api, |current| {
                    Ok(current.cloned().unwrap_or_default())
                })
                .await
        {
            // The first move creates it then.
            tracing::warn!(%err, project, target, "cannot create the dead-letter queue yet");
        }
        Ok(applied)
    }

    /// Refuses a change that links `name` to the queues `first` when links of the same kind
    /// (`follow`: its dead-letter queue, the targets of its progressive alerts) lead from them
    /// back to `name`: dead letters would go round, and two moves racing on one message could
    /// drop it; progressive alerts would post to each other without end.
    async fn check_no_cycle(
        &self,
        project: &str,
        name: &str,
        first: Vec<String>,
        what: &str,
        follow: impl Fn(&QueueConfig) -> Vec<String>,
    ) -> Result<()> {
        // Paths from `name`, walked depth first; each queue is looked at once. A link to `name`
        // itself is for the settings' own rules to refuse, with their own message.
        let mut paths: Vec<Vec<String>> = first
            .into_iter()
            .filter(|q| q != name)
            .map(|q| vec![name.to_string(), q])
            .collect();
        let mut seen = std::collections::HashSet::new();
        while let Some(path) = paths.pop() {
            let last = path.last().map_or("", String::as_str);
            if last == name {
                return Err(StoreError::Invalid(format!(
                    "{what} may not form a cycle: {}",
                    path.join(" -> ")
                )));
            }
            if !seen.insert(last.to_string()) {
                continue;
            }
            // Bounds the reads: nobody needs more.
            if seen.len() > MAX_LINKED_QUEUES {
                return Err(StoreError::Invalid(format!(
                    "{what} link too many queues: {} -> ...",
                    path.join(" -> ")
                )));
            }
            let next = match self.queue_info(project, last).await {
                Ok(info) => follow(&info.config),
                Err(StoreError::QueueNotFound) => Vec::new(),
                Err(err) => return Err(err),
            };
            for queue in next {
                let mut longer = path.clone();
                longer.push(queue);
                paths.push(longer);
            }
        }
        Ok(())
    }

    /// Changes a queue's settings by a function of the current ones (`None`: no such queue). The
    /// change is applied only if nobody else changed the settings in between; otherwise the
    /// function runs again on the newer settings. A managed queue is changed only by its
    /// resource; a resource takes over a queue nobody manages.
    pub async fn update_queue<F>(
        &self,
        project: &str,
        name: &str,
        create: bool,
        by: ChangedBy<'_>,
        change: F,
    ) -> Result<(QueueInfo, bool)>
    where
        F: Fn(Option<&QueueConfig>) -> Result<QueueConfig>,
    {
        for _ in 0..32 {
            let current = match self.queue_info(project, name).await {
                Ok(found) => Some(found),
                Err(StoreError::QueueNotFound) if create => None,
                Err(err) => return Err(err),
            };
            let manager = current
                .as_ref()
                .and_then(|info| info.config.managed_by.clone());
            match manager {
                Some(manager) if by.resource() != Some(manager.as_str()) => {
                    return Err(StoreError::Managed { by: manager });
                }
                // Taking over a queue set up over REST (and later perhaps deleting its
                // messages with the resource) must be asked for, unless the resource handed
                // it back itself.
                None if matches!(by, ChangedBy::Resource(r)
                if current.as_ref().is_some_and(|info| {
                    info.config.rest_configured
                        && info.config.released_by.as_deref() != Some(r)
                })) =>
                {
                    return Err(StoreError::NotAdopted);
                }
                _ => {}
            }
            let mut next = change(current.as_ref().map(|info| &info.config))?;
            match by {
                ChangedBy::Api => {
                    next.managed_by = None;
                    next.rest_configured = true;
                }
                ChangedBy::Release(resource) => {
                    next.managed_by = None;
                    next.rest_configured = true;
                    next.released_by = Some(resource.to_string());
                }
                ChangedBy::Resource(resource) | ChangedBy::Adopt(resource) => {
                    next.managed_by = Some(resource.to_string());
                    next.rest_configured = false;
                    next.released_by = None;
                }
            }
            if let Some(info) = current.as_ref().filter(|info| info.config == next) {
                // Nothing changes: keep the revision, so push rounds in flight stay final.
                self.index_add(project, name).await?;
                self.mark_push_queue(project, name, next.queue_type.is_push())
                    .await?;
                return Ok((info.clone(), false));
            }
            let revision = current
                .as_ref()
                .map(|info| info.config.revision.clone())
                .unwrap_or_default();
            let Some((info, created)) =
                self.write_settings(project, name, &revision, &next).await?
            else {
                continue; // changed meanwhile: read again
            };
            // Also when it existed: this repairs a listing entry lost to a crash after creation.
            self.index_add(project, name).await?;
            self.mark_push_queue(project, name, info.config.queue_type.is_push())
                .await?;
            return Ok((info, created));
        }
        Err(StoreError::Unavailable(redis::RedisError::from((
            redis::ErrorKind::Io,
            "queue settings keep changing; try again",
        ))))
    }

    /// The queues standalone mode declared from files, as (project, queue, managing resource):
    /// a later run releases those whose manifest is gone.
    pub async fn declared_queues(&self) -> Result<Vec<(String, String, String)>> {
        let mut conn = self.connection();
        let entries: Vec<(String, String)> = conn.hgetall(DECLARED_QUEUES).await?;
        Ok(entries
            .into_iter()
            .filter_map(|(field, manager)| {
                let (project, queue) = serde_json::from_str::<(String, String)>(&field).ok()?;
                Some((project, queue, manager))
            })
            .collect())
    }

    /// Records (`Some(manager)`) or forgets (`None`) a queue standalone mode declared.
    pub async fn note_declared(
        &self,
        project: &str,
        name: &str,
        manager: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.connection();
        let field = serde_json::json!([project, name]).to_string();
        let _: i64 = match manager {
            Some(manager) => conn.hset(DECLARED_QUEUES, field, manager).await?,
            None => conn.hdel(DECLARED_QUEUES, field).await?,
        };
        Ok(())
    }

    /// Hands a managed queue back to REST clients, with its messages (a resource deleted with
    /// the `Retain` policy). Nothing happens when `resource` does not manage the queue, or it
    /// is gone.
    pub async fn release_queue(&self, project: &str, name: &str, resource: &str) -> Result<()> {
        let released = self
            .update_queue(
                project,
                name,
                false,
                ChangedBy::Release(resource),
                |current| Ok(current.cloned().unwrap_or_default()),
            )
            .await;
        match released {
            Ok(_) | Err(StoreError::QueueNotFound | StoreError::Managed { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }
}

impl Store {
    /// The queues of `project` whose dead-letter queue (false) or error queue (true) is `name`.
    /// Reads every queue's settings: for redrives, not for the hot path.
    pub async fn queues_sending_to(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Vec<(String, bool)>> {
        let mut found = Vec::new();
        let mut previous: Option<String> = None;
        loop {
            let page = self
                .list_queues(project, previous.as_deref(), "", 100)
                .await?;
            for queue in &page {
                let config = match self.queue_info(project, queue).await {
                    Ok(info) => info.config,
                    Err(StoreError::QueueNotFound) => continue,
                    Err(err) => return Err(err),
                };
                if config.dead_letter.as_ref().is_some_and(|d| d.queue == name) {
                    found.push((queue.clone(), false));
                }
                let error_queue = crate::settings::push_of(&config).map(|p| p.error_queue.as_str());
                if error_queue == Some(name) {
                    found.push((queue.clone(), true));
                }
            }
            match page.last() {
                Some(last) if page.len() == 100 => previous = Some(last.clone()),
                _ => return Ok(found),
            }
        }
    }
}
