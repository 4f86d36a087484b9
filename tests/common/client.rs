//! The JSON client of the REST API, which checks that every answer is JSON, and its helpers
//! for the calls tests make most.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A plain HTTP client (TLS set up as the binary does it).
pub fn http() -> reqwest::Client {
    ferromq::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// An HTTP client that trusts the certificate authority in `authority_pem` as well.
pub fn http_trusting(authority_pem: &str) -> reqwest::Client {
    ferromq::tls::install_crypto_provider();
    let authority = reqwest::Certificate::from_pem(authority_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(authority)
        .build()
        .unwrap()
}

/// An HTTP client for one server and token.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

/// Status and parsed JSON body of an answer.
pub type Answer = (StatusCode, Value);

/// Reads an answer, checking what every answer of the API must be: JSON, and an error with a
/// `msg`. `Err` only when the body cannot be read.
async fn checked_answer(path: &str, response: reqwest::Response) -> reqwest::Result<Answer> {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.bytes().await?;
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{path}: content type ({status})"
    );
    let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{path}: body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    if !status.is_success() {
        assert!(json["msg"].is_string(), "{path}: error without msg: {json}");
    }
    Ok((status, json))
}

impl Client {
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Client {
            base: base.to_string(),
            token: token.map(String::from),
            http: http(),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Self {
        Client {
            token: token.map(String::from),
            ..self.clone()
        }
    }

    /// A request to `path` with the client's token.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => request.header("Authorization", format!("OAuth {token}")),
            None => request,
        }
    }

    /// Sends a request with an optional raw body and checks the answer is JSON with exactly
    /// `Content-Type: application/json` (clients compare it), and that errors carry a `msg`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.request(method, path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request sent");
        checked_answer(path, response).await.expect("body read")
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, body, &[("Content-Type", "application/json")])
            .await
    }

    /// Like `call`, for servers that may die or stall: a request not sent, or not answered
    /// within `limit`, is an `Err` with the reason instead of a panic. Answers are checked as
    /// in `raw` (JSON, and a `msg` on errors).
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        limit: Duration,
    ) -> Result<Answer, String> {
        let mut request = self.request(method, path).timeout(limit);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&body).unwrap());
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
        checked_answer(path, response)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: Option<Value>) -> Answer {
        self.call(Method::DELETE, path, body).await
    }
}

/// Path of a queue in project `p`.
pub fn q(queue: &str) -> String {
    format!("/3/projects/p/queues/{queue}")
}

/// Posts bodies to a queue and returns their ids.
pub async fn post_bodies(client: &Client, queue: &str, bodies: &[&str]) -> Vec<String> {
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::json!({ "body": b }))
        .collect();
    let (status, json) = client
        .post(
            &format!("{}/messages", q(queue)),
            serde_json::json!({ "messages": messages }),
        )
        .await;
    posted_ids(status, &json)
}

/// The ids a post answered with, once it is checked to be a 201.
pub fn posted_ids(status: StatusCode, json: &Value) -> Vec<String> {
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

/// Reserves with the given request body and returns the messages.
pub async fn reserve(client: &Client, queue: &str, body: Value) -> Vec<Value> {
    let (status, json) = client
        .post(&format!("{}/reservations", q(queue)), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["messages"].as_array().expect("messages array").clone()
}

/// Reserves (with the default request) every 20 ms until something comes back or `limit`
/// passes.
pub async fn reserve_within(client: &Client, queue: &str, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let got = reserve(client, queue, serde_json::json!({})).await;
        if !got.is_empty() || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
