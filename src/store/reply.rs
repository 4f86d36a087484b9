//! Reading the flat arrays the Lua scripts answer with, front to back.

use super::status::Status;
use super::{Result, StoreError};
use crate::model::{DeadLetter, QueueConfig, QueueInfo, QueueType};
use redis::Value;
use std::collections::VecDeque;
use std::time::Duration;

pub struct Reply(VecDeque<Value>);

impl Reply {
    pub fn new(value: Value) -> Result<Self> {
        match value {
            Value::Array(items) => Ok(Reply(items.into())),
            other => Err(StoreError::BadReply(format!(
                "expected an array, got {other:?}"
            ))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn next(&mut self) -> Result<Value> {
        self.0
            .pop_front()
            .ok_or_else(|| StoreError::BadReply("reply ended early".into()))
    }

    pub fn int(&mut self) -> Result<i64> {
        match self.next()? {
            Value::Int(i) => Ok(i),
            Value::BulkString(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::BadReply("expected an integer".into())),
            other => Err(StoreError::BadReply(format!(
                "expected an integer, got {other:?}"
            ))),
        }
    }

    /// The status a script answers with first.
    pub fn status(&mut self) -> Result<Status> {
        let code = self.int()?;
        Status::from_code(code)
            .ok_or_else(|| StoreError::BadReply(format!("unknown status {code}")))
    }

    /// How long until something falls due, in ms (-1 when nothing will): what a long-poll
    /// attempt that found nothing answers.
    pub fn next_due(&mut self) -> Result<Option<Duration>> {
        Ok(u64::try_from(self.int()?).ok().map(Duration::from_millis))
    }

    /// A count that cannot be negative.
    pub fn count(&mut self) -> Result<u64> {
        u64::try_from(self.int()?).map_err(|_| StoreError::BadReply("negative count".into()))
    }

    pub fn text(&mut self) -> Result<String> {
        match self.next()? {
            Value::BulkString(b) => {
                String::from_utf8(b).map_err(|_| StoreError::BadReply("text is not UTF-8".into()))
            }
            Value::SimpleString(s) => Ok(s),
            Value::Int(i) => Ok(i.to_string()),
            other => Err(StoreError::BadReply(format!(
                "expected text, got {other:?}"
            ))),
        }
    }

    /// The rest of the reply as field/value pairs describing a queue (its settings, their
    /// revision among them, and its counters).
    pub fn queue_info(&mut self, project: &str, name: &str) -> Result<QueueInfo> {
        let mut fields = Vec::with_capacity(self.0.len() / 2);
        while !self.is_empty() {
            fields.push((self.text()?, self.text()?));
        }
        parse_queue_info(project, name, fields)
    }
}

/// Reads a queue's fields out of a script reply.
fn parse_queue_info(project: &str, name: &str, fields: Vec<(String, String)>) -> Result<QueueInfo> {
    let mut info = QueueInfo {
        id: String::new(),
        project: project.to_string(),
        name: name.to_string(),
        config: QueueConfig::default(),
        size: 0,
        total_messages: 0,
    };
    let number = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| StoreError::BadReply(format!("not a number: {v}")))
    };
    let (mut dead_letter_queue, mut max_reservations) = (String::new(), 0);
    for (field, value) in fields {
        match field.as_str() {
            "id" => info.id = value,
            "rev" => info.config.revision = value,
            "type" => {
                info.config.queue_type = QueueType::parse(&value)
                    .ok_or_else(|| StoreError::BadReply(format!("unknown queue type {value}")))?
            }
            "message_timeout" => info.config.message_timeout = number(&value)?,
            "message_expiration" => info.config.message_expiration = number(&value)?,
            "max_message_size" => info.config.max_message_size = number(&value)?,
            "managed_by" => info.config.managed_by = Some(value).filter(|v| !v.is_empty()),
            "rest" => info.config.rest_configured = value == "1",
            "released_by" => info.config.released_by = Some(value).filter(|v| !v.is_empty()),
            "push" => {
                info.config.push = Some(
                    serde_json::from_str(&value)
                        .map_err(|e| StoreError::BadReply(format!("push settings: {e}")))?,
                )
            }
            "dead_letter_queue" => dead_letter_queue = value,
            "alerts" => {
                info.config.alerts = serde_json::from_str(&value)
                    .map_err(|e| StoreError::BadReply(format!("alerts: {e}")))?
            }
            "dead_letter_max" => {
                max_reservations = u32::try_from(number(&value)?)
                    .map_err(|_| StoreError::BadReply(format!("dead_letter_max {value}")))?
            }
            "size" => info.size = number(&value)?,
            "total_messages" => info.total_messages = number(&value)?,
            _ => {}
        }
    }
    // '' when the queue has none (apply.rs writes both fields).
    info.config.dead_letter = (!dead_letter_queue.is_empty()).then_some(DeadLetter {
        queue: dead_letter_queue,
        max_reservations,
    });
    Ok(info)
}
