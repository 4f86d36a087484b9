//! How a script is loaded and run. Every script is sent as one text: a header made from the
//! Rust definitions of the contract (the queue's keys from `keys.rs`, the statuses from
//! `status.rs`), the shared helpers of `prelude.lua`, then the operation's own file. Redis keeps
//! scripts by digest (EVALSHA), so the text goes over the wire once per server.
//!
//! Why scripts and not a Redis Functions library (`FUNCTION LOAD` / `FCALL`): a library would
//! define the helpers once instead of on every call and is kept by AOF and replication, but it
//! must be loaded on every primary of a cluster, and again on a primary that lost it (a
//! failover to a replica that never had it, a `FUNCTION FLUSH`), which EVALSHA's load-on-miss
//! gives scripts for free. The line numbers it would fix are fixed here by `locate`. Worth an
//! A/B run (the cost of defining the prelude's helpers on each call) before a switch.

use super::keys::{Holds, QUEUE_KEY_COUNT, QUEUE_KEYS, QueueKeys};
use super::reply::Reply;
use super::status::Status;
use super::{Result, Store, StoreError};
use redis::{Script, Value};
use std::sync::{LazyLock, OnceLock};

const PRELUDE: &str = include_str!("prelude.lua");

/// The header every script starts with: the queue's keys bound to their names, the keys that
/// hold messages (what `clear` removes), and the status constants.
static HEADER: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<&str> = QUEUE_KEYS.iter().map(|(name, _, _)| *name).collect();
    let message_keys: Vec<&str> = QUEUE_KEYS
        .iter()
        .filter(|(_, _, holds)| *holds == Holds::Messages)
        .map(|(name, _, _)| *name)
        .collect();
    let slots: Vec<String> = (1..=QUEUE_KEY_COUNT)
        .map(|i| format!("KEYS[{i}]"))
        .collect();
    format!(
        "-- generated from src/store/keys.rs and src/store/status.rs\n\
         local {} = {}\n\
         local QUEUE_KEY_COUNT = {QUEUE_KEY_COUNT}\n\
         local MESSAGE_KEYS = {{ {} }}\n\
         {}\n",
        names.join(", "),
        slots.join(", "),
        message_keys.join(", "),
        Status::lua_constants(),
    )
});

/// One operation's script, loaded on first use.
pub struct OpScript {
    /// The operation's file name, for errors.
    file: &'static str,
    body: &'static str,
    loaded: OnceLock<Script>,
    /// Whether its changes wait for replicas (see `Durability`).
    changes: bool,
}

impl OpScript {
    pub const fn new(file: &'static str, body: &'static str) -> Self {
        OpScript {
            file,
            body,
            loaded: OnceLock::new(),
            changes: true,
        }
    }

    /// A script that reads, or changes only what any later call would change the same way
    /// (moving timed-out reservations back): its answer does not wait for replicas.
    pub const fn reading(file: &'static str, body: &'static str) -> Self {
        OpScript {
            file,
            body,
            loaded: OnceLock::new(),
            changes: false,
        }
    }

    /// A script that writes only what is kept for watching (history): its answer does not
    /// wait for replicas.
    pub const fn watching(file: &'static str, body: &'static str) -> Self {
        Self::reading(file, body)
    }

    fn script(&self) -> &Script {
        self.loaded
            .get_or_init(|| Script::new(&format!("{}{PRELUDE}\n{}", *HEADER, self.body)))
    }

    /// Where line `line` of the loaded text comes from: `post.lua:12`, `prelude.lua:40`.
    fn locate(&self, line: usize) -> String {
        let header = HEADER.lines().count();
        let prelude = PRELUDE.lines().count() + 1;
        match line {
            0 => self.file.to_string(),
            l if l <= header => format!("the script header, line {l}"),
            l if l <= header + prelude => format!("prelude.lua:{}", l - header),
            l => format!("{}:{}", self.file, l - header - prelude),
        }
    }

