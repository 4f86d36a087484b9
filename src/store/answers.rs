//! Per-subscriber counts of push answers, which Subscription status and the API show. Plain
//! commands, no script: counts are for watching, not for correctness.

use super::keys::QueueKeys;
use super::{Result, Store};
use redis::AsyncCommands;
use std::collections::BTreeMap;

/// How often a subscriber answered, by kind of answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerCounts {
    /// 2xx other than 202.
    pub delivered: u64,
    /// 202: taken, to be acknowledged.
    pub accepted: u64,
    /// Anything else, or no answer.
    pub failed: u64,
}

/// The kinds of answer `AnswerCounts` counts, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answered {
    Delivered,
    Accepted,
    Failed,
}

impl Answered {
    fn as_str(self) -> &'static str {
        match self {
            Answered::Delivered => "delivered",
            Answered::Accepted => "accepted",
            Answered::Failed => "failed",
        }
    }
}

impl Store {
    /// Adds answers (subscriber, kind, how many) to the queue's per-subscriber counts, in
    /// one round trip.
    pub async fn count_answers(
        &self,
        project: &str,
        name: &str,
        answers: &[(&str, Answered, u64)],
    ) -> Result<()> {
        let key = QueueKeys::new(project, name).counts();
        let mut pipe = redis::pipe();
        for (subscriber, answer, n) in answers {
            pipe.hincr(&key, format!("{}:{subscriber}", answer.as_str()), *n)
                .ignore();
        }
        let mut conn = self.connection();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Every subscriber's answer counts on a queue, by subscriber name.
    pub async fn answer_counts(
        &self,
        project: &str,
        name: &str,
    ) -> Result<BTreeMap<String, AnswerCounts>> {
        let mut conn = self.connection();
        let fields: Vec<(String, u64)> =
            conn.hgetall(QueueKeys::new(project, name).counts()).await?;
        let mut counts: BTreeMap<String, AnswerCounts> = BTreeMap::new();
        for (field, n) in fields {
            let Some((answer, subscriber)) = field.split_once(':') else {
                continue;
            };
            let entry = counts.entry(subscriber.to_string()).or_default();
            match answer {
                "delivered" => entry.delivered = n,
                "accepted" => entry.accepted = n,
                "failed" => entry.failed = n,
                _ => {}
            }
        }
        Ok(counts)
    }
}
