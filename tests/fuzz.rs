//! Bad input against the data plane and a real redis-server, property-based (proptest) and
//! by example.
//!
//! The properties send arbitrary and near-valid JSON bodies to every route with every method;
//! paths whose project, queue, message-id and subscriber segments hold unicode, `%2F`, `..`,
//! `%00`, malformed percent-encoding and 10 KB strings; random query strings; random
//! Content-Type, X-HTTP-Method-Override and Authorization headers. Every answer must be a
//! status of the contract with `Content-Type: application/json` and a JSON object body (a
//! string `msg` on errors); never a 500, never a dropped connection (an in-process handler
//! panic drops it), and `/healthz` still answers after each case.
//!
//! The examples: the body limit holds before the body is read (a 100 MB Content-Length, or a
//! chunked body that keeps coming, gets a prompt 413); names and ids with unicode, slashes,
//! dots, NUL and 10 KB get clean answers and a unicode queue round-trips; names that reach
//! push deliveries (subscriber names, `ironmq://` targets, dot names in subscriber-message
//! URLs) stay usable.
//!
//! Requests go over raw TCP (`common::raw`) rather than reqwest: reqwest (the `url` crate)
//! folds `.`, `..` and `%2e%2e` path segments away and refuses some header bytes, and the
//! body-limit tests send less body than they announce. Each property serves all its cases from one
//! redis-server and one in-process server; `PROPTEST_CASES` overrides the number of cases.
//! Protocol errors hyper answers itself (a request line or header it cannot parse, a URI over
//! 64 KB, a header section over its buffer) never reach the API and are not generated.

use common::raw::{Reply, Request, call, read_reply, send, shown};
use common::subscriber::{Answer as SubscriberAnswer, Subscriber};
use common::{
    LIMITED_TOKEN, MAX_MESSAGE_SIZE, MAX_REQUEST_SIZE, RedisServer, Running, TOKEN, start_server,
};
use ferromq::store::keys::QueueKeys;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Cases per property, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;
/// Statuses an answer to bad input may have here: success, or 400, 401, 403, 404, 405, 413.
/// The contract's 409 answers changes to managed queues and its 503 an unreachable Redis (or
/// the 60 s request deadline): no queue is managed and Redis stays up, so either is a bug.
const ALLOWED: [u16; 8] = [200, 201, 400, 401, 403, 404, 405, 413];

// ---------------------------------------------------------------------------------------
// What every answer to bad input is.

/// The property every answer to bad input has.
fn check(reply: &Reply, head: bool) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{why}: answer {reply:?}"));
    if !ALLOWED.contains(&reply.status) {
        return fail("status outside the contract");
    }
    if reply.content_type.as_deref() != Some("application/json") {
        return fail("Content-Type is not application/json");
    }
    if head {
        return Ok(());
    }
    let Ok(json) = serde_json::from_slice::<Value>(&reply.body) else {
        return fail("body is not JSON");
    };
    if !json.is_object() {
        return fail("body is not a JSON object");
    }
    if reply.status >= 300 && !json["msg"].is_string() {
        return fail("error without a string msg");
    }
    Ok(())
}

/// Sends `request`, checks the answer, then checks the server still answers `/healthz`.
async fn exercise(addr: SocketAddr, request: &Request) -> Result<(), String> {
    let reply = send(addr, request).await?;
    check(&reply, request.is_head())?;
    let health = send(addr, &Request::new("GET", "/healthz"))
        .await
        .map_err(|e| format!("/healthz afterwards: {e}"))?;
    if health.status != 200 {
        return Err(format!("/healthz afterwards: {health:?}"));
    }
    Ok(())
}

/// Percent-encodes every byte but ASCII letters and digits.
fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string is JSON")
}

// ---------------------------------------------------------------------------------------
// One server per property.

/// A redis-server and the data plane in a runtime of their own, for all cases of a property.
struct Fixture {
    running: Running,
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
}

impl Fixture {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime.block_on(start_server());
        let addr = running.server.addr();
        Fixture {
            running,
            runtime,
            addr,
        }
    }

    /// Runs `case` on the property's cases; a failure panics with the smallest failing input
    /// proptest found.
    fn check_property<S>(&self, strategy: S, case: impl Fn(&Self, S::Value) -> Result<(), String>)
    where
        S: Strategy,
        S::Value: fmt::Debug,
    {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES);
        let config = Config {
            cases,
            // A failure found here becomes a named test below rather than a regression file.
            failure_persistence: None,
            max_shrink_iters: 1024,
            max_shrink_time: 30_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let outcome = runner.run(&strategy, |value| {
            case(self, value).map_err(TestCaseError::fail)
        });
        if let Err(failure) = outcome {
            panic!(
                "property failed within {cases} cases (server {}): {failure}",
                self.running.server.base
            );
        }
    }

    /// Sends each request of the property's cases and checks its answer (see `exercise`).
    fn exercise_each(&self, requests: impl Strategy<Value = Request>) {
        self.check_property(requests, |fixture, request| {
            fixture.runtime.block_on(exercise(fixture.addr, &request))
        });
    }
}

// ---------------------------------------------------------------------------------------
// Strategies: JSON text, near-valid request bodies.

/// Field names of every request body: messages, reserve, touch, release, delete, batch
/// delete, queue settings, push settings, subscribers.
const ALL_FIELDS: &[&str] = &[
    "messages",
    "body",
    "delay",
    "push_headers",
    "n",
    "timeout",
    "wait",
    "delete",
    "reservation_id",
    "subscriber_name",
    "ids",
    "id",
    "queue",
    "type",
    "message_timeout",
    "message_expiration",
    "max_message_size",
    "push",
    "subscribers",
    "retries",
    "retries_delay",
    "error_queue",
    "backoff",
    "signing_secret",
    "name",
    "url",
    "headers",
    "dead_letter",
    "alerts",
];
const MESSAGE_FIELDS: &[&str] = &["body", "delay", "push_headers"];
const RESERVE_FIELDS: &[&str] = &["n", "timeout", "wait", "delete"];
const RESERVATION_FIELDS: &[&str] = &["reservation_id", "timeout", "delay", "subscriber_name"];
const ID_FIELDS: &[&str] = &["id", "reservation_id"];
const SETTINGS_FIELDS: &[&str] = &[
    "type",
    "message_timeout",
    "message_expiration",
    "max_message_size",
    "push",
    "dead_letter",
    "alerts",
];
const PUSH_FIELDS: &[&str] = &[
    "subscribers",
    "retries",
    "retries_delay",
    "error_queue",
    "backoff",
    "signing_secret",
    "timeout",
];
const SUBSCRIBER_FIELDS: &[&str] = &["name", "url", "headers", "retries", "retries_delay"];

