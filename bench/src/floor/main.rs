//! `ferromq-floor`: the benchmark's floor. The least server that does ferromq's HTTP work for the
//! benchmark's routes (axum, the same token check, JSON shapes and statuses) over the least Redis
//! work a queue needs: one small script per request that stores a body and queues its id,
//! reserves ids for a while (putting lapsed ones back), or deletes a reserved message for its
//! holder. ferromq's cost divided by the floor's is the headroom left in ferromq's own work.
//!
//! Not a queue to use: no settings, limits, long polls, push, metrics or error detail.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use clap::Parser;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The same allocator as ferromq, so the comparison is of the work and not of the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Redis URL (`redis://…` or `unix://…`).
    #[arg(long)]
    redis: String,
    /// The one token accepted (`Authorization: OAuth <token>`).
    #[arg(long)]
    token: String,
}

struct Floor {
    redis: MultiplexedConnection,
    authorization: String,
    post: Script,
    reserve: Script,
    delete: Script,
}

type Shared = State<Arc<Floor>>;

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let client = redis::Client::open(args.redis).map_err(|e| e.to_string())?;
    // As long as ferromq waits for Redis: an fsync of the append-only file may stall it.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(5)));
    let redis = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let floor = Arc::new(Floor {
        redis,
        authorization: format!("OAuth {}", args.token),
        post: Script::new(include_str!("post.lua")),
        reserve: Script::new(include_str!("reserve.lua")),
        delete: Script::new(include_str!("delete.lua")),
    });
    let queue = "/3/projects/{project}/queues/{queue}";
    let app = Router::new()
        .route(queue, put(create))
        .route(&format!("{queue}/messages"), post(post_messages))
        .route(&format!("{queue}/messages"), delete(delete_many))
        .route(&format!("{queue}/messages/{{id}}"), delete(delete_one))
        .route(&format!("{queue}/reservations"), post(reserve))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// A refused request: an IronMQ-style error answer.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "msg": self.1 }))).into_response()
    }
}

type Answer = Result<Response, Refused>;

/// The keys of one queue, under one hash tag.
fn key(project: &str, queue: &str, what: &str) -> String {
    format!("floor:{{{project}:{queue}}}:{what}")
}

/// Checks the token, then parses the JSON body: the checks every ferromq request makes.
fn admit<T: for<'de> Deserialize<'de>>(
    floor: &Floor,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Refused> {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == floor.authorization.as_bytes());
    if !authorized {
        return Err(Refused(StatusCode::UNAUTHORIZED, "Unauthorized".into()));
    }
    serde_json::from_slice(body).map_err(|e| Refused(StatusCode::BAD_REQUEST, e.to_string()))
}

fn store_failed(err: redis::RedisError) -> Refused {
    Refused(StatusCode::SERVICE_UNAVAILABLE, err.to_string())
}

async fn create(
    State(floor): Shared,
    Path((_, queue)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    admit::<serde_json::Value>(&floor, &headers, &body)?;
    Ok(axum::Json(json!({ "queue": { "name": queue } })).into_response())
}

#[derive(Deserialize)]
struct PostBody {
    messages: Vec<NewMessage>,
}

#[derive(Deserialize)]
struct NewMessage {
    body: String,
}

async fn post_messages(
    State(floor): Shared,
    Path((project, queue)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: PostBody = admit(&floor, &headers, &body)?;
    if request.messages.is_empty() {
        return Err(Refused(StatusCode::BAD_REQUEST, "no messages".into()));
    }
    let mut invocation = floor.post.prepare_invoke();
    for what in ["seq", "bodies", "ready"] {
        invocation.key(key(&project, &queue, what));
    }
    for message in &request.messages {
        invocation.arg(&message.body);
    }
    let first: u64 = invocation
        .invoke_async(&mut floor.redis.clone())
        .await
        .map_err(store_failed)?;
    let ids: Vec<String> = (0..request.messages.len() as u64)
        .map(|i| (first + i).to_string())
        .collect();
    let answer = json!({ "ids": ids, "msg": "Messages put on queue." });
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

#[derive(Deserialize)]
struct ReserveBody {
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    timeout: Option<u64>,
}

async fn reserve(
    State(floor): Shared,
    Path((project, queue)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: ReserveBody = admit(&floor, &headers, &body)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut invocation = floor.reserve.prepare_invoke();
    for what in ["bodies", "ready", "reserved", "holders"] {
        invocation.key(key(&project, &queue, what));
    }
    invocation
        .arg(request.n.unwrap_or(1).clamp(1, 100))
        .arg(now)
        .arg(request.timeout.unwrap_or(60).clamp(30, 86_400) * 1000)
        .arg(format!("{}-", uuid::Uuid::new_v4().simple()));
    let triples: Vec<Value> = invocation
        .invoke_async(&mut floor.redis.clone())
        .await
        .map_err(store_failed)?;
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let messages: Vec<serde_json::Value> = triples
        .chunks_exact(3)
        .map(|m| {
            json!({ "id": text(&m[0]), "body": text(&m[1]), "reserved_count": 1,
                    "reservation_id": text(&m[2]) })
        })
        .collect();
    Ok(axum::Json(json!({ "messages": messages })).into_response())
}

#[derive(Deserialize)]
struct DeleteOne {
    reservation_id: String,
}

#[derive(Deserialize)]
struct DeleteMany {
    #[serde(default)]
    ids: Option<Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    reservation_id: String,
}

/// Runs delete.lua on (id, reservation id) pairs: "Deleted" when every one was held, else 403.
async fn delete_held(floor: &Floor, project: &str, queue: &str, pairs: &[(&str, &str)]) -> Answer {
    let mut invocation = floor.delete.prepare_invoke();
    for what in ["bodies", "reserved", "holders"] {
        invocation.key(key(project, queue, what));
    }
    for (id, rid) in pairs {
        invocation.arg(*id).arg(*rid);
    }
    let deleted: Vec<u8> = invocation
        .invoke_async(&mut floor.redis.clone())
        .await
        .map_err(store_failed)?;
    if deleted.iter().any(|d| *d != 1) {
        let msg = "Wrong or lapsed reservation".into();
        return Err(Refused(StatusCode::FORBIDDEN, msg));
    }
    Ok(axum::Json(json!({ "msg": "Deleted" })).into_response())
}

async fn delete_one(
    State(floor): Shared,
    Path((project, queue, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: DeleteOne = admit(&floor, &headers, &body)?;
    delete_held(&floor, &project, &queue, &[(&id, &request.reservation_id)]).await
}

/// Deletes the listed reserved messages, or with no list clears the queue.
async fn delete_many(
    State(floor): Shared,
    Path((project, queue)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request: DeleteMany = admit(&floor, &headers, &body)?;
    match request.ids {
        Some(entries) => {
            let pairs: Vec<(&str, &str)> = entries
                .iter()
                .map(|e| (e.id.as_str(), e.reservation_id.as_str()))
                .collect();
            delete_held(&floor, &project, &queue, &pairs).await
        }
        None => {
            let keys: Vec<String> = ["seq", "bodies", "ready", "reserved", "holders"]
                .iter()
                .map(|what| key(&project, &queue, what))
                .collect();
            let () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut floor.redis.clone())
                .await
                .map_err(store_failed)?;
            Ok(axum::Json(json!({ "msg": "Cleared" })).into_response())
        }
    }
}
