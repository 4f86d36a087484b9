//! Extending a reservation under a new reservation id (`touch.lua`). Concurrent touches on one
//! queue share a script call (`coalesce.rs`), each checked and answered on its own.

use crate::metrics::METRICS;
use crate::store::coalesce::{self, Batched, LanesOf};
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store, random_id};

static SCRIPT: OpScript = OpScript::new("touch.lua", include_str!("touch.lua"));

impl Store {
    /// Extends a reservation; returns the new reservation id (the old one stops being valid).
    pub async fn touch(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: &str,
        timeout: Option<u64>,
    ) -> Result<String> {
        let request = Touch {
            id: id.to_string(),
            reservation_id: reservation_id.to_string(),
            timeout: timeout.unwrap_or(0),
        };
        let new_id = coalesce::call(Touching, self, project, name, request).await?;
        METRICS.count("touched", 1);
        Ok(new_id)
    }
}

/// One touch: the message, its current reservation id, and the new timeout (s, 0 = the
/// queue's).
pub struct Touch {
    id: String,
    reservation_id: String,
    timeout: u64,
}

/// The touch operation, for batching; answers the new reservation id.
#[derive(Clone, Copy)]
pub struct Touching;

impl Batched for Touching {
    type Request = Touch;
    type Answer = String;

    fn weight(_: &Touch) -> (usize, usize) {
        (1, 0)
    }

    fn lanes(store: &Store) -> &LanesOf<Self> {
        &store.0.batches.touch
    }

    async fn run(
        self,
        store: &Store,
        project: &str,
        name: &str,
        touches: Vec<Touch>,
    ) -> Result<Vec<Result<String>>> {
        let keys = QueueKeys::new(project, name);
        let timeouts: Vec<String> = touches.iter().map(|t| t.timeout.to_string()).collect();
        let new_ids: Vec<String> = touches.iter().map(|_| random_id()).collect();
        let mut args: Vec<&[u8]> = Vec::with_capacity(touches.len() * 4);
        for ((touch, timeout), new_id) in touches.iter().zip(&timeouts).zip(&new_ids) {
            args.extend([
                touch.id.as_bytes(),
                touch.reservation_id.as_bytes(),
                timeout.as_bytes(),
                new_id.as_bytes(),
            ]);
        }
        let mut reply = store.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check("")?;
        touches
            .iter()
            .zip(new_ids)
            .map(|(touch, new_id)| Ok(reply.status()?.check(&touch.id).map(|()| new_id)))
            .collect()
    }
}
