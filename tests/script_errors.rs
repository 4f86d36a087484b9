//! A script that fails inside Redis is reported with the file and line it failed at (not the
//! line of the text Redis was sent, which starts with the generated header and the prelude),
//! and counted among the store errors.

use common::RedisServer;
use ferromq::metrics::METRICS;
use ferromq::model::NewMessage;
use ferromq::store::StoreError;
use ferromq::store::keys::QueueKeys;

/// The store errors counted so far of kind "error" (Redis answered with an error).
fn errors_counted() -> u64 {
    METRICS
        .encode()
        .lines()
        .find_map(|line| line.strip_prefix(r#"ferromq_store_errors_total{kind="error"} "#))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn a_failing_script_names_its_file_and_line_and_is_counted() {
    let redis = RedisServer::start();
    let store = redis.store().await;
    let message = || {
        vec![NewMessage {
            body: "a".into(),
            ..Default::default()
        }]
    };
    store.post("p", "broken", message()).await.unwrap();
    // The queue's ready list replaced by a string: the next post's RPUSH fails inside Redis.
    let keys = QueueKeys::new("p", "broken");
    let () = redis::cmd("SET")
        .arg(keys.ready())
        .arg("not a list")
        .query(&mut redis.connection())
        .unwrap();
    let before = errors_counted();
    let err = store.post("p", "broken", message()).await.unwrap_err();
    let source = include_str!("../src/store/ops/post.lua");
    let line = source
        .lines()
        .position(|l| l.contains("redis.call('RPUSH', ready_list"))
        .unwrap()
        + 1;
    match err {
        StoreError::Script { at, detail } => {
            assert_eq!(at, format!("post.lua:{line}"));
            assert!(detail.contains("WRONGTYPE"), "{detail}");
            assert!(detail.contains(&at), "{detail}");
        }
        other => panic!("not a script error: {other:?}"),
    }
    assert_eq!(errors_counted(), before + 1);
}
