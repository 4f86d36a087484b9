//! The official IronMQ Go client (`github.com/iron-io/iron_go3/mq`), unmodified, against a
//! `ferromq serve` process: see tests/go/client_test.go. The scenarios are compiled with the
//! usual Go settings (module and build caches), then run with only the client's own settings
//! (`IRON_*`) and a HOME and working directory without iron.json files. `make test` runs this
//! test with FERROMQ_GO naming the go command.

use common::{TOKEN, start_process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Go toolchain and module proxy: run through `make test` (sets FERROMQ_GO)"]
async fn official_go_client_works_unchanged() {
    let go = std::env::var("FERROMQ_GO").expect("FERROMQ_GO must name the go command");
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("ironmq-go-check");
    let built = tokio::process::Command::new(&go)
        .args(["test", "-c", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go"))
        .output()
        .await
        .expect("go runs");
    assert!(
        built.status.success(),
        "the Go client checks do not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let running = start_process(&[]).await;
    let port = running.server.addr().port().to_string();
    let output = tokio::process::Command::new(&binary)
        .args(["-test.v", "-test.count=1"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("IRON_TOKEN", TOKEN)
        .env("IRON_PROJECT_ID", "5e0f0a0b0c0d0e0f10111213")
        .env("IRON_HOST", "127.0.0.1")
        .env("IRON_PORT", &port)
        .env("IRON_SCHEME", "http")
        .current_dir(dir.path())
        .output()
        .await
        .expect("the Go checks run");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the Go client checks failed");
    assert!(report.contains("--- PASS"), "no test passed:\n{report}");
    assert!(
        !report.contains("--- SKIP"),
        "a check was skipped:\n{report}"
    );
}
