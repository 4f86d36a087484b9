//! Ending a reservation: the message goes back to the front (`release.lua`). Concurrent
//! releases on one queue share a script call (`coalesce.rs`), each checked and answered on its
//! own.

use crate::metrics::METRICS;
use crate::store::coalesce::{self, Batched, LanesOf};
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::new("release.lua", include_str!("release.lua"));

impl Store {
    /// Ends a reservation: the message goes back to the front, at once or after `delay` s.
    pub async fn release(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: &str,
        delay: u64,
    ) -> Result<()> {
        let request = Release {
            id: id.to_string(),
            reservation_id: reservation_id.to_string(),
            delay,
        };
        coalesce::call(Releasing, self, project, name, request).await?;
        METRICS.count("released", 1);
        Ok(())
    }
}

/// One release: the message, its current reservation id, and the delay (s) before it is
/// ready again.
pub struct Release {
    id: String,
    reservation_id: String,
    delay: u64,
}

/// The release operation, for batching.
#[derive(Clone, Copy)]
pub struct Releasing;

impl Batched for Releasing {
    type Request = Release;
    type Answer = ();

    fn weight(_: &Release) -> (usize, usize) {
        (1, 0)
    }

    fn lanes(store: &Store) -> &LanesOf<Self> {
        &store.0.batches.release
    }

    async fn run(
        self,
        store: &Store,
        project: &str,
        name: &str,
        releases: Vec<Release>,
    ) -> Result<Vec<Result<()>>> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let delays: Vec<String> = releases.iter().map(|r| r.delay.to_string()).collect();
        let mut args: Vec<&[u8]> = vec![channel.as_bytes()];
        for (release, delay) in releases.iter().zip(&delays) {
            args.extend([
                release.id.as_bytes(),
                release.reservation_id.as_bytes(),
                delay.as_bytes(),
            ]);
        }
        let mut reply = store.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check("")?;
        releases
            .iter()
            .map(|release| Ok(reply.status()?.check(&release.id)))
            .collect()
    }
}
