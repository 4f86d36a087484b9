//! Deleting one message (`delete.lua`). Concurrent deletes on one queue share a script call
//! (`coalesce.rs`), each checked and answered on its own.

use crate::metrics::METRICS;
use crate::store::coalesce::{self, Batched, LanesOf};
use crate::store::keys::QueueKeys;
use crate::store::ops::history::Used;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::new("delete.lua", include_str!("delete.lua"));

impl Store {
    /// Deletes one message; a reserved one needs its current reservation id.
    pub async fn delete_message(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: Option<&str>,
    ) -> Result<()> {
        let request = (id.to_string(), reservation_id.unwrap_or("").to_string());
        coalesce::call(Delete, self, project, name, request).await?;
        METRICS.count("deleted", 1);
        self.0.activity.add(project, name, Used::Deleted, 1);
        Ok(())
    }
}

/// The single delete, for batching: a message id and its reservation id ('' when none).
#[derive(Clone, Copy)]
pub struct Delete;

impl Batched for Delete {
    type Request = (String, String);
    type Answer = ();

    fn weight(_: &Self::Request) -> (usize, usize) {
        (1, 0)
    }

    fn lanes(store: &Store) -> &LanesOf<Self> {
        &store.0.batches.delete
    }

    async fn run(
        self,
        store: &Store,
        project: &str,
        name: &str,
        deletes: Vec<Self::Request>,
    ) -> Result<Vec<Result<()>>> {
        let keys = QueueKeys::new(project, name);
        let args: Vec<&[u8]> = deletes
            .iter()
            .flat_map(|(id, rid)| [id.as_bytes(), rid.as_bytes()])
            .collect();
        let mut reply = store.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check("")?;
        store.alerts_fired(project, name, reply.count()?);
        deletes
            .iter()
            .map(|(id, _)| Ok(reply.status()?.check(id)))
            .collect()
    }
}
