//! How a script is loaded and run. Every script is sent as one text: a header made from the
//! Rust definitions of the contract (the queue's keys from `keys.rs`, the statuses from
//! `status.rs`), the shared helpers of `prelude.lua`, then the operation's own file. Redis keeps
//! scripts by digest (EVALSHA), so the text goes over the wire once per server.

use super::keys::{QUEUE_KEY_COUNT, QUEUE_KEYS, QueueKeys};
use super::reply::Reply;
use super::status::Status;
use super::{Result, Store, StoreError};
use redis::{Script, Value};
use std::sync::{LazyLock, OnceLock};

const PRELUDE: &str = include_str!("prelude.lua");

/// The header every script starts with: the queue's keys bound to their names, the keys that
/// hold messages (every one but CFG), and the status constants.
static HEADER: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<&str> = QUEUE_KEYS.iter().map(|(name, _)| *name).collect();
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
        names[1..].join(", "),
        Status::lua_constants(),
    )
});

/// One operation's script, loaded on first use.
pub struct OpScript {
    /// The operation's file name, for errors.
    file: &'static str,
    body: &'static str,
    loaded: OnceLock<Script>,
}

impl OpScript {
    pub const fn new(file: &'static str, body: &'static str) -> Self {
        OpScript {
            file,
            body,
            loaded: OnceLock::new(),
        }
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

    /// A script error with the file and line it names, instead of the loaded text's line.
    fn located(&self, err: redis::RedisError) -> StoreError {
        let text = err.to_string();
        let line = text
            .split_once("user_script:")
            .and_then(|(_, rest)| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok());
        match line {
            Some(line) => StoreError::Script {
                at: self.locate(line),
                detail: text,
            },
            None => err.into(),
        }
    }
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
        let mut conn = self.connection();
        let value: Value = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|err| script.located(err))?;
        Reply::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_line_they_come_from() {
        let script = OpScript::new("post.lua", "local a = 1\nlocal b = nil + 1\n");
        let header = HEADER.lines().count();
        let prelude = PRELUDE.lines().count() + 1;
        assert_eq!(script.locate(header + 3), "prelude.lua:3");
        assert_eq!(script.locate(header + prelude + 2), "post.lua:2");
    }

    #[test]
    fn the_header_binds_every_key_and_status() {
        for (name, _) in QUEUE_KEYS {
            assert!(HEADER.contains(name), "{name}");
        }
        for status in Status::ALL {
            assert!(HEADER.contains(status.lua_name()), "{status:?}");
        }
    }
}
