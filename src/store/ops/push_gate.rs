//! Per-subscriber flow control and circuit breaker, shared by every push worker of every
//! process: before a round delivers to subscribers that set `max_per_second`,
//! `max_concurrency` or `pause_after_failures`, it asks `push_gate_admit.lua` which may go now;
//! after their answers it tells `push_gate_settle.lua` what they came to.
//!
//! In Redis, beside the queue's keys (same hash tag): the gate hash, fields per subscriber key
//! - `<key>:tat`: the rate limit's next free slot (GCRA), ms since the epoch, and `<key>:rate`
//!   the rate it was booked at (a new rate starts over);
//! - `<key>:until`: no delivery before this (a Retry-After, or the breaker's pause);
//! - `<key>:open`: present while its breaker is open, counting the pauses in a row;
//! - `<key>:probe`: while a probe is in flight, when its lease ends;
//! - `<key>:fails`: failed tries in a row;
//!
//! and, per subscriber with `max_concurrency`, a sorted set of its deliveries in flight (lease
//! -> ms it ends), so a lease whose process died runs out. Both expire when left alone.
//!
//! A delivery the rate limit cannot let through now books the next free slot for that message
//! (the `slot` kept in its push state), so each waiting message asks once, not once a tick.

use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store, StoreError};
use std::time::Duration;

static ADMIT: OpScript = OpScript::new("push_gate_admit.lua", include_str!("push_gate_admit.lua"));
static SETTLE: OpScript =
    OpScript::new("push_gate_settle.lua", include_str!("push_gate_settle.lua"));

/// A subscriber about to be delivered to, with its limits.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Its key in the push state.
    pub key: &'a str,
    /// 0 for no limit.
    pub max_per_second: f64,
    pub max_concurrency: u32,
    /// 0 for no circuit breaker (one left open from before is closed).
    pub pause_after_failures: u32,
    /// The slot its rate limit booked for this message, ms since the epoch; 0 for none.
    pub slot: u64,
    pub probe_interval: Duration,
}

/// May a delivery go now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// Go: the one delivery that probes a paused subscriber.
    Probe,
    /// Not before `wait` has passed: a Retry-After answer paused the subscriber.
    Paused {
        wait: Duration,
    },
    /// Its circuit breaker is open.
    Open {
        wait: Duration,
    },
    /// Its `max_concurrency` deliveries are in flight.
    Busy,
    /// Its rate is used up: this message's slot is at `slot` (ms since the epoch).
    Rate {
        wait: Duration,
        slot: u64,
    },
}

/// The gate's answer for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub verdict: Verdict,
    /// Whether its circuit breaker is open.
    pub open: bool,
}

/// What a delivery let through came to.
#[derive(Debug, Clone)]
pub struct Settled<'a> {
    pub key: &'a str,
    /// Whether a `max_concurrency` lease was taken (it is freed).
    pub leased: bool,
    /// `Some(true)` it took the message, `Some(false)` it failed, `None` neither (a 429).
    pub took: Option<bool>,
    /// 0 for no breaker.
    pub pause_after_failures: u32,
    pub probe_interval: Duration,
    pub probed: bool,
    pub retry_after: Duration,
}

/// How a subscriber's circuit breaker moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Opened,
    /// A probe failed: paused again, for longer.
    Reopened,
    Closed,
}

/// Where a settled subscriber stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub change: Change,
    pub open: bool,
    /// How long it stays paused (zero when it is not).
    pub paused_for: Duration,
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