    /// A script error naming the file and line it comes from instead of the loaded text's line
    /// (counted in the store-errors metric as every failure Redis answers is).
    fn located(&self, err: redis::RedisError) -> StoreError {
        let text = err.to_string();
        // A script refused or cut short because Redis cannot take writes now is no fault of
        // the script's.
        let line = script_line(&text).filter(|_| !StoreError::unreachable(&err));
        let Some(line) = line else {
            return err.into();
        };
        let at = self.locate(line);
        StoreError::Script {
            detail: text.replace(&format!("user_script:{line}"), &at),
            at,
        }
        .counted()
    }
}

/// The line of the loaded script an error names: Redis writes `user_script:12:` for a Lua
/// error, and `... on @user_script:12.` for a failed `redis.call`.
fn script_line(error: &str) -> Option<usize> {
    let (_, rest) = error.split_once("user_script:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Store {
    /// Runs a script on a queue's keys.
    pub(super) async fn run(
        &self,
        script: &OpScript,
        keys: &QueueKeys,
        args: &[&[u8]],
    ) -> Result<Reply> {
        self.run_with(script, keys, &[], args).await
    }

    /// Runs a script on a queue's keys, then `extra_keys` (of the queue's slot), which the
    /// script finds from `KEYS[QUEUE_KEY_COUNT + 1]` on.
    pub(super) async fn run_with(
        &self,
        script: &OpScript,
        keys: &QueueKeys,
        extra_keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Reply> {
        let mut invocation = script.script().prepare_invoke();
        for key in keys.all() {
            invocation.key(key);
        }
        for key in extra_keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let durability = self.0.durability;
        let confirming = script.changes && durability.replicas > 0;
        let mut conn = match confirming {
            true => self.connection().pinned().await?,
            false => self.connection(),
        };
        let value: Value = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|err| script.located(err))?;
        if confirming {
            // One WAIT for the call, which carries every request it coalesced. Past this
            // point the change is made: any failure says it may or may not be kept.
            let confirmed = conn
                .wait_for_replicas(keys.cfg(), durability)
                .await
                .map_err(|err| StoreError::Unconfirmed(err.to_string()))?;
            if confirmed < durability.replicas {
                return Err(StoreError::NotReplicated {
                    wanted: durability.replicas,
                    confirmed,
                });
            }
            // A deposed primary that still has a replica would confirm changes the new
            // primary never gets.
            if !conn.still_primary().await {
                return Err(StoreError::Deposed);
            }
        }
        Reply::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line (from 1) of the loaded text that holds `needle`.
    fn loaded_line(script: &OpScript, needle: &str) -> usize {
        let text = format!("{}{PRELUDE}\n{}", *HEADER, script.body);
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn errors_name_the_file_and_line_they_come_from() {
        let script = OpScript::new("post.lua", "local a = 1\nlocal b = nil + 1\n");
        let body_line = loaded_line(&script, "local b = nil");
        assert_eq!(script.locate(body_line), "post.lua:2");
        let prelude_line = loaded_line(&script, "local function call_many");
        let in_prelude = PRELUDE
            .lines()
            .position(|l| l.contains("local function call_many"))
            .unwrap()
            + 1;
        assert_eq!(
            script.locate(prelude_line),
            format!("prelude.lua:{in_prelude}")
        );
    }

    #[test]
    fn the_line_is_read_from_both_forms_of_script_error() {
        // As Redis 7 words them: an error of the Lua code, and a failed redis.call.
        let lua = "ERR user_script:230: Script attempted to access nonexistent global variable 'x' script: 0a1b, on @user_script:230.";
        let call = "WRONGTYPE Operation against a key holding the wrong kind of value script: 0a1b, on @user_script:57.";
        assert_eq!(script_line(lua), Some(230));
        assert_eq!(script_line(call), Some(57));
        assert_eq!(script_line("ERR something else"), None);
    }

    #[test]
    fn the_header_binds_every_key_and_status() {
        for (name, _, _) in QUEUE_KEYS {
            assert!(HEADER.contains(name), "{name}");
        }
        for status in Status::ALL {
            assert!(HEADER.contains(status.lua_name()), "{status:?}");
        }
    }
}
