//! Reading the flat arrays the Lua scripts answer with, front to back.

use super::{Result, StoreError};
use crate::model::QueueInfo;
use redis::Value;
use std::collections::VecDeque;

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

    /// The rest of the reply as field/value pairs describing a queue, and its revision.
    pub fn queue_info(&mut self, project: &str, name: &str) -> Result<QueueInfo> {
        let mut fields = Vec::with_capacity(self.0.len() / 2);
        while !self.is_empty() {
            fields.push((self.text()?, self.text()?));
        }
        super::parse_queue_info(project, name, fields)
    }
}