/// Number literals: zero and negative zero, range edges of every field, beyond i64 and u64,
/// beyond f64, floats.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "3",
    "5",
    "30",
    "31",
    "60",
    "100",
    "101",
    "1000",
    "1025",
    "3600",
    "3601",
    "86400",
    "86401",
    "604800",
    "604801",
    "2592000",
    "2592001",
    "16777217",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1e400",
    "-1e400",
    "1.5",
    "-1.5",
    "2.0",
    "1e3",
    "1E2",
    "-0.0",
    "0.1",
    "1e-7",
    "1e19",
    "1e20",
];
/// Other literals, some of them not JSON at all.
const LITERALS: &[&str] = &[
    "null",
    "true",
    "false",
    "NaN",
    "Infinity",
    "-",
    "01",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"\\x\"",
    "'single'",
    "undefined",
    "{}",
    "[]",
    "[[]]",
    "{\"\":null}",
];
/// Strings: unicode, control characters, path tricks, numbers and booleans as text, names of
/// queue types and backoffs, subscriber URLs, header names, and run-time placeholders (the
/// reserved and the ready message of the case's queue, and the reservation id).
const STRINGS: &[&str] = &[
    "",
    " ",
    "x",
    "hello",
    "日本語",
    "🦀",
    "e\u{301}",
    "\u{202e}abc",
    "\u{feff}",
    "a\u{0}b",
    "\n",
    "\r\nX-Injected: 1",
    "..",
    "../..",
    "/",
    "%2F",
    "%00",
    "\\",
    "\"",
    "5",
    " 7 ",
    "-1",
    "0",
    "1.5",
    "1e3",
    "18446744073709551616",
    "true",
    "false",
    "null",
    "pull",
    "unicast",
    "multicast",
    "PULL",
    "fixed",
    "exponential",
    "http://127.0.0.1:9/hook",
    "https://127.0.0.1:9/",
    "http://",
    "http:///x",
    "ironmq:///fz-sink",
    "ironmq://p:test-token@/fz-sink",
    "ironmq://",
    "ironmq:///",
    "ironmq:///a/b",
    "ftp://x",
    "Content-Type",
    "User-Agent",
    "X-Custom",
    "bad header",
    "Transfer-Encoding",
    "@held",
    "@ready",
    "@rsv",
];
const URLS: &[&str] = &[
    "http://127.0.0.1:9/hook",
    "https://127.0.0.1:9/",
    "HTTP://127.0.0.1:9/",
    "http://",
    "http://:9/",
    "http://[::1]:9/",
    "http://127.0.0.1:99999/",
    "ironmq:///fz-sink",
    "ironmq:///fz-sink/",
    "ironmq://p:test-token@/fz-sink",
    "ironmq://other:nope@/fz-sink",
    "ironmq://host.example/fz-sink",
    "ironmq://",
    "ironmq:///",
    "ironmq:///a/b",
    "ironmq:///日本語",
    "ironmq:///%00",
    "ftp://x",
    "",
    "日本語",
];
const HEADER_NAMES: &[&str] = &[
    "X-Custom",
    "x-custom",
    "Content-Type",
    "content-type",
    "User-Agent",
    "Iron-Message-Id",
    "Iron-Subscriber-Message-Url",
    "Transfer-Encoding",
    "Content-Length",
    "Host",
    "Connection",
    "",
    "bad header",
    "x\u{0}y",
    "日本",
    "X-\r\nInjected",
];
const SMALL_NUMBERS: &[&str] = &[
    "0", "1", "2", "3", "5", "30", "60", "100", "101", "\"5\"", "\"\"", "null", "-1", "1.0",
];

/// A long string of `len` bytes of `c` (rounded down to whole characters).
fn long(c: char, len: usize) -> String {
    std::iter::repeat_n(c, len / c.len_utf8()).collect()
}

fn string_value() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(STRINGS).prop_map(json_string),
        3 => "\\PC{0,24}".prop_map(|s| json_string(&s)),
        2 => any::<String>().prop_map(|s| json_string(&s)),
        1 => select(vec![
            long('x', 10 * 1024),
            long('日', 10 * 1024),
            long('a', MAX_MESSAGE_SIZE + 1),
            long('a', 129),
            long('a', 1025),
        ])
        .prop_map(|s| json_string(&s)),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(NUMBERS).prop_map(String::from),
        2 => select(LITERALS).prop_map(String::from),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>()
            .prop_filter("JSON has no inf or NaN", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        5 => string_value(),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(ALL_FIELDS).prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
    .boxed()
}

fn object_text(members: &[(String, String)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_string(k)))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn array_text(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// Any JSON value (and some that are not JSON), nested up to three deep.
fn value() -> BoxedStrategy<String> {
    leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(|items| array_text(&items)),
                vec((key(), inner), 0..4).prop_map(|members| object_text(&members)),
            ]
        })
        .boxed()
}

/// An object with some of `fields` (each with a value of about the right kind, or anything),
/// and sometimes an unknown member or a duplicate.
fn object(fields: &'static [&'static str]) -> BoxedStrategy<String> {
    object_of_at_least(fields, 0)
}

/// Like `object`, with at least `min` of `fields`.
fn object_of_at_least(fields: &'static [&'static str], min: usize) -> BoxedStrategy<String> {
    (
        proptest::sample::subsequence(fields, min..=fields.len()),
        proptest::option::weighted(0.2, (key(), value())),
    )
        .prop_flat_map(|(names, extra)| {
            let values: Vec<BoxedStrategy<String>> = names.iter().map(|n| field(n)).collect();
            (Just(names), values, Just(extra))
        })
        .prop_map(|(names, values, extra)| {
            let mut members: Vec<(String, String)> =
                names.iter().map(|n| n.to_string()).zip(values).collect();
            members.extend(extra);
            object_text(&members)
        })
        .boxed()
}

fn header_object() -> BoxedStrategy<String> {
    vec(
        (
            prop_oneof![
                4 => select(HEADER_NAMES).prop_map(String::from),
                1 => Just(long('h', 65)),
                1 => "[A-Za-z-]{1,12}",
            ],
            prop_oneof![4 => string_value(), 1 => value()],
        ),
        0..7,
    )
    .prop_map(|members| object_text(&members))
    .boxed()
}

/// A value for member `name`: mostly of about the right kind, so that checks past the
/// first are reached, sometimes anything at all.
fn field(name: &str) -> BoxedStrategy<String> {
    let fitting = match name {
        "messages" => vec(object(MESSAGE_FIELDS), 0..4)
            .prop_map(|items| array_text(&items))
            .boxed(),
        "ids" => vec(prop_oneof![field("id"), object(ID_FIELDS)], 0..4)
            .prop_map(|items| array_text(&items))
            .boxed(),
        "queue" => object(SETTINGS_FIELDS),
        "push" => object(PUSH_FIELDS),
        "subscribers" => vec(object(SUBSCRIBER_FIELDS), 0..3)
            .prop_map(|items| array_text(&items))
            .boxed(),
        "headers" | "push_headers" => header_object(),
        "url" => select(URLS).prop_map(json_string).boxed(),
        "type" => select(&["pull", "unicast", "multicast", "PULL", "push", ""][..])
            .prop_map(json_string)
            .boxed(),
        "backoff" => select(&["fixed", "exponential", "linear", ""][..])
            .prop_map(json_string)
            .boxed(),
        "reservation_id" => select(&["@rsv", "@rsv", "", "0123456789abcdef0123456789abcdef"][..])
            .prop_map(json_string)
            .boxed(),
        "id" => select(&["\"@held\"", "\"@ready\"", "\"0\"", "\"123\"", "\"\"", "123"][..])
            .prop_map(String::from)
            .boxed(),
        "delete" => select(
            &[
                "true",
                "false",
                "1",
                "0",
                "\"true\"",
                "\"false\"",
                "\"yes\"",
                "2",
                "null",
            ][..],
        )
        .prop_map(String::from)
        .boxed(),
        "body" | "name" | "subscriber_name" | "error_queue" | "signing_secret" => string_value(),
        _ => select(SMALL_NUMBERS).prop_map(String::from).boxed(),
    };
    prop_oneof![8 => fitting, 1 => value()].boxed()
}

