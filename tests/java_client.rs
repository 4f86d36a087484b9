//! The official IronMQ Java client (`io.iron.ironmq:ironmq` from Maven Central), unmodified,
//! against a `ferromq serve` process: see tests/java/. The client is configured only by its own
//! settings: an iron.json that IRON_CONFIG names. `make test` runs this test with FERROMQ_MVN
//! naming the mvn command.

use common::{TOKEN, start_process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and Maven: run through `make test` (sets FERROMQ_MVN)"]
async fn official_java_client_works_unchanged() {
    let mvn = std::env::var("FERROMQ_MVN").expect("FERROMQ_MVN must name the mvn command");
    let running = start_process(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("iron.json");
    let settings = serde_json::json!({
        "project_id": "5e0f0a0b0c0d0e0f10111213",
        "token": TOKEN,
        "scheme": "http",
        "host": "127.0.0.1",
        "port": running.server.addr().port(),
    });
    std::fs::write(&config, settings.to_string()).unwrap();
    let mut command = tokio::process::Command::new(mvn);
    command
        .args(["-B", "-q", "-Dstyle.color=never", "test"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/java"));
    // Nothing else configures the client.
    for (name, _) in std::env::vars() {
        if name.starts_with("IRON_") {
            command.env_remove(name);
        }
    }
    command.env("IRON_CONFIG", &config);
    let output = command.output().await.expect("mvn runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the Java client checks failed");
    let results = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/java/target/surefire-reports/dev.ferromq.check.IronMqJavaClientTest.txt"
    ))
    .expect("surefire's report");
    println!("{results}");
    assert!(
        results.contains("Tests run: 6, Failures: 0, Errors: 0, Skipped: 0"),
        "{results}"
    );
}
