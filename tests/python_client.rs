//! The official IronMQ Python client (PyPI `iron-mq`), unmodified, against a `ferromq serve`
//! process: see tests/python/ironmq_client_check.py. `make test` installs the client into a
//! virtualenv and runs this test with FERROMQ_PYTHON pointing at that virtualenv's python.

use common::{TOKEN, start_process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the iron-mq Python client: run through `make test` (sets FERROMQ_PYTHON)"]
async fn official_python_client_works_unchanged() {
    let python = std::env::var("FERROMQ_PYTHON")
        .expect("FERROMQ_PYTHON must name a python with iron-mq installed (make test sets it)");
    let running = start_process(&[]).await;
    let port = running.server.addr().port().to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/ironmq_client_check.py"
    );
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("FERROMQ_HOST", "127.0.0.1")
        .env("FERROMQ_PORT", port)
        .env("FERROMQ_TOKEN", TOKEN)
        .output()
        .await
        .expect("python runs");
    let report = String::from_utf8_lossy(&output.stderr);
    println!("{report}");
    assert!(
        output.status.success(),
        "the Python client checks failed:\n{report}"
    );
    assert!(report.contains("OK"), "no unittest summary:\n{report}");
}
