//! Which queues there are: each project's sorted index of queue names (for listing), and the
//! set of push queues (which push workers watch). Both live outside the queues' own slots, so
//! they are kept beside each change rather than in its script, and repaired when found stale.

use super::keys::{PUSH_QUEUES, QueueKeys, project_index};
use super::{Result, Store};
use redis::AsyncCommands;

impl Store {
    /// Keeps the set of push queues, which push workers watch, in line with a queue's type.
    pub(super) async fn mark_push_queue(
        &self,
        project: &str,
        name: &str,
        push: bool,
    ) -> Result<()> {
        let mut conn = self.connection();
        let member = format!("{project}/{name}");
        if push {
            let _: i64 = conn.sadd(PUSH_QUEUES, member).await?;
        } else {
            let _: i64 = conn.srem(PUSH_QUEUES, member).await?;
        }
        Ok(())
    }

    /// Every push queue as (project, queue).
    pub async fn push_queues(&self) -> Result<Vec<(String, String)>> {
        let mut conn = self.connection();
        let members: Vec<String> = conn.smembers(PUSH_QUEUES).await?;
        Ok(members
            .into_iter()
            .filter_map(|m| {
                m.split_once('/')
                    .map(|(p, q)| (p.to_string(), q.to_string()))
            })
            .collect())
    }

    /// Drops a queue from its project's listing. The listing lives in another Redis slot than
    /// the queue, so this cannot be atomic with the queue's own change: every removal looks
    /// again afterwards and puts the name back if a post re-created the queue meanwhile. Each
    /// creation adds the name after creating, so an existing queue always ends up listed.
    pub(super) async fn index_remove(&self, project: &str, name: &str) -> Result<()> {
        let mut conn = self.connection();
        let _: i64 = conn.zrem(project_index(project), name).await?;
        if self.queue_exists(project, name).await? {
            self.index_add(project, name).await?;
        }
        Ok(())
    }

    async fn queue_exists(&self, project: &str, name: &str) -> Result<bool> {
        let mut conn = self.connection();
        let keys = QueueKeys::new(project, name);
        Ok(conn.exists(keys.cfg()).await?)
    }

    /// Queue names of a project in byte order: at most `per_page`, all after `previous` and
    /// starting with `prefix`. O(log n + per_page).
    pub async fn list_queues(
        &self,
        project: &str,
        previous: Option<&str>,
        prefix: &str,
        per_page: usize,
    ) -> Result<Vec<String>> {
        let min: Vec<u8> = match previous {
            Some(prev) if prev.as_bytes() >= prefix.as_bytes() => [b"(", prev.as_bytes()].concat(),
            _ if prefix.is_empty() => b"-".to_vec(),
            _ => [b"[", prefix.as_bytes()].concat(),
        };
        // No UTF-8 text holds the byte 0xFF, so it closes the range of names with the prefix.
        let max: Vec<u8> = if prefix.is_empty() {
            b"+".to_vec()
        } else {
            [b"[", prefix.as_bytes(), &[0xff]].concat()
        };
        let mut listed = Vec::with_capacity(per_page);
        let mut min = min;
        loop {
            let mut conn = self.connection();
            let names: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(project_index(project))
                .arg(&min)
                .arg(&max)
                .arg("LIMIT")
                .arg(0)
                .arg(per_page - listed.len())
                .query_async(&mut conn)
                .await?;
            let Some(last) = names.last() else {
                return Ok(listed);
            };
            min = [b"(", last.as_bytes()].concat();
            // A name can outlive its queue for a moment (see index_remove): skip and drop it.
            let exists = futures_util::future::try_join_all(
                names.iter().map(|name| self.queue_exists(project, name)),
            )
            .await?;
            for (name, exists) in names.into_iter().zip(exists) {
                if exists {
                    listed.push(name);
                } else {
                    self.index_remove(project, &name).await?;
                }
            }
            if listed.len() == per_page {
                return Ok(listed);
            }
        }
    }

    pub(super) async fn index_add(&self, project: &str, name: &str) -> Result<()> {
        let mut conn = self.connection();
        let _: i64 = conn.zadd(project_index(project), name, 0).await?;
        Ok(())
    }
}
