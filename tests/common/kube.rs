//! A real Kubernetes API server of the test's own: etcd and kube-apiserver on free loopback
//! ports, as controller-runtime's envtest runs them (no kubelet: objects are stored and
//! validated, no pod runs). The binaries are those `make kube-tools` builds from the Go module
//! proxy (`tests/kube`), found in `FERROMQ_KUBE_BIN` (default `.tools/kube`). An admin token
//! (`system:masters`) reaches everything; RBAC holds for every other identity.

use crate::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "ferromq-test-admin";

pub struct KubeApi {
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// A kubeconfig for the admin.
    pub kubeconfig: PathBuf,
    // Dropped in this order: the API server before its etcd.
    _apiserver: Killed,
    _etcd: Killed,
    dir: tempfile::TempDir,
}

/// A child process killed (and reaped) when dropped, also when a test panics.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the binaries are: `kube-apiserver`, `etcd`.
fn bin_dir() -> PathBuf {
    tool_path("FERROMQ_KUBE_BIN", "kube")
}

/// A tool `make` put in `.tools/` (`make chart-tools`: kubectl, helm), unless `variable` names
/// another.
fn tool_path(variable: &str, name: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../.tools")
                .join(name)
        })
}

pub fn kubectl_path() -> PathBuf {
    tool_path("FERROMQ_KUBECTL", "kubectl")
}

pub fn helm_path() -> PathBuf {
    tool_path("FERROMQ_HELM", "helm")
}

fn spawn(program: PathBuf, args: &[String], log: &Path) -> Killed {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(&program)
        .args(args)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it with `make kube-tools`)",
                program.display()
            )
        });
    Killed(child)
}

impl KubeApi {
    /// Starts etcd and the API server, and waits until `/readyz` answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let (client, peer, secure) = (free_port(), free_port(), free_port());
        let etcd = spawn(
            bin_dir().join("etcd"),
            &[
                format!("--data-dir={}", path("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster=default=http://127.0.0.1:{peer}"),
                "--unsafe-no-fsync".into(),
            ],
            &path("etcd.log"),
        );
        std::fs::write(
            path("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin,system:masters\n"),
        )
        .unwrap();
        // The key that signs ServiceAccount tokens.
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(path("sa.key"), key.serialize_pem()).unwrap();
        std::fs::write(path("sa.pub"), key.public_key_pem()).unwrap();
        let apiserver = spawn(
            bin_dir().join("kube-apiserver"),
            &[
                format!("--etcd-servers=http://127.0.0.1:{client}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={secure}"),
                format!("--cert-dir={}", path("certs").display()),
                format!("--token-auth-file={}", path("tokens.csv").display()),
                "--authorization-mode=RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", path("sa.pub").display()),
                format!(
                    "--service-account-signing-key-file={}",
                    path("sa.key").display()
                ),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                // No Service endpoints for a loopback address.
                "--endpoint-reconciler-type=none".into(),
                "--enable-priority-and-fairness=false".into(),
            ],
            &path("apiserver.log"),
        );
        let server = format!("https://127.0.0.1:{secure}");
        let kubeconfig = path("admin.kubeconfig");
        write_kubeconfig(&kubeconfig, &server, ADMIN_TOKEN);
        let api = KubeApi {
            server,
            kubeconfig,
            _apiserver: apiserver,
            _etcd: etcd,
            dir,
        };
        api.wait_ready(Duration::from_secs(60));
        api
    }

    /// Started, with the CRDs of `crds/` installed and established (applied with no
    /// warning), and `namespaces` created.
    pub fn start_with_crds(namespaces: &[&str]) -> Self {
        let api = KubeApi::start();
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds/ferromq.dev.yaml");
        let crds = std::fs::read_to_string(file).unwrap();
        let (_, warnings) = api.apply(&crds).expect("the CRDs apply");
        assert!(
            warnings.trim().is_empty(),
            "the CRDs apply with warnings: {warnings}"
        );
        let established = api.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/queues.ferromq.dev",
            "crd/subscriptions.ferromq.dev",
            "--timeout=30s",
        ]);
        assert!(established.status.success(), "{established:?}");
        for namespace in namespaces {
            let created = api.kubectl(&["create", "namespace", namespace]);
            assert!(created.status.success(), "{created:?}");
        }
        api
    }

    fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let ready = self.kubectl(&["get", "--raw", "/readyz"]);
            if ready.status.success() {
                println!("kube-apiserver ready in {:?}", start.elapsed());
                return;
            }
            assert!(
                start.elapsed() < limit,
                "kube-apiserver not ready in {limit:?}: {}\n{}",
                String::from_utf8_lossy(&ready.stderr),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The end of etcd's and the API server's logs, for failure messages.
    pub fn log_tail(&self) -> String {
        let tail = |name: &str| {
            let log = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            format!(
                "{name}:\n{}",
                lines[lines.len().saturating_sub(15)..].join("\n")
            )
        };
        format!("{}\n{}", tail("etcd.log"), tail("apiserver.log"))
    }

    /// kubectl as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args, None)
    }

    /// kubectl with a kubeconfig, and `stdin` fed to it.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(kubectl_path())
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl (make chart-tools)");
        let input = stdin.unwrap_or("").to_string();
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(input.as_bytes());
        });
        child.wait_with_output().unwrap()
    }

    /// `kubectl apply -f -` of `manifest` as the admin: stdout and stderr, or why it failed.
    pub fn apply(&self, manifest: &str) -> Result<(String, String), String> {
        let out = self.kubectl_as(&self.kubeconfig, &["apply", "-f", "-"], Some(manifest));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.success() {
            true => Ok((String::from_utf8_lossy(&out.stdout).into_owned(), stderr)),
            false => Err(stderr),
        }
    }

    /// A kubeconfig that authenticates with `token` (e.g. a ServiceAccount's).
    pub fn kubeconfig_for(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        write_kubeconfig(&path, &self.server, token);
        path
    }
}

fn write_kubeconfig(path: &Path, server: &str, token: &str) {
    let config = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: test\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\n\
         users:\n- name: user\n  user:\n    token: {token}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: user\n\
         current-context: test\n"
    );
    std::fs::write(path, config).unwrap();
}