impl Store {
    /// Asks whether deliveries to `entries` may go now; `lease` names them (the round's
    /// reservation id) and lasts as long as the round's claim, should its process die.
    pub async fn admit_push(
        &self,
        project: &str,
        queue: &str,
        entries: &[Entry<'_>],
        lease: &str,
        lease_for: Duration,
    ) -> Result<Vec<Admission>> {
        let keys = QueueKeys::new(project, queue);
        let extra = gate_keys(&keys, entries.iter().map(|e| e.key));
        let mut args: Vec<String> = vec![entries.len().to_string()];
        for e in entries {
            args.extend([
                e.key.to_string(),
                e.max_per_second.to_string(),
                e.max_concurrency.to_string(),
                e.pause_after_failures.to_string(),
                lease.to_string(),
                ms(lease_for),
                e.slot.to_string(),
                ms(e.probe_interval),
            ]);
        }
        let mut reply = self.run_gate(&ADMIT, &keys, &extra, &args).await?;
        let mut admissions = Vec::with_capacity(entries.len());
        for _ in entries {
            let verdict = reply.text()?;
            let wait = Duration::from_millis(reply.count()?);
            let slot = reply.count()?;
            let open = reply.int()? == 1;
            let verdict = match verdict.as_str() {
                "go" => Verdict::Go,
                "probe" => Verdict::Probe,
                "pause" => Verdict::Paused { wait },
                "open" => Verdict::Open { wait },
                "concurrency" => Verdict::Busy,
                "rate" => Verdict::Rate { wait, slot },
                other => return Err(StoreError::BadReply(format!("unknown verdict {other}"))),
            };
            admissions.push(Admission { verdict, open });
        }
        Ok(admissions)
    }

    /// Records what the deliveries let through came to; where each subscriber stands now.
    pub async fn settle_push(
        &self,
        project: &str,
        queue: &str,
        settled: &[Settled<'_>],
        lease: &str,
    ) -> Result<Vec<Standing>> {
        let keys = QueueKeys::new(project, queue);
        let extra = gate_keys(&keys, settled.iter().map(|s| s.key));
        let mut args: Vec<String> = vec![settled.len().to_string()];
        for s in settled {
            let outcome = match s.took {
                Some(true) => "took",
                Some(false) => "failed",
                None => "neither",
            };
            args.extend([
                s.key.to_string(),
                if s.leased {
                    lease.to_string()
                } else {
                    String::new()
                },
                outcome.to_string(),
                s.pause_after_failures.to_string(),
                ms(s.probe_interval),
                if s.probed { "1" } else { "0" }.to_string(),
                ms(s.retry_after),
            ]);
        }
        let mut reply = self.run_gate(&SETTLE, &keys, &extra, &args).await?;
        let mut standings = Vec::with_capacity(settled.len());
        for _ in settled {
            let change = match reply.text()?.as_str() {
                "opened" => Change::Opened,
                "reopened" => Change::Reopened,
                "closed" => Change::Closed,
                _ => Change::None,
            };
            let open = reply.int()? == 1;
            let paused_for = Duration::from_millis(reply.count()?);
            standings.push(Standing {
                change,
                open,
                paused_for,
            });
        }
        Ok(standings)
    }

    /// Every subscriber of a queue whose circuit breaker is open, with when its pause ends
    /// (ms since the epoch), by subscriber key.
    pub async fn open_circuits(
        &self,
        project: &str,
        queue: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>> {
        use redis::AsyncCommands;
        let mut conn = self.connection();
        let fields: Vec<(String, String)> =
            conn.hgetall(QueueKeys::new(project, queue).gate()).await?;
        let mut until = std::collections::BTreeMap::new();
        let mut open = Vec::new();
        for (field, value) in fields {
            if let Some(key) = field.strip_suffix(":open") {
                open.push(key.to_string());
            } else if let Some(key) = field.strip_suffix(":until") {
                until.insert(key.to_string(), value.parse().unwrap_or(0));
            }
        }
        Ok(open
            .into_iter()
            .map(|key| {
                let ends = until.get(&key).copied().unwrap_or(0);
                (key, ends)
            })
            .collect())
    }

    async fn run_gate(
        &self,
        script: &OpScript,
        keys: &QueueKeys,
        extra: &[String],
        args: &[String],
    ) -> Result<crate::store::reply::Reply> {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut reply = self.run_with(script, keys, &extra, &args).await?;
        reply.status()?.check("")?;
        Ok(reply)
    }
}

/// The gate hash, then the in-flight set of each subscriber.
fn gate_keys<'a>(keys: &QueueKeys, subscribers: impl Iterator<Item = &'a str>) -> Vec<String> {
    std::iter::once(keys.gate().to_string())
        .chain(subscribers.map(|key| keys.in_flight(key)))
        .collect()
}