/// Bodies of the shape of one route's, with wrong or edge values.
fn near_valid() -> BoxedStrategy<String> {
    prop_oneof![
        shaped(&["messages"]),
        shaped(RESERVE_FIELDS),
        shaped(RESERVATION_FIELDS),
        shaped(&["ids"]),
        shaped(&["queue"]),
        shaped(&["subscribers"]),
        object(ALL_FIELDS),
    ]
    .boxed()
}

/// A body with `fields` (queue settings also bare, as some clients send them).
fn shaped(fields: &'static [&'static str]) -> BoxedStrategy<String> {
    if fields == ["queue"] {
        prop_oneof![object_of_at_least(fields, 1), object(SETTINGS_FIELDS)].boxed()
    } else {
        object_of_at_least(fields, 1)
    }
}

/// `text` cut anywhere (possibly inside a UTF-8 sequence).
fn truncated(text: BoxedStrategy<String>) -> BoxedStrategy<Vec<u8>> {
    (text, any::<prop::sample::Index>())
        .prop_map(|(text, at)| {
            let bytes = text.into_bytes();
            let cut = at.index(bytes.len() + 1);
            bytes[..cut].to_vec()
        })
        .boxed()
}

/// Bodies for a route that reads `fields`: mostly of its own shape, whole or cut short,
/// sometimes anything.
fn route_body(fields: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    if fields.is_empty() {
        return body();
    }
    prop_oneof![
        6 => shaped(fields).prop_map(String::into_bytes),
        1 => truncated(shaped(fields)),
        2 => body(),
    ]
    .boxed()
}

/// Request bodies: near-valid, truncated, any JSON, random bytes, odd short texts, and
/// bodies over the message and request size limits.
fn body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => near_valid().prop_map(String::into_bytes),
        2 => truncated(near_valid()),
        2 => value().prop_map(String::into_bytes),
        2 => vec(any::<u8>(), 0..256),
        1 => select(
            &[
                "", " ", "\n", "null", "{}", "[]", "\"\"", "0", "{", "}", "{\"messages\":",
                "\u{feff}{}", "{}{}", "{} x", "[{}]", "{\"messages\":[{\"body\":\"a\"}]}garbage",
            ][..],
        )
        .prop_map(|b| b.as_bytes().to_vec()),
        1 => select(large_bodies()).prop_map(String::into_bytes),
    ]
    .boxed()
}

/// Bodies over the request and message size limits, batches at and over 100 entries, and
/// nesting far deeper than any request needs.
fn large_bodies() -> Vec<String> {
    let message = |size: usize| format!("{{\"body\":\"{}\"}}", "x".repeat(size));
    let messages = |n: usize| vec![message(1); n].join(",");
    let ids = |n: usize| vec!["\"1\""; n].join(",");
    vec![
        format!("{{\"messages\":[{}]}}", message(MAX_REQUEST_SIZE + 1)),
        format!("{{\"messages\":[{}]}}", message(MAX_MESSAGE_SIZE + 1)),
        format!("{{\"messages\":[{}]}}", messages(100)),
        format!("{{\"messages\":[{}]}}", messages(101)),
        format!("{{\"messages\":[{}]}}", messages(10_000)),
        format!("{{\"ids\":[{}]}}", ids(101)),
        format!(
            "{{\"subscribers\":[{}]}}",
            vec!["{\"url\":\"ironmq:///s\"}"; 1000].join(",")
        ),
        "[".repeat(100_000),
        format!("{{\"queue\":{}", "{\"a\":".repeat(50_000)),
        format!("{{\"x\":{}{}}}", "[".repeat(126), "]".repeat(126)),
        format!("{{\"n\":{}}}", "9".repeat(100_000)),
        format!(
            "{{\"messages\":[{{\"body\":\"{}\"}}]}}",
            "\\u0000".repeat(1000)
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Strategies: paths, query strings, headers.

/// Path segments as sent (already percent-encoded where they need it): plain names, `.` and
/// `..` raw and encoded, `%2F`, NUL, control characters, malformed and overlong
/// percent-encoding, reserved characters, unicode, and 10 KB.
const ODD_SEGMENTS: &[&str] = &[
    "",
    ".",
    "..",
    "%2E",
    "%2E%2E",
    "%2e%2e",
    ".%2E",
    "%2F",
    "a%2Fb",
    "..%2F..%2Fetc%2Fpasswd",
    "%5C",
    "%00",
    "a%00b",
    "%0A",
    "%0D%0A",
    "%7F",
    "%",
    "%zz",
    "%Z",
    "a%",
    "%E6%97",
    "%FF",
    "%FF%FE",
    "%C0%AF",
    "%ED%A0%80",
    "%20",
    "%20a%20",
    "+",
    "%2B",
    "~",
    "%25",
    "%2525",
    "%7B%7D",
    "*",
    ":",
    "@",
    ";",
    "$",
    "'",
    "!",
    "(",
    ")",
    ",",
    "=",
    "%E6%97%A5%E6%9C%AC%E8%AA%9E",
    "%F0%9F%A6%80",
    "%E2%80%AE",
    "%EF%BB%BF",
    "queues",
    "messages",
    "subscribers",
];

fn segment() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z0-9_.-]{1,12}",
        4 => select(ODD_SEGMENTS).prop_map(String::from),
        2 => "\\PC{1,16}".prop_map(|s| enc(&s)),
        1 => any::<String>().prop_map(|s| enc(&s)),
        1 => select(vec![
            long('x', 10 * 1024),
            enc(&long('日', 4 * 1024)),
            enc(&long('é', 128)),
            enc(&long('é', 130)),
            long('a', 128),
            long('a', 129),
        ]),
    ]
    .boxed()
}

fn project() -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just("p".to_string()),
        2 => Just("allowed".to_string()),
        1 => Just(long('p', 64)),
        1 => Just(long('p', 65)),
        2 => segment(),
    ]
    .boxed()
}

fn message_id() -> BoxedStrategy<String> {
    prop_oneof![
        2 => "[0-9]{1,20}",
        3 => segment(),
    ]
    .boxed()
}

