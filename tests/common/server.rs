//! The data plane under test: served in-process (`TestServer`), as a `ferromq serve` process
//! (`ServerProcess`, over HTTP or HTTPS), or as a `ferromq standalone` process (`Standalone`).

use crate::certificate::TestCertificate;
use crate::client::{Client, http, http_trusting};
use crate::redis::RedisServer;
use crate::{MAX_MESSAGE_SIZE, MAX_REQUEST_SIZE, PUSH_TIMEOUT, TOKEN, TOKENS, free_port};
use clap::{CommandFactory, FromArgMatches, Parser};
use ferromq::config::ServeArgs;
use ferromq::serve::DataPlane;
use ferromq::store::{RedisTarget, Store};
use ferromq::tokens::Tokens;
use reqwest::StatusCode;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `ferromq serve`'s settings, read from flags.
#[derive(Parser)]
struct ServeCommand {
    #[command(flatten)]
    serve: ServeArgs,
}

impl ServeCommand {
    /// The settings `flags` give, the defaults for the rest: the environment of the test
    /// process (a `FERROMQ_*` variable set where the tests run) is not read.
    fn from_flags(flags: &[String]) -> ServeArgs {
        let command = ServeCommand::command().mut_args(|arg| arg.env(None));
        let matches = command.get_matches_from(flags);
        ServeCommand::from_arg_matches(&matches)
            .expect("test server flags")
            .serve
    }
}

/// The data plane served in-process on a free loopback port. Stops when dropped.
pub struct TestServer {
    pub base: String,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(redis: &RedisServer) -> Self {
        Self::start_on(&redis.url()).await
    }

