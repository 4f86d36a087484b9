//! TLS between ferromq and Redis, against real `redis-server` processes that accept TLS only:
//! a `rediss://` URL, and Sentinels with the nodes they name (`FERROMQ_REDIS_TLS`), both
//! checked against a private certificate authority (`FERROMQ_REDIS_CA`). Without that
//! authority the server is not trusted: requests answer 503, nothing is sent in the clear.

use common::replicated::wait_until;
use common::{ServerProcess, TOKENS, TestCertificate, free_port, post_bodies, q, reserve};
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server (or Sentinel) listening on a TLS port only; killed when dropped.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The certificate files in `dir`: the server's pair and the authority (`ca.pem`).
fn write_files(certificate: &TestCertificate, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (cert, key) = certificate.write_pair(dir);
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &certificate.authority_pem).unwrap();
    (cert, key, ca)
}

/// The TLS settings redis-server takes, as lines of a config file.
fn tls_config(dir: &Path, port: u16) -> String {
    format!(
        "port 0\nbind 127.0.0.1\ntls-port {port}\ntls-cert-file {0}/tls.crt\n\
         tls-key-file {0}/tls.key\ntls-ca-cert-file {0}/ca.pem\ntls-auth-clients no\n\
         tls-replication yes\n",
        dir.display()
    )
}

fn start(dir: &Path, config: String, sentinel: bool) -> TlsRedis {
    let port = config
        .lines()
        .find_map(|l| l.strip_prefix("tls-port "))
        .unwrap()
        .parse()
        .unwrap();
    let file = dir.join(if sentinel {
        "sentinel.conf"
    } else {
        "redis.conf"
    });
    std::fs::write(&file, config).unwrap();
    let mut command = Command::new("redis-server");
    command.arg(&file).current_dir(dir).stdout(Stdio::null());
    if sentinel {
        command.arg("--sentinel");
    }
    let child = command.spawn().expect("redis-server");
    // Up once its TLS port takes connections.
    wait_until(Duration::from_secs(10), "the TLS port", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    TlsRedis { port, child }
}

async fn post_and_reserve(server: &ServerProcess) {
    let client = server.client();
    post_bodies(&client, "tls", &["over TLS"]).await;
    let got = reserve(&client, "tls", json!({"n": 1})).await;
    assert_eq!(got[0]["body"], "over TLS");
}

/// `ferromq serve` on the Redis at `url`, listening on `listen`.
fn serve(url: &str, listen: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferromq"));
    command
        .arg("serve")
        .env("REDIS_URL", url)
        .env("FERROMQ_TOKENS", TOKENS)
        .env("FERROMQ_LISTEN", listen);
    command
}

/// What `ferromq serve` writes to stderr as it refuses to start with `ca`.
fn refusal_with_ca(url: &str, ca: &Path) -> String {
    let output = serve(url, "127.0.0.1:0")
        .env("FERROMQ_REDIS_CA", ca)
        .output()
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn rediss_url_checked_against_a_private_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, ca) = write_files(&TestCertificate::for_loopback(), dir.path());
    let redis = start(dir.path(), tls_config(dir.path(), free_port()), false);
    let url = format!("rediss://127.0.0.1:{}", redis.port);

    let server =
        ServerProcess::start_on_url(&url, &[("FERROMQ_REDIS_CA", ca.to_str().unwrap())]).await;
    post_and_reserve(&server).await;

    // The system's roots do not trust the private authority: the data plane runs, is not
    // ready, and answers 503 with a msg.
    let port = free_port();
    let mut untrusting = serve(&url, &format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = common::Client::new(&format!("http://127.0.0.1:{port}"), Some(common::TOKEN));
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(a) = client
            .try_call(
                reqwest::Method::GET,
                &q("tls"),
                None,
                Duration::from_secs(10),
            )
            .await
        {
            answer = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = untrusting.kill();
    let _ = untrusting.wait();
    let (status, json) = answer.expect("an answer from the data plane");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");

    // An authority for a connection without TLS stops start-up: it would protect nothing.
    let stderr = refusal_with_ca(&format!("redis://127.0.0.1:{}", redis.port), &ca);
    assert!(stderr.contains("FERROMQ_REDIS_CA is for TLS"), "{stderr}");

    // A CA file that cannot be read stops start-up with a clear message.
    let stderr = refusal_with_ca(&url, &dir.path().join("missing.pem"));
    assert!(
        stderr.contains("cannot read") && stderr.contains("missing.pem"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sentinels_and_primary_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    write_files(&TestCertificate::for_loopback(), dir.path());
    let primary = start(dir.path(), tls_config(dir.path(), free_port()), false);
    let sentinel_config = format!(
        "{}sentinel monitor mymaster 127.0.0.1 {} 1\n",
        tls_config(dir.path(), free_port()),
        primary.port
    );
    let sentinel = start(dir.path(), sentinel_config, true);
    let ca = dir.path().join("ca.pem");
    let server = ServerProcess::start_on_sentinels(
        &format!("127.0.0.1:{}", sentinel.port),
        &[
            ("FERROMQ_REDIS_TLS", "true"),
            ("FERROMQ_REDIS_CA", ca.to_str().unwrap()),
        ],
    )
    .await;
    post_and_reserve(&server).await;
}