/// The routes with the method each answers; `{p}`, `{q}`, `{id}` and `{s}` are filled in.
const ROUTE_SHAPES: &[(&str, &str)] = &[
    ("GET", "/3/projects/{p}/queues"),
    ("GET", "/3/projects/{p}/queues/{q}"),
    ("PUT", "/3/projects/{p}/queues/{q}"),
    ("POST", "/3/projects/{p}/queues/{q}"),
    ("PATCH", "/3/projects/{p}/queues/{q}"),
    ("DELETE", "/3/projects/{p}/queues/{q}"),
    ("GET", "/3/projects/{p}/queues/{q}/messages"),
    ("POST", "/3/projects/{p}/queues/{q}/messages"),
    ("DELETE", "/3/projects/{p}/queues/{q}/messages"),
    ("GET", "/3/projects/{p}/queues/{q}/messages/{id}"),
    ("DELETE", "/3/projects/{p}/queues/{q}/messages/{id}"),
    ("POST", "/3/projects/{p}/queues/{q}/messages/{id}/touch"),
    ("POST", "/3/projects/{p}/queues/{q}/messages/{id}/release"),
    (
        "GET",
        "/3/projects/{p}/queues/{q}/messages/{id}/subscribers",
    ),
    (
        "DELETE",
        "/3/projects/{p}/queues/{q}/messages/{id}/subscribers/{s}",
    ),
    ("POST", "/3/projects/{p}/queues/{q}/reservations"),
    ("POST", "/3/projects/{p}/queues/{q}/webhook"),
    ("POST", "/3/projects/{p}/queues/{q}/subscribers"),
    ("PUT", "/3/projects/{p}/queues/{q}/subscribers"),
    ("DELETE", "/3/projects/{p}/queues/{q}/subscribers"),
];

/// Shapes no route has: extra, missing, doubled and dot segments.
const WRONG_SHAPES: &[&str] = &[
    "/3/projects/{p}",
    "/3/projects/{p}/queues/{q}/{s}",
    "/3/projects/{p}/queues/{q}/messages/{id}/",
    "/3/projects/{p}/queues/{q}/",
    "/3/projects/{p}/{q}",
    "/3/{p}/queues/{q}",
    "/{p}/projects/{q}/queues",
    "//3/projects/{p}/queues/{q}",
    "/3/projects/{p}//queues/{q}",
    "/3/projects/{p}/queues/{q}/messages/{id}/{s}/{s}",
    "/3/projects/{p}/queues/{q}/../../{s}",
    "/3/projects/{p}/queues/{q}/./messages",
    "/3/projects/{p}/queues/{q}/messages/../reservations",
];

/// A method and a route shape: mostly a route with its own method, sometimes with another
/// method, sometimes no route at all.
fn route() -> BoxedStrategy<(&'static str, &'static str)> {
    prop_oneof![
        6 => select(ROUTE_SHAPES),
        2 => (select(METHODS), select(ROUTE_SHAPES)).prop_map(|(m, (_, shape))| (m, shape)),
        1 => (select(METHODS), select(WRONG_SHAPES)),
    ]
    .boxed()
}

fn fill(shape: &str, p: &str, q: &str, id: &str, s: &str) -> String {
    shape
        .replace("{p}", p)
        .replace("{q}", q)
        .replace("{id}", id)
        .replace("{s}", s)
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO",
];

/// Small bodies that would be right for some route.
const PLAIN_BODIES: &[&str] = &[
    "{}",
    "{\"messages\":[{\"body\":\"hi\"}]}",
    "{\"subscribers\":[{\"name\":\"s\",\"url\":\"ironmq:///fz-sink\"}]}",
    "{\"queue\":{\"type\":\"multicast\",\"push\":{\"subscribers\":[{\"name\":\"s\",\"url\":\"ironmq:///fz-sink\"}]}}}",
    "{\"reservation_id\":\"0123456789abcdef0123456789abcdef\"}",
    "{\"ids\":[\"1\"]}",
    "{\"n\":2}",
];

const QUERY_KEYS: &[&str] = &[
    "oauth",
    "n",
    "wait",
    "timeout",
    "delete",
    "per_page",
    "previous",
    "prev",
    "prefix",
    "reservation_id",
    "subscriber_name",
    "id",
    "queue",
];

const QUERY_VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "5",
    "30",
    "31",
    "100",
    "101",
    "1.5",
    "1e3",
    "0x10",
    "%205",
    "5%20",
    "+5",
    "%2B5",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "true",
    "yes",
    "NaN",
    "test-token",
    "limited-token",
    "nope",
    "test-token%00",
    "test%2Dtoken",
    "OAuth%20test-token",
    "test-token+",
    "%20test-token",
    "%",
    "%zz",
    "%E6",
    "%FF",
    "%C0%AF",
    "+",
    "=",
    "a=b",
    "..",
    "%2F",
    "%00",
    "%0D%0A",
    "fq",
    "@",
    "?",
    "/",
];

fn query_string() -> BoxedStrategy<String> {
    let key = prop_oneof![
        5 => select(QUERY_KEYS).prop_map(String::from),
        1 => "[a-z_]{1,8}",
        1 => "\\PC{1,6}".prop_map(|s| enc(&s)),
        1 => select(&["", "%", "%zz", "n%00", "oauth%20", "%6E", "n[]", "+n", "OAUTH"][..])
            .prop_map(String::from),
    ];
    let value = prop_oneof![
        6 => select(QUERY_VALUES).prop_map(String::from),
        1 => "\\PC{0,12}".prop_map(|s| enc(&s)),
        1 => any::<String>().prop_map(|s| enc(&s)),
        1 => Just(long('x', 8 * 1024)),
    ];
    let pair = (key, proptest::option::weighted(0.9, value)).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k,
    });
    (vec(pair, 0..6), select(&["&", "&", ";", "&&"][..]))
        .prop_map(|(pairs, separator)| pairs.join(separator))
        .boxed()
}

/// Header value bytes hyper takes: visible ASCII, space, tab and obs-text (0x80..=0xFF).
fn header_bytes(len: std::ops::Range<usize>) -> BoxedStrategy<Vec<u8>> {
    vec(
        prop_oneof![8 => 0x20u8..=0x7e, 1 => Just(b'\t'), 2 => 0x80u8..=0xff],
        len,
    )
    .prop_map(|mut bytes| {
        // Leading and trailing whitespace is not part of a value; keep the bytes honest.
        while bytes.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            bytes.remove(0);
        }
        bytes
    })
    .boxed()
}

fn authorization() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => select(
            &[
                "OAuth test-token",
                "Bearer test-token",
                "oauth test-token",
                "OAUTH   test-token  ",
                "OAuth\ttest-token",
                "OAuth",
                "OAuth ",
                "Bearer",
                "Basic dGVzdC10b2tlbjo=",
                "test-token",
                "OAuth limited-token",
                "OAuth nope",
                "OAuth test-token extra",
                "OAuth test-token,OAuth nope",
                "Token test-token",
                "OAuth  ",
                "OAuth test-token%00",
            ][..],
        )
        .prop_map(|v| v.as_bytes().to_vec()),
        1 => Just(b"OAuth test-token\xff".to_vec()),
        1 => Just(format!("OAuth {}", long('x', 10 * 1024)).into_bytes()),
        1 => Just(format!("{} test-token", long('O', 10 * 1024)).into_bytes()),
        2 => header_bytes(0..48),
        1 => header_bytes(0..48).prop_map(|v| [b"OAuth ".to_vec(), v].concat()),
    ]
    .boxed()
}