    /// Serves against a Redis URL: one node, or comma-separated cluster nodes, wired as
    /// `ferromq serve` wires it, with a short push answer timeout so failure tests run quickly.
    pub async fn start_on(redis_url: &str) -> Self {
        let store = Store::connect(&RedisTarget::parse(redis_url, false))
            .await
            .expect("store");
        assert!(
            store.wait_subscribed(Duration::from_secs(5)).await,
            "wake-up subscription"
        );
        let args = ServeCommand::from_flags(&[
            "serve".to_string(),
            "--listen=127.0.0.1:0".to_string(),
            format!("--max-message-size={MAX_MESSAGE_SIZE}"),
            format!("--max-request-size={MAX_REQUEST_SIZE}"),
            "--request-timeout=60".to_string(),
            format!("--push-timeout={}", PUSH_TIMEOUT.as_secs()),
            "--push-concurrency=32".to_string(),
            "--push-process-concurrency=256".to_string(),
            "--push-status-keep=600".to_string(),
            "--push-shutdown-grace=5".to_string(),
        ]);
        let tokens = Tokens::parse(TOKENS).unwrap();
        let plane = DataPlane::bind(&args, tokens, store)
            .await
            .expect("data plane");
        let addr = plane.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(plane.serve(async move {
            let _ = rx.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            addr,
            shutdown: Some(tx),
        }
    }

    /// Where it listens, for raw TCP clients.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client with the token of every project.
    pub fn client(&self) -> Client {
        Client::new(&self.base, Some(TOKEN))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The `ferromq` binary cargo built for these tests.
fn ferromq_binary() -> PathBuf {
    // Cargo names it while it runs integration tests; a test binary run by hand finds it in
    // its profile folder (target/<profile>/deps/<test> -> target/<profile>/ferromq).
    std::env::var_os("CARGO_BIN_EXE_ferromq")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let test = std::env::current_exe().expect("test binary path");
            let profile = test
                .parent()
                .and_then(Path::parent)
                .expect("profile folder");
            profile.join("ferromq")
        })
}

/// `ferromq SUBCOMMAND` with `tokens`, listening on loopback `port`, its output dropped.
fn ferromq(subcommand: &str, port: u16, tokens: &str) -> Command {
    let mut command = Command::new(ferromq_binary());
    command
        .arg(subcommand)
        .env("FERROMQ_TOKENS", tokens)
        .env("FERROMQ_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null());
    command
}

/// Waits until `{base}/readyz` answers 200 through `http`, for at most `limit`. Each probe
/// asks the server to close its connection: none is left holding a place (a test of the
/// connection limit counts them) for a client task that may not run again.
async fn wait_ready(base: &str, http: reqwest::Client, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let probe = http
            .get(format!("{base}/readyz"))
            .header(reqwest::header::CONNECTION, "close");
        if let Ok(resp) = probe.send().await
            && resp.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{base} did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM, as Kubernetes stops a pod (or a user's Ctrl-C), then waits for the exit.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// `ferromq serve` as a separate process, on a free loopback port. Killed when dropped.
pub struct ServerProcess {
    pub base: String,
    port: u16,
    child: Child,
    /// With TLS: the authority that issued the server's certificate (PEM)...
    authority_pem: Option<String>,
    /// ... and the folder of the certificate and key files, kept while the process runs.
    _tls_files: Option<tempfile::TempDir>,
}

/// A new HTTP client that trusts `authority_pem`, if any.
fn http_for(authority_pem: Option<&str>) -> reqwest::Client {
    match authority_pem {
        Some(pem) => http_trusting(pem),
        None => http(),
    }
}

impl ServerProcess {
    pub async fn start(redis: &RedisServer) -> Self {
        Self::start_with(redis, &[]).await
    }

    /// Like `start`, with more environment variables for `ferromq serve`.
    pub async fn start_with(redis: &RedisServer, env: &[(&str, &str)]) -> Self {
        Self::spawn(&redis.url(), env, None, Stdio::null()).await
    }

    /// A `ferromq serve` process on the Redis at `url`, with more environment variables.
    pub async fn start_on_url(url: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn(url, env, None, Stdio::null()).await
    }

    /// A `ferromq serve` process on the primary that `sentinels` (host:port,...) name.
    pub async fn start_on_sentinels(sentinels: &str, env: &[(&str, &str)]) -> Self {
        let mut all = vec![("FERROMQ_REDIS_SENTINELS", sentinels)];
        all.extend_from_slice(env);
        Self::spawn("", &all, None, Stdio::null()).await
    }

    /// Like `start_with`, serving HTTPS with `certificate`. It is ready once `/readyz`
    /// answers over HTTPS (plain HTTP gets no answer); its clients trust the certificate's
    /// authority.
    pub async fn start_tls(
        redis: &RedisServer,
        certificate: &TestCertificate,
        env: &[(&str, &str)],
    ) -> Self {
        let files = tempfile::tempdir().expect("temporary directory");
        let (cert, key) = certificate.write_pair(files.path());
        let mut tls_env = vec![
            ("FERROMQ_TLS_CERT", cert.to_str().unwrap()),
            ("FERROMQ_TLS_KEY", key.to_str().unwrap()),
        ];
        tls_env.extend_from_slice(env);
        let tls = (certificate.authority_pem.clone(), files);
        Self::spawn(&redis.url(), &tls_env, Some(tls), Stdio::null()).await
    }

    /// Like `start_with`, keeping what the process writes to stdout (its logs) for
    /// `stop_and_read_logs`.
    pub async fn start_logged(redis: &RedisServer, env: &[(&str, &str)]) -> Self {
        Self::spawn(&redis.url(), env, None, Stdio::piped()).await
    }

    /// `redis_url` '' when `env` says where Redis is.
    async fn spawn(
        redis_url: &str,
        env: &[(&str, &str)],
        tls: Option<(String, tempfile::TempDir)>,
        stdout: Stdio,
    ) -> Self {
        let port = free_port();
        let mut command = ferromq("serve", port, TOKENS);
        if !redis_url.is_empty() {
            command.env("REDIS_URL", redis_url);
        }
        command
            .env("FERROMQ_PUSH_TIMEOUT", PUSH_TIMEOUT.as_secs().to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(stdout);
        let (authority_pem, tls_files) = tls.unzip();
        let scheme = if authority_pem.is_some() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://127.0.0.1:{port}");
        let server = ServerProcess {
            base,
            port,
            child: command.spawn().expect("ferromq binary"),
            authority_pem,
            _tls_files: tls_files,
        };
        wait_ready(&server.base, server.http(), Duration::from_secs(15)).await;
        server
    }

    /// Where it listens, for raw TCP clients.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A new HTTP client (with TLS, one that trusts the server's certificate).
    pub fn http(&self) -> reqwest::Client {
        http_for(self.authority_pem.as_deref())
    }

    /// A client with the token of every project.
    pub fn client(&self) -> Client {
        Client {
            base: self.base.clone(),
            token: Some(TOKEN.into()),
            http: self.http(),
        }
    }

    /// SIGTERM, as Kubernetes stops a pod, and waits for the process to exit.
    pub fn terminate(&mut self) {
        terminate(&mut self.child);
    }

    /// SIGKILL: the process gets no chance to finish requests or deliveries in flight.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process (started with `start_logged`) and returns the lines it wrote.
    pub fn stop_and_read_logs(&mut self) -> Vec<String> {
        self.kill();
        let stdout = self.child.stdout.take().expect("started with start_logged");
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `ferromq standalone` as a separate process: its own redis-server in `--data-dir`, the
/// queues of its manifest files, served on a free loopback port to the token `TOKEN`, for
/// every project. Stopped with SIGTERM when dropped, which stops its redis-server too.
pub struct Standalone {
    pub client: Client,
    pub child: Child,
}

impl Standalone {
    /// `ferromq standalone -f FILE... --data-dir DATA_DIR`, without REDIS_URL, listening on
    /// loopback `port`.
    pub fn command(files: &[&Path], data_dir: &Path, port: u16) -> Command {
        let mut command = ferromq("standalone", port, &format!("{TOKEN}=*"));
        for file in files {
            command.arg("-f").arg(file);
        }
        command
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("REDIS_URL");
        command
    }

    /// Starts it on `files` and `data_dir`, and waits until it serves.
    pub async fn start(files: &[&Path], data_dir: &Path) -> Self {
        let port = free_port();
        let mut command = Self::command(files, data_dir, port);
        command
            .env("FERROMQ_PUSH_TIMEOUT", PUSH_TIMEOUT.as_secs().to_string())
            .env("RUST_LOG", "warn");
        let server = Standalone {
            client: Client::new(&format!("http://127.0.0.1:{port}"), Some(TOKEN)),
            child: command.spawn().expect("ferromq binary"),
        };
        let client = &server.client;
        wait_ready(&client.base, client.http.clone(), Duration::from_secs(20)).await;
        server
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
