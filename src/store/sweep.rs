//! Background work a process may die with, taken over by the others: every process looks now
//! and then at the store-wide lists of running redrives (REDRIVES) and of queues with alert
//! messages waiting (ALERTS_PENDING), and runs what nobody in it runs. A lease on each (kept in
//! the queue) makes the work wait until the process that holds it is gone.

use super::Store;
use super::keys::{ALERTS_PENDING, REDRIVES};
use redis::AsyncCommands;
use std::time::Duration;

/// How often each process looks.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

impl Store {
    /// Looks every `SWEEP_EVERY`, for the life of the process.
    pub async fn sweep(self) {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            for (list, alerts) in [(REDRIVES, false), (ALERTS_PENDING, true)] {
                let listed: Vec<String> = match self.connection().smembers(list).await {
                    Ok(listed) => listed,
                    Err(err) => {
                        tracing::debug!(%err, list, "cannot read background work");
                        continue;
                    }
                };
                for entry in listed {
                    let Ok((project, name)) = serde_json::from_str::<(String, String)>(&entry)
                    else {
                        continue;
                    };
                    if alerts {
                        self.alerts_fired(&project, &name, 1);
                    } else {
                        self.run_redrive_in_background(&project, &name);
                    }
                }
            }
        }
    }
}