fn header() -> BoxedStrategy<(String, Vec<u8>)> {
    let named = |name: &'static str, values: &'static [&'static str]| {
        prop_oneof![
            3 => select(values).prop_map(|v| v.as_bytes().to_vec()),
            1 => header_bytes(0..32),
        ]
        .prop_map(move |v| (name.to_string(), v))
    };
    prop_oneof![
        4 => authorization().prop_map(|v| ("Authorization".to_string(), v)),
        3 => named(
            "Content-Type",
            &[
                "application/json",
                "APPLICATION/JSON",
                "application/json; charset=utf-8",
                "application/json; charset=latin1",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=----x",
                "application/xml",
                "",
                "*/*",
                ";;;",
            ],
        ),
        3 => named(
            "X-HTTP-Method-Override",
            &[
                "DELETE", "delete", "PATCH", "PUT", " put ", "GET", "POST", "HEAD", "OPTIONS",
                "CONNECT", "TRACE", "", "DELETE, PATCH", "FOO",
            ],
        ),
        1 => ("[A-Za-z0-9-]{0,12}", header_bytes(0..32))
            .prop_map(|(name, v)| (format!("X-Subscribers-{name}"), v)),
        1 => named("Content-Encoding", &["gzip", "br", "identity", "deflate, gzip"]),
        1 => named("Expect", &["100-continue", "nothing"]),
        1 => named("Accept", &["application/json", "text/html", "*/*", ""]),
        1 => named("X-Request-Id", &["", "abc", "日本"]),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// The properties.

static NEXT_QUEUE: AtomicU64 = AtomicU64::new(0);

/// The messages of a fresh queue: `held` reserved under `reservation`, `ready` ready. A
/// reserve with a `wait` then answers at once (a pull queue made a push queue keeps them).
struct Seeded {
    held: String,
    ready: String,
    reservation: String,
}

/// Which queue a case of the body property runs against.
#[derive(Debug, Clone, Copy, PartialEq)]
enum QueueKind {
    Pull,
    /// Multicast to `fz` (`ironmq:///fz-sink`), made so after its messages were posted.
    Push,
}

async fn seed(addr: SocketAddr, queue: &str, kind: QueueKind) -> Result<Seeded, String> {
    let path = format!("/3/projects/p/queues/{queue}");
    let posted = call(
        addr,
        Request::new("POST", format!("{path}/messages"))
            .token(TOKEN)
            .body(r#"{"messages":[{"body":"held"},{"body":"ready"}]}"#),
    )
    .await?;
    let reserved = call(
        addr,
        Request::new("POST", format!("{path}/reservations"))
            .token(TOKEN)
            .body(r#"{"n":1,"timeout":600}"#),
    )
    .await?;
    if kind == QueueKind::Push {
        call(
            addr,
            Request::new("PATCH", path.clone())
                .token(TOKEN)
                .body(r#"{"queue":{"type":"multicast","push":{"subscribers":[{"name":"fz","url":"ironmq:///fz-sink"}]}}}"#),
        )
        .await?;
    }
    let text = |v: &Value| v.as_str().map(String::from);
    let seeded = (|| {
        Some(Seeded {
            held: text(&reserved["messages"][0]["id"])?,
            ready: text(&posted["ids"][1])?,
            reservation: text(&reserved["messages"][0]["reservation_id"])?,
        })
    })();
    seeded.ok_or_else(|| format!("seeding {queue}: posted {posted}, reserved {reserved}"))
}

/// Every route with its method and the members of the body it reads; `@queue` is a queue of
/// the case's own holding a reserved and a ready message, `@id` one of them or an unknown id.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("GET", "/3/projects/p/queues", &[]),
    ("GET", "/3/projects/p/queues/@queue", &[]),
    ("PUT", "/3/projects/p/queues/@queue", &["queue"]),
    ("POST", "/3/projects/p/queues/@queue", &["queue"]),
    ("PATCH", "/3/projects/p/queues/@queue", &["queue"]),
    ("DELETE", "/3/projects/p/queues/@queue", &[]),
    ("GET", "/3/projects/p/queues/@queue/messages", &[]),
    (
        "POST",
        "/3/projects/p/queues/@queue/messages",
        &["messages"],
    ),
    ("DELETE", "/3/projects/p/queues/@queue/messages", &["ids"]),
    ("GET", "/3/projects/p/queues/@queue/messages/@id", &[]),
    (
        "DELETE",
        "/3/projects/p/queues/@queue/messages/@id",
        &["reservation_id", "subscriber_name"],
    ),
    (
        "POST",
        "/3/projects/p/queues/@queue/messages/@id/touch",
        &["reservation_id", "timeout"],
    ),
    (
        "POST",
        "/3/projects/p/queues/@queue/messages/@id/release",
        &["reservation_id", "delay"],
    ),
    (
        "POST",
        "/3/projects/p/queues/@queue/reservations",
        RESERVE_FIELDS,
    ),
    ("POST", "/3/projects/p/queues/@queue/webhook", &[]),
    (
        "POST",
        "/3/projects/p/queues/@queue/subscribers",
        &["subscribers"],
    ),
    (
        "PUT",
        "/3/projects/p/queues/@queue/subscribers",
        &["subscribers"],
    ),
    (
        "DELETE",
        "/3/projects/p/queues/@queue/subscribers",
        &["subscribers"],
    ),
    (
        "GET",
        "/3/projects/p/queues/@queue/messages/@id/subscribers",
        &[],
    ),
    (
        "DELETE",
        "/3/projects/p/queues/@queue/messages/@id/subscribers/fz",
        &["reservation_id"],
    ),
];

/// How a case sends its route's method.
#[derive(Debug, Clone)]
enum MethodChoice {
    Own,
    /// POST with `X-HTTP-Method-Override` (the Java client's way), any value.
    Override(&'static str),
    /// Any other method.
    Other(&'static str),
}

#[test]
fn arbitrary_and_near_valid_bodies_get_json_answers_on_every_route_and_method() {
    let overrides = &[
        "DELETE", "PATCH", "PUT", "GET", "delete", " patch ", "BOGUS", "",
    ][..];
    let content_types = &[
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
        "",
    ][..];
    let strategy = select(ROUTES)
        .prop_flat_map(move |(method, route, fields)| {
            (
                Just(method),
                Just(route),
                prop_oneof![
                    8 => Just(MethodChoice::Own),
                    1 => select(overrides).prop_map(MethodChoice::Override),
                    2 => select(METHODS).prop_map(MethodChoice::Other),
                ],
                select(&["@held", "@ready", "@ready", "123", "abc"][..]),
                proptest::option::weighted(0.7, select(content_types)),
                route_body(fields),
                prop_oneof![2 => Just(QueueKind::Pull), 1 => Just(QueueKind::Push)],
            )
        })
        .prop_map(|(method, route, choice, id, content_type, body, kind)| {
            let target = route.replace("@id", id);
            let mut request = match choice {
                MethodChoice::Own => Request::new(method, target),
                MethodChoice::Override(value) => {
                    Request::new("POST", target).header("X-HTTP-Method-Override", value)
                }
                MethodChoice::Other(other) => Request::new(other, target),
            };
            if let Some(value) = content_type {
                request = request.header("Content-Type", value);
            }
            (kind, request.token(TOKEN).body(body))
        });
    let fixture = Fixture::start();
    fixture.check_property(strategy, |fixture, (kind, request)| {
        fixture.runtime.block_on(async {
            let queue = format!("fz{}", NEXT_QUEUE.fetch_add(1, Ordering::Relaxed));
            let seeded = seed(fixture.addr, &queue, kind).await?;
            let request = request.substitute(&[
                ("@queue", &queue),
                ("@held", &seeded.held),
                ("@ready", &seeded.ready),
                ("@rsv", &seeded.reservation),
            ]);
            exercise(fixture.addr, &request).await
        })
    });
}

#[test]
fn odd_paths_get_json_answers() {
    let strategy = (
        route(),
        project(),
        segment(),
        message_id(),
        segment(),
        select(&[TOKEN, TOKEN, LIMITED_TOKEN][..]),
        proptest::option::of(select(PLAIN_BODIES)),
    )
        .prop_map(|((method, shape), p, q, id, s, token, body)| {
            let request = Request::new(method, fill(shape, &p, &q, &id, &s)).token(token);
            match body {
                Some(body) => request.body(body),
                None => request,
            }
        });
    Fixture::start().exercise_each(strategy);
}

/// Where a case of the query property puts its token (besides any `oauth` pair it drew).
#[derive(Debug, Clone)]
enum Credentials {
    Header(&'static str),
    /// `oauth=...` first in the query.
    Query(&'static str),
    Neither,
}

#[test]
fn random_query_strings_get_json_answers() {
    let fixture = Fixture::start();
    let id = fixture.runtime.block_on(async {
        let seeded = seed(fixture.addr, "fq", QueueKind::Pull)
            .await
            .expect("seeded");
        seeded.ready
    });
    let tokens = &["test-token", "test-token", "limited-token", "nope"][..];
    let query_tokens = &[
        "test-token",
        "test-token",
        "limited-token",
        "test%2Dtoken",
        "test-token+",
        "test-token%00",
        "nope",
    ][..];
    let strategy = (
        route(),
        select(&["p", "p", "allowed"][..]),
        select(&["fq", "fq", "fq", "nope"][..]),
        query_string(),
        prop_oneof![
            2 => select(tokens).prop_map(Credentials::Header),
            2 => select(query_tokens).prop_map(Credentials::Query),
            1 => Just(Credentials::Neither),
        ],
        proptest::option::of(Just("{}")),
    )
        .prop_map(move |((method, shape), p, q, query, credentials, body)| {
            let target = fill(shape, p, q, &id, "s");
            let mut request = match credentials {
                Credentials::Header(token) => {
                    Request::new(method, format!("{target}?{query}")).token(token)
                }
                Credentials::Query(token) => {
                    Request::new(method, format!("{target}?oauth={token}&{query}"))
                }
                Credentials::Neither => Request::new(method, format!("{target}?{query}")),
            };
            if let Some(body) = body {
                request = request.body(body);
            }
            request
        });
    fixture.check_property(strategy, |fixture, request| {
        fixture.runtime.block_on(exercise(fixture.addr, &request))
    });
}

#[test]
fn random_headers_get_json_answers() {
    let strategy = (
        route(),
        select(&["p", "p", "allowed"][..]),
        vec(header(), 0..8),
        proptest::option::weighted(0.6, Just("OAuth test-token")),
        proptest::option::of(select(PLAIN_BODIES)),
    )
        .prop_map(|((method, shape), p, headers, authorization, body)| {
            let mut request = Request::new(method, fill(shape, p, "hq", "1", "s"));
            // Drawn headers come first: a drawn Authorization wins over the valid one.
            request.headers = headers;
            if let Some(value) = authorization {
                request = request.header("Authorization", value);
            }
            match body {
                Some(body) => request.body(body),
                None => request,
            }
        });
    Fixture::start().exercise_each(strategy);
}

// ---------------------------------------------------------------------------------------
// The body limit holds before the body is read.

fn json_error(reply: &Reply) -> String {
    let json = reply.json();
    assert!(
        json["msg"].is_string(),
        "an error answer carries a string msg: {reply:?}"
    );
    assert_eq!(
        reply.content_type.as_deref(),
        Some("application/json"),
        "{reply:?}"
    );
    json["msg"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_declared_100_mb_body_is_refused_with_413_before_it_arrives() {
    let running = start_server().await;
    let addr = running.server.addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "POST /3/projects/p/queues/big/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Authorization: OAuth test-token\r\nContent-Type: application/json\r\n\
                Content-Length: 100000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    // A few KB of the 100 MB, then nothing more: the answer must not wait for the rest.
    let start = format!("{{\"messages\":[{{\"body\":\"{}", "x".repeat(4096));
    stream.write_all(start.as_bytes()).await.unwrap();
    let (mut reader, _writer) = stream.split();
    let reply = tokio::time::timeout(Duration::from_secs(2), read_reply(&mut reader, false))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no answer 2 s after announcing a 100 MB body (limit {MAX_REQUEST_SIZE} bytes): \
                 the server waits for a body it will refuse"
            )
        })
        .expect("an answer");
    assert_eq!(reply.status, 413, "{reply:?}");
    let msg = json_error(&reply);
    assert!(msg.contains("too large"), "{msg}");
}

#[tokio::test]
async fn a_chunked_body_past_the_limit_is_refused_with_413_and_no_longer_read() {
    let running = start_server().await;
    let addr = running.server.addr();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // Streams up to 64 MB in 16 KB chunks, 256 times the limit, until the server stops
    // taking them (the connection closes, or writes stall for a second).
    const CHUNK: usize = 16 * 1024;
    const TOTAL: usize = 64 * 1024 * 1024;
    let streaming = tokio::spawn(async move {
        let head = "POST /3/projects/p/queues/big/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                    Authorization: OAuth test-token\r\nContent-Type: application/json\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        let opening = "{\"messages\":[{\"body\":\"";
        let first = format!("{head}{:x}\r\n{opening}\r\n", opening.len());
        let chunk = format!("{CHUNK:x}\r\n{}\r\n", "x".repeat(CHUNK));
        let mut sent = 0;
        let mut outcome = "sent everything";
        if writer.write_all(first.as_bytes()).await.is_ok() {
            while sent < TOTAL {
                match tokio::time::timeout(
                    Duration::from_secs(1),
                    writer.write_all(chunk.as_bytes()),
                )
                .await
                {
                    Ok(Ok(())) => sent += CHUNK,
                    Ok(Err(_)) => {
                        outcome = "connection closed";
                        break;
                    }
                    Err(_) => {
                        outcome = "writes stalled";
                        break;
                    }
                }
            }
        }
        (sent, outcome, writer)
    });
    let reply = tokio::time::timeout(Duration::from_secs(5), read_reply(&mut reader, false))
        .await
        .expect("an answer within 5 s of streaming past the limit")
        .expect("an answer");
    assert_eq!(reply.status, 413, "{reply:?}");
    let msg = json_error(&reply);
    assert!(msg.contains("too large"), "{msg}");
    let (sent, outcome, _writer) = tokio::time::timeout(Duration::from_secs(10), streaming)
        .await
        .expect("the stream ends")
        .unwrap();
    assert_ne!(
        outcome, "sent everything",
        "the server read all {sent} bytes after refusing the body"
    );
    assert!(
        sent < TOTAL / 4,
        "{sent} bytes went in before the server stopped reading ({outcome})"
    );
}

// ---------------------------------------------------------------------------------------
// Names and ids: unicode, slashes, dots, NUL, 10 KB.

#[tokio::test]
async fn names_and_ids_with_unicode_slashes_dots_nul_and_10_kb_get_clean_answers() {
    let running = start_server().await;
    let addr = running.server.addr();
    call(
        addr,
        Request::new("POST", "/3/projects/p/queues/q/messages")
            .token(TOKEN)
            .body(r#"{"messages":[{"body":"a"}]}"#),
    )
    .await
    .unwrap();
    call(
        addr,
        Request::new("PUT", "/3/projects/p/queues/pq").token(TOKEN).body(
            r#"{"queue":{"type":"multicast","push":{"subscribers":[{"name":"s","url":"ironmq:///sink"}]}}}"#,
        ),
    )
    .await
    .unwrap();
    let ten_kb = long('x', 10 * 1024);
    let ten_kb_unicode = enc(&long('日', 10 * 1024));
    let bytes_128 = enc(&long('é', 128));
    let bytes_130 = enc(&long('é', 130));
    // Segments as sent, and the status a queue of that name gets: the contract allows any
    // name of 1 to 128 bytes without '/' or control characters.
    let cases: &[(&str, &str, &[u16])] = &[
        ("unicode", "%E6%97%A5%E6%9C%AC%E8%AA%9E", &[200]),
        ("raw UTF-8 bytes", "日本語", &[200, 400]),
        ("emoji", "%F0%9F%A6%80", &[200]),
        ("space", "a%20b", &[200]),
        ("right-to-left override", "%E2%80%AE", &[200]),
        ("backslash", "a%5Cb", &[200]),
        ("malformed percent-encoding", "%zz", &[200, 400]),
        ("128 bytes", &bytes_128, &[200]),
        ("130 bytes", &bytes_130, &[400]),
        ("10 KB", &ten_kb, &[400]),
        ("10 KB unicode", &ten_kb_unicode, &[400]),
        ("encoded slash", "a%2Fb", &[400]),
        ("encoded slash alone", "%2F", &[400]),
        ("NUL", "a%00b", &[400]),
        ("NUL alone", "%00", &[400]),
        ("new line", "%0A", &[400]),
        ("invalid UTF-8", "%FF", &[400]),
        ("overlong UTF-8 slash", "%C0%AF", &[400]),
        // Refusing them would be safer (see the dot-name test below); either is clean.
        ("dot", ".", &[200, 400]),
        ("dot dot", "..", &[200, 400]),
        ("encoded dot dot", "%2E%2E", &[200, 400]),
    ];
    let mut failures = Vec::new();
    for (what, segment, queue_statuses) in cases {
        // Message ids and subscriber names are looked up, never checked: unknown ones are
        // 404, except bytes that are no UTF-8 at all (400).
        let lookup: &[u16] = if matches!(*segment, "%FF" | "%C0%AF" | "日本語") {
            &[400, 404]
        } else {
            &[404]
        };
        let attempts: Vec<(Request, &[u16])> = vec![
            (
                Request::new("PUT", format!("/3/projects/p/queues/{segment}")).token(TOKEN),
                queue_statuses,
            ),
            (
                Request::new("POST", format!("/3/projects/p/queues/{segment}/messages"))
                    .token(TOKEN)
                    .body(r#"{"messages":[{"body":"named"}]}"#),
                if queue_statuses == &[200] {
                    &[201]
                } else {
                    &[201, 400, 404]
                },
            ),
            (
                Request::new("GET", format!("/3/projects/p/queues/q/messages/{segment}"))
                    .token(TOKEN),
                lookup,
            ),
            (
                Request::new(
                    "DELETE",
                    format!("/3/projects/p/queues/q/messages/{segment}"),
                )
                .token(TOKEN),
                lookup,
            ),
            (
                Request::new(
                    "POST",
                    format!("/3/projects/p/queues/q/messages/{segment}/release"),
                )
                .token(TOKEN)
                .body(r#"{"reservation_id":"0123456789abcdef0123456789abcdef"}"#),
                lookup,
            ),
            (
                Request::new(
                    "DELETE",
                    format!("/3/projects/p/queues/pq/messages/1/subscribers/{segment}"),
                )
                .token(TOKEN),
                lookup,
            ),
            (
                Request::new(
                    "DELETE",
                    format!(
                        "/3/projects/p/queues/pq/messages/1/subscribers/{segment}?reservation_id=x"
                    ),
                ),
                lookup,
            ),
            (
                Request::new("GET", format!("/3/projects/{segment}/queues")).token(TOKEN),
                // Project ids are [A-Za-z0-9_.-]{1,64}: only the dot names pass.
                if what.contains("dot") {
                    &[200, 400]
                } else {
                    &[400]
                },
            ),
            (
                Request::new("GET", format!("/3/projects/{segment}/queues")).token(LIMITED_TOKEN),
                &[400, 403],
            ),
        ];
        for (request, expected) in attempts {
            let outcome = match send(addr, &request).await {
                Ok(reply) => match check(&reply, false) {
                    Ok(()) if expected.contains(&reply.status) => continue,
                    Ok(()) => format!("status {} not in {expected:?}: {reply:?}", reply.status),
                    Err(why) => why,
                },
                Err(err) => err,
            };
            failures.push(format!("{what}: {request:?}: {outcome}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let health = send(addr, &Request::new("GET", "/healthz")).await.unwrap();
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn a_queue_with_a_unicode_name_round_trips_a_message() {
    let running = start_server().await;
    let client = &running.client;
    let name = "日本語 キュー 🦀";
    let path = format!("/3/projects/p/queues/{}", enc(name));
    let (status, posted) = client
        .post(
            &format!("{path}/messages"),
            serde_json::json!({"messages": [{"body": "こんにちは 🦀"}]}),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{posted}");
    let (status, info) = client.get(&path).await;
    assert_eq!(status.as_u16(), 200, "{info}");
    assert_eq!(info["queue"]["name"], name);
    assert_eq!(info["queue"]["size"], 1);
    let (_, listed) = client
        .get(&format!("/3/projects/p/queues?prefix={}", enc("日本")))
        .await;
    assert_eq!(listed["queues"][0]["name"], name, "{listed}");
    let (status, reserved) = client
        .post(&format!("{path}/reservations"), serde_json::json!({"n": 1}))
        .await;
    assert_eq!(status.as_u16(), 200, "{reserved}");
    assert_eq!(reserved["messages"][0]["body"], "こんにちは 🦀");
    assert_eq!(reserved["messages"][0]["id"], posted["ids"][0]);
    let rid = reserved["messages"][0]["reservation_id"].as_str().unwrap();
    let id = posted["ids"][0].as_str().unwrap();
    let (status, deleted) = client
        .delete(
            &format!("{path}/messages/{id}"),
            Some(serde_json::json!({"reservation_id": rid})),
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{deleted}");
}

/// Makes `queue` a multicast queue pushing to one subscriber; `false` when the API refuses
/// the names with a clean 400.
async fn push_queue_to(addr: SocketAddr, queue: &str, subscriber: &str, url: &str) -> bool {
    let body = serde_json::json!({"queue": {"type": "multicast", "push": {
        "subscribers": [{"name": subscriber, "url": url}]}}});
    let request = Request::new("PUT", format!("/3/projects/p/queues/{}", enc(queue)))
        .token(TOKEN)
        .body(body.to_string());
    let reply = send(addr, &request).await.unwrap();
    check(&reply, false).unwrap();
    match reply.status {
        200 => true,
        400 => false,
        _ => panic!("{request:?}: {reply:?}"),
    }
}

async fn post_one(addr: SocketAddr, queue: &str, body: &str) {
    let messages = serde_json::json!({"messages": [{"body": body}]});
    call(
        addr,
        Request::new(
            "POST",
            format!("/3/projects/p/queues/{}/messages", enc(queue)),
        )
        .token(TOKEN)
        .body(messages.to_string()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_subscriber_name_the_api_accepts_comes_back_in_iron_subscriber_name() {
    let running = start_server().await;
    let addr = running.server.addr();
    let subscriber = Subscriber::start(SubscriberAnswer::Always(200)).await;
    let names = ["plain", "日本語", "🦀", "a/b", "a\u{0}b", "line\nbreak"];
    let mut accepted = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let queue = format!("named-{i}");
        if push_queue_to(addr, &queue, name, &subscriber.url).await {
            post_one(addr, &queue, &queue).await;
            accepted.push((queue, *name));
        }
    }
    assert!(
        subscriber
            .wait_for(accepted.len(), Duration::from_secs(10))
            .await,
        "every push delivered"
    );
    let mut failures = Vec::new();
    for got in subscriber.received() {
        let (_, name) = accepted.iter().find(|(q, _)| *q == got.body).unwrap();
        // Raw UTF-8 or percent-encoded: either way a subscriber can tell its name.
        let sent = got.headers.get("iron-subscriber-name").map(|v| {
            let raw = String::from_utf8_lossy(v.as_bytes()).into_owned();
            let decoded = percent_encoding::percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned();
            (raw, decoded)
        });
        match sent {
            Some((raw, decoded)) if raw == *name || decoded == *name => {}
            other => failures.push(format!(
                "subscriber {name:?} (accepted with 200) got Iron-Subscriber-Name {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn subscriber_message_urls_work_for_clients_that_fold_dot_segments() {
    // Subscribers use URL libraries, which fold `.` and `..` path segments (and `%2E%2E`)
    // away: a queue or subscriber the API accepts under such a name gets a
    // subscriber-message URL that leads elsewhere. Refusing the names is a fine answer.
    let running = start_server().await;
    let addr = running.server.addr();
    let subscriber = Subscriber::start(SubscriberAnswer::Always(202)).await;
    let pairs = [
        ("dots-1", ".."),
        ("dots-2", "."),
        ("..", "s"),
        (".", "s"),
        ("dots-3", "plain"),
    ];
    let mut accepted = Vec::new();
    for (queue, name) in pairs {
        if push_queue_to(addr, queue, name, &subscriber.url).await {
            post_one(addr, queue, &format!("{queue} {name}")).await;
            accepted.push((queue, name));
        }
    }
    assert!(
        subscriber
            .wait_for(accepted.len(), Duration::from_secs(10))
            .await,
        "every push delivered"
    );
    let http = common::http();
    let mut failures = Vec::new();
    for got in subscriber.received() {
        let url = got.headers["iron-subscriber-message-url"]
            .to_str()
            .unwrap()
            .to_string();
        let response = http.delete(&url).send().await.unwrap();
        let status = response.status().as_u16();
        let sent_to = response.url().path().to_string();
        let body = response.text().await.unwrap_or_default();
        if status != 200 {
            failures.push(format!(
                "{:?}: DELETE {url} went to {sent_to} and answered {status} {body}",
                got.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn ironmq_subscriber_urls_may_only_name_queues_the_rest_api_can_reach() {
    // A push into `ironmq:///NAME` posts to queue NAME (of project PROJECT with
    // `ironmq://PROJECT:TOKEN@/NAME`). Each target below names a queue or a project the REST
    // API refuses: accepting it makes queues no call can read.
    let running = start_server().await;
    let addr = running.server.addr();
    let targets = [
        format!("ironmq:///{}", "a\u{0}b"),
        format!("ironmq:///{}", "line\nbreak"),
        format!("ironmq:///{}", long('x', 10 * 1024)),
        format!("ironmq:///{}", long('é', 130)),
        "ironmq://%E6%97%A5:test-token@/sink".to_string(),
        format!("ironmq://{}:test-token@/sink", "日本語"),
        format!("ironmq://{}:test-token@/sink", long('p', 65)),
    ];
    let mut failures = Vec::new();
    for (i, url) in targets.iter().enumerate() {
        let queue = format!("fan-{i}");
        if push_queue_to(addr, &queue, "s", url).await {
            post_one(addr, &queue, "copied").await;
            failures.push(format!("subscriber url {} accepted", shown(url.as_bytes())));
        }
    }
    // What the accepted ones wrote: queues outside what REST can address.
    // Every queue's settings key: the one of project `*`, queue `*`; what stands for the stars
    // there is `project/queue` in the keys found.
    let any_cfg = QueueKeys::new("*", "*").cfg().to_string();
    let (before, after) = any_cfg.split_once("*/*").expect("the queue in the key");
    let unreachable = |redis: &RedisServer| -> Vec<String> {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&any_cfg)
            .query(&mut redis.connection())
            .unwrap_or_default();
        keys.iter()
            .filter_map(|k| k.strip_prefix(before)?.strip_suffix(after))
            .filter(|tag| {
                let (project, queue) = tag.split_once('/').unwrap_or((tag, ""));
                ferromq::model::check_project(project).is_err()
                    || ferromq::model::check_queue_name(queue).is_err()
            })
            .map(|tag| shown(tag.as_bytes()))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while unreachable(&running.redis).len() < failures.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unreachable = unreachable(&running.redis);
    assert!(
        failures.is_empty(),
        "{}\nqueues no REST call can reach: {unreachable:?}",
        failures.join("\n")
    );
}
