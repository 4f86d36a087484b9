//! The web console in a real browser: tests/console/console.test.mjs drives Debian's Chromium
//! with playwright-core against a `ferromq serve` process and checks each page against the
//! REST API. `make test` installs both (`make console-tools`) and runs this test. Screenshots
//! of each page go to the test's temp dir, and also to FERROMQ_SCREENSHOTS when it is set
//! (`make console-screenshots` refreshes those of the README, in docs/).

use common::{TOKEN, start_process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and tests/console/node_modules: run through `make test`"]
async fn console_works_in_a_real_browser() {
    let running = start_process(&[]).await;
    let shots = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/console/console.test.mjs"
    );
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env("FERROMQ_URL", format!("http://{}", running.server.addr()))
        .env("FERROMQ_TOKEN", TOKEN)
        .env("FERROMQ_PROJECT", "console")
        .env("SCREENSHOT_DIR", shots.path())
        .output()
        .await
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the console test failed:\n{report}"
    );
    assert!(report.contains(" 0 failed"), "no summary:\n{report}");
    let taken: Vec<_> = std::fs::read_dir(shots.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".png"))
        .collect();
    assert!(taken.len() >= 6, "a screenshot of each page: {taken:?}");
    if let Some(to) = std::env::var_os("FERROMQ_SCREENSHOTS") {
        for name in taken {
            std::fs::copy(
                shots.path().join(&name),
                std::path::Path::new(&to).join(&name),
            )
            .unwrap();
        }
    }
}
