//! A push worker claiming messages for a delivery round (`push_claim.lua`).

use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store, StoreError, random_id};
use std::collections::BTreeMap;
use std::time::Duration;

static SCRIPT: OpScript = OpScript::new("push_claim.lua", include_str!("push_claim.lua"));

/// A message a push worker holds for one delivery round.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub body: String,
    pub push_headers: BTreeMap<String, String>,
    /// Push state from earlier rounds, as JSON (see `push::state`); `None` on the first round.
    pub state: Option<String>,
    /// The claim's reservation id: a subscriber that answers 202 acknowledges with it.
    pub reservation_id: String,
    /// Acknowledgements recorded since the last round, as JSON `{name: reservation id}`
    /// (`None` when there are none); handed back in the report, which then clears them.
    pub acks: Option<String>,
}

impl Store {
    /// Claims up to `n` messages of a push queue for `claim`, waiting up to `wait` for some to
    /// be ready. `None` when the queue is gone or no longer a push queue.
    pub async fn claim_push(
        &self,
        project: &str,
        name: &str,
        n: usize,
        claim: Duration,
        wait: Duration,
    ) -> Result<Option<Vec<Claimed>>> {
        let keys = QueueKeys::new(project, name);
        let found = self
            .long_poll(&keys, wait, |poll| self.claim_once(&keys, n, claim, poll))
            .await;
        match found {
            Ok(claimed) => Ok(Some(claimed)),
            Err(StoreError::QueueNotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn claim_once(
        &self,
        keys: &QueueKeys,
        n: usize,
        claim: Duration,
        wait: Option<Duration>,
    ) -> Result<(Vec<Claimed>, Option<Duration>)> {
        let n_arg = n.to_string();
        let claim_ms = claim.as_millis().to_string();
        let (waiter, wait_ms) = self.waiter(wait);
        let rids: Vec<String> = (0..n).map(|_| random_id()).collect();
        let mut args: Vec<&[u8]> = vec![
            n_arg.as_bytes(),
            claim_ms.as_bytes(),
            waiter.as_bytes(),
            wait_ms.as_bytes(),
        ];
        args.extend(rids.iter().map(|r| r.as_bytes()));
        let mut reply = self.run(&SCRIPT, keys, &args).await?;
        reply.status()?.check("")?;
        let next_due = reply.next_due()?;
        let mut claimed = Vec::new();
        while !reply.is_empty() {
            let id = reply.text()?;
            let body = reply.text()?;
            let headers = reply.text()?;
            let state = Some(reply.text()?).filter(|s| !s.is_empty());
            let reservation_id = reply.text()?;
            let acks = Some(reply.text()?).filter(|a| !a.is_empty());
            let push_headers = if headers.is_empty() {
                BTreeMap::new()
            } else {
                serde_json::from_str(&headers).map_err(|e| StoreError::BadReply(e.to_string()))?
            };
            claimed.push(Claimed {
                id,
                body,
                push_headers,
                state,
                reservation_id,
                acks,
            });
        }
        Ok((claimed, next_due))
    }
}
