//! The REST calls of the command-line client, and what their failures mean for its exit code.

use super::config::Target;
use super::{Exit, Failure};
use percent_encoding::{AsciiSet, CONTROLS};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// What a queue name or message id must escape in a URL path.
pub const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub struct Api {
    http: reqwest::Client,
    target: Target,
}

/// `queues/NAME` with the name escaped, and more segments after it.
pub fn queue_path(queue: &str, rest: &[&str]) -> String {
    let mut path = format!("/queues/{}", escape(queue));
    for segment in rest {
        path.push('/');
        path.push_str(&escape(segment));
    }
    path
}

fn escape(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

impl Api {
    pub fn new(target: Target) -> Result<Self, Failure> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Failure::new(Exit::Unreachable, format!("cannot start HTTP: {e}")))?;
        Ok(Api { http, target })
    }

    /// Sends a request to `path` under the project, and answers its JSON body. Any answer but
    /// 2xx is a failure carrying the server's `msg`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.target.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("Authorization", format!("OAuth {}", self.target.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            Failure::new(
                Exit::Unreachable,
                format!("cannot reach {url}: {}", root_cause(&e)),
            )
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            Failure::new(
                Exit::Unreachable,
                format!("{method} {url}: {}", root_cause(&e)),
            )
        })?;
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let msg = json["msg"]
            .as_str()
            .map_or_else(|| text.trim().to_string(), String::from);
        let exit = match status.as_u16() {
            401 | 403 => Exit::Refused,
            404 => Exit::NotFound,
            400..=499 => Exit::BadRequest,
            _ => Exit::Server,
        };
        Err(Failure::new(exit, format!("{status}: {msg}")))
    }

    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.call(Method::DELETE, path, Some(body)).await
    }
}

/// The innermost error, which says what went wrong ("Connection refused").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
