//! Reserving messages, with or without a long poll (`reserve.lua`). Concurrent reserves on one
//! queue share a script call (`coalesce.rs`), which hands the messages out in arrival order.

use crate::metrics::METRICS;
use crate::model::{Message, ReserveRequest, Trace};
use crate::store::coalesce::{self, Batched, LanesOf};
use crate::store::keys::QueueKeys;
use crate::store::ops::history::Used;
use crate::store::script::OpScript;
use crate::store::{Result, Store, random_id};
use std::time::Duration;

static SCRIPT: OpScript = OpScript::new("reserve.lua", include_str!("reserve.lua"));

impl Store {
    /// Reserves up to `request.n` messages. With a `wait`, holds on (long poll) until at least
    /// one message is ready or the wait is over; a post through any process wakes it.
    pub async fn reserve(
        &self,
        project: &str,
        name: &str,
        request: &ReserveRequest,
        wait: Duration,
    ) -> Result<Vec<Message>> {
        let keys = QueueKeys::new(project, name);
        let messages = self
            .long_poll(&keys, wait, |poll| {
                coalesce::call(Reserve, self, project, name, (*request, poll))
            })
            .await?;
        let (operation, used) = match request.delete {
            true => ("deleted", Used::Deleted),
            false => ("reserved", Used::Reserved),
        };
        METRICS.count(operation, messages.len() as u64);
        self.0
            .activity
            .add(project, name, used, messages.len() as u64);
        Ok(messages)
    }
}

/// The reserve operation, for batching: one attempt of a request, with the wait left when it
/// is a long poll (the attempt registers as a waiter when it finds nothing).
#[derive(Clone, Copy)]
pub struct Reserve;

impl Batched for Reserve {
    type Request = (ReserveRequest, Option<Duration>);
    /// The messages, and how long until something falls due when none was found.
    type Answer = (Vec<Message>, Option<Duration>);

    fn weight((request, _): &Self::Request) -> (usize, usize) {
        (request.n, 0)
    }

    fn lanes(store: &Store) -> &LanesOf<Self> {
        &store.0.batches.reserve
    }

    async fn run(
        self,
        store: &Store,
        project: &str,
        name: &str,
        requests: Vec<Self::Request>,
    ) -> Result<Vec<Result<Self::Answer>>> {
        let keys = QueueKeys::new(project, name);
        let wait = requests.iter().filter_map(|(_, wait)| *wait).max();
        let (waiter, wait_ms) = store.waiter(wait);
        let count = requests.len().to_string();
        let flag = |on: bool| if on { "1" } else { "0" }.to_string();
        let values: Vec<[String; 4]> = requests
            .iter()
            .map(|(r, wait)| {
                [
                    r.n.to_string(),
                    r.timeout.unwrap_or(0).to_string(),
                    flag(r.delete),
                    flag(wait.is_some()),
                ]
            })
            .collect();
        let reserving: usize = requests
            .iter()
            .filter(|(r, _)| !r.delete)
            .map(|(r, _)| r.n)
            .sum();
        let reservation_ids: Vec<String> = (0..reserving).map(|_| random_id()).collect();
        let mut args: Vec<&[u8]> = vec![waiter.as_bytes(), wait_ms.as_bytes(), count.as_bytes()];
        args.extend(values.iter().flatten().map(|v| v.as_bytes()));
        args.extend(reservation_ids.iter().map(|r| r.as_bytes()));
        let mut reply = store.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check("")?;
        let next_due = reply.next_due()?;
        let mut answers = Vec::with_capacity(requests.len());
        for _ in &requests {
            let k = reply.count()?;
            let mut messages = Vec::new();
            for _ in 0..k {
                let id = reply.text()?;
                let body = reply.text()?;
                let reserved_count = reply.count()?;
                let reservation_id = Some(reply.text()?).filter(|r| !r.is_empty());
                let trace = Trace::from_push_headers(&reply.text()?);
                messages.push(Message {
                    id,
                    body,
                    reserved_count,
                    reservation_id,
                    trace,
                });
            }
            answers.push(Ok((messages, next_due)));
        }
        // Messages past the dead-letter queue's max_reservations (from this call, or left by
        // a move that did not finish) go there now.
        let dead_letter = reply.text()?;
        if reply.int()? > 0 && !dead_letter.is_empty() {
            store.start_dead_letter_move(project, name, &dead_letter);
        }
        store.alerts_fired(project, name, reply.count()?);
        Ok(answers)
    }
}
