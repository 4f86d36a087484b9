//! Settings of `ferromq serve`, from flags or the environment.

use crate::api::Limits;
use crate::listener::{Listening, TlsFiles};
use crate::push::worker::PushSettings;
use crate::store::{Durability, RedisTarget, SentinelSpec};
use crate::tokens::Tokens;
use clap::Args;
// Switches set from the environment take 1/0, yes/no, on/off as well as true/false.
use clap::builder::BoolishValueParser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Settings of `ferromq standalone`.
#[derive(Debug, Clone, Args)]
pub struct StandaloneArgs {
    /// Queue and Subscription manifests: YAML files, or directories of them. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,

    /// Namespace (and so project id) of resources that name none.
    #[arg(long, env = "FERROMQ_NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Where the redis-server started without REDIS_URL keeps its data (default: a temporary
    /// directory, kept after exit).
    #[arg(long, env = "FERROMQ_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis to store queues in: redis://host:port, rediss://host:port (TLS), unix:///path,
    /// or several comma-separated nodes of a Redis Cluster.
    /// [default: redis://127.0.0.1:6379; standalone starts its own redis-server]
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Treat REDIS_URL as a Redis Cluster even when it names one node.
    #[arg(long, env = "FERROMQ_REDIS_CLUSTER", value_parser = BoolishValueParser::new())]
    pub redis_cluster: bool,

    /// Sentinels (host:port,host:port,...) that name the Redis primary: ferromq follows their
    /// failovers. Instead of REDIS_URL.
    #[arg(long, env = "FERROMQ_REDIS_SENTINELS", conflicts_with_all = ["redis_url", "redis_cluster"])]
    pub redis_sentinels: Option<String>,

    /// The name the Sentinels monitor the primary by.
    #[arg(long, env = "FERROMQ_REDIS_MASTER_NAME", default_value = "mymaster")]
    pub redis_master_name: String,

    /// Password of the Sentinels.
    #[arg(long, env = "FERROMQ_REDIS_SENTINEL_PASSWORD", hide_env_values = true)]
    pub redis_sentinel_password: Option<String>,

    /// Password of the Redis nodes the Sentinels name.
    #[arg(long, env = "FERROMQ_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Talk TLS to the Sentinels and to the Redis nodes they name (a REDIS_URL asks for TLS
    /// with rediss://).
    #[arg(long, env = "FERROMQ_REDIS_TLS", value_parser = BoolishValueParser::new(),
          requires = "redis_sentinels")]
    pub redis_tls: bool,

    /// PEM file of the certificate authority that signed the TLS certificates of Redis (and
    /// the Sentinels); without it, the system's roots are trusted.
    #[arg(long, env = "FERROMQ_REDIS_CA")]
    pub redis_ca: Option<PathBuf>,

    /// Replicas that must confirm each change (Redis WAIT) before it is answered; 0 answers
    /// as soon as the primary has it.
    #[arg(long, env = "FERROMQ_MIN_REPLICAS_ACK", default_value_t = 0)]
    pub min_replicas_ack: u32,

    /// Milliseconds to wait for those replicas; then the request answers 503. Below the
    /// store's 5 s response timeout: while it waits, the process's other Redis commands wait
    /// behind it.
    #[arg(long, env = "FERROMQ_REPLICA_ACK_TIMEOUT", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=4_000))]
    pub replica_ack_timeout: u64,
}

impl RedisArgs {
    pub fn target(&self) -> Result<RedisTarget, String> {
        let tls = self.redis_tls
            || (self.redis_sentinels.is_none()
                && self
                    .redis_url
                    .as_deref()
                    .is_some_and(|u| u.contains("rediss://")));
        let ca_pem = match &self.redis_ca {
            Some(_) if !tls => {
                return Err(
                    "FERROMQ_REDIS_CA is for TLS: use a rediss:// REDIS_URL, or \
                            FERROMQ_REDIS_TLS with Sentinels"
                        .into(),
                );
            }
            Some(path) => Some(crate::tls::read_pem_certificates(path)?),
            None => None,
        };
        Ok(RedisTarget {
            durability: Durability {
                replicas: self.min_replicas_ack,
                timeout: Duration::from_millis(self.replica_ack_timeout),
            },
            ca_pem,
            ..self.place()
        })
    }

    /// Where the store is.
    fn place(&self) -> RedisTarget {
        if let Some(sentinels) = &self.redis_sentinels {
            return RedisTarget::sentinel(SentinelSpec {
                sentinels: sentinels
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                master_name: self.redis_master_name.clone(),
                sentinel_password: self.redis_sentinel_password.clone(),
                redis_password: self.redis_password.clone(),
                tls: self.redis_tls,
            });
        }
        let url = self.redis_url.as_deref().unwrap_or(DEFAULT_REDIS_URL);
        RedisTarget::parse(url, self.redis_cluster)
    }
}

/// Settings of `ferromq controller`.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Watch Queues and Subscriptions of this namespace only (default: all namespaces).
    #[arg(long, env = "FERROMQ_WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "FERROMQ_HEALTH_LISTEN", default_value = "0.0.0.0:8081")]
    pub health_listen: SocketAddr,

    /// Reconcile without taking the leader Lease (only ever run one such replica).
    #[arg(long, env = "FERROMQ_NO_LEADER_ELECTION", value_parser = BoolishValueParser::new())]
    pub no_leader_election: bool,

    /// Namespace of the leader Lease (the controller's own, in a pod).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// Name of the leader Lease.
    #[arg(long, env = "FERROMQ_LEASE_NAME", default_value = "ferromq-controller")]
    pub lease_name: String,

    /// This replica's name in the Lease (default: the pod name, else a random one).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Refuse Queues whose `spec.project` names another project than their namespace (for
    /// clusters where namespaces are tenants).
    #[arg(long, env = "FERROMQ_NO_PROJECT_OVERRIDE", value_parser = BoolishValueParser::new())]
    pub no_project_override: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the REST API listens on.
    #[arg(long, env = "FERROMQ_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub redis: RedisArgs,

    /// Tokens and the projects they may use: `TOKEN=PROJECT[,PROJECT...]` or `TOKEN=*`,
    /// separated by spaces or `;`.
    #[arg(long, env = "FERROMQ_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,

    /// A file of token entries, one or more per line, `#` for comments.
    #[arg(long, env = "FERROMQ_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Largest message body in bytes.
    #[arg(long, env = "FERROMQ_MAX_MESSAGE_SIZE", default_value_t = 256 * 1024)]
    pub max_message_size: usize,

    /// Largest request body in bytes.
    #[arg(long, env = "FERROMQ_MAX_REQUEST_SIZE", default_value_t = 8 * 1024 * 1024)]
    pub max_request_size: usize,

    /// Longest a request may take in seconds, its body and long poll included (503 beyond);
    /// above the longest long poll (30 s).
    #[arg(long, env = "FERROMQ_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,

    /// How long a post's Idempotency-Key is remembered, in seconds: a repeat within it stores
    /// nothing and answers the first post's ids.
    #[arg(long, env = "FERROMQ_IDEMPOTENCY_WINDOW", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub idempotency_window: u64,

    /// Connections served at once; more are closed as they arrive.
    #[arg(long, env = "FERROMQ_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Seconds a client has to send a request's headers, on an idle kept-alive connection too.
    #[arg(long, env = "FERROMQ_HEADER_TIMEOUT", default_value_t = 30)]
    pub header_timeout: u64,

    /// Serve HTTPS: the certificate chain (PEM) ...
    #[arg(long, env = "FERROMQ_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// ... and its private key (PEM).
    #[arg(long, env = "FERROMQ_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Serve the API only: run no push workers in this process.
    #[arg(long, env = "FERROMQ_NO_PUSH", value_parser = BoolishValueParser::new())]
    pub no_push: bool,

    /// Base URL subscribers reach this data plane at, for acknowledgement URLs
    /// (default: http:// and the listen address).
    #[arg(long, env = "FERROMQ_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds a push subscriber has to answer.
    #[arg(long, env = "FERROMQ_PUSH_TIMEOUT", default_value_t = 60)]
    pub push_timeout: u64,

    /// A PEM file of extra certificate authorities that `https://` subscribers' certificates
    /// may chain to (the system's roots are always trusted).
    #[arg(long, env = "FERROMQ_PUSH_CA_FILE")]
    pub push_ca_file: Option<PathBuf>,

    /// Networks push subscribers may not be reached at: comma-separated CIDRs, addresses, or
    /// loopback, link-local, private, unspecified (none by default).
    #[arg(long, env = "FERROMQ_PUSH_DENY", default_value = "")]
    pub push_deny: String,

    /// Seconds push rounds in flight may take to finish when the process stops; those still
    /// running then are delivered again by another process.
    #[arg(long, env = "FERROMQ_PUSH_SHUTDOWN_GRACE", default_value_t = 20)]
    pub push_shutdown_grace: u64,

    /// Push deliveries in flight at once, per queue and process.
    #[arg(long, env = "FERROMQ_PUSH_CONCURRENCY", default_value_t = 32)]
    pub push_concurrency: usize,

    /// Push deliveries in flight at once in this process, over all queues.
    #[arg(long, env = "FERROMQ_PUSH_PROCESS_CONCURRENCY", default_value_t = 512)]
    pub push_process_concurrency: usize,

    /// Longest wait a subscriber's `Retry-After` (on a 429 or 503) is honoured for, in seconds.
    #[arg(long, env = "FERROMQ_PUSH_MAX_RETRY_AFTER", default_value_t = 3600)]
    pub push_max_retry_after: u64,

    /// A PEM PKCS#8 P-256 private key to sign the JWTs of subscribers with `jwt` (ES256);
    /// its public key is served at /.well-known/jwks.json.
    #[arg(long, env = "FERROMQ_PUSH_JWT_KEY")]
    pub push_jwt_key: Option<String>,

    /// The directory subscribers' `jwt.token_file` must be in (projected ServiceAccount tokens);
    /// no other file is ever read for them.
    #[arg(
        long,
        env = "FERROMQ_PUSH_TOKEN_DIR",
        default_value = "/var/run/secrets/ferromq/push-tokens"
    )]
    pub push_token_dir: Option<std::path::PathBuf>,

    /// The `iss` of those JWTs (default: the public URL).
    #[arg(long, env = "FERROMQ_PUSH_JWT_ISSUER")]
    pub push_jwt_issuer: Option<String>,

    /// Seconds a finished push message stays readable with its push status (0: not at all).
    /// Each is a Redis key holding the message's body: mind the memory at high delivery rates.
    #[arg(long, env = "FERROMQ_PUSH_STATUS_KEEP", default_value_t = 60)]
    pub push_status_keep: u64,
}

impl ServeArgs {
    pub fn push_settings(&self) -> PushSettings {
        PushSettings {
            timeout: Duration::from_secs(self.push_timeout.max(1)),
            concurrency: self.push_concurrency.max(1),
            process_concurrency: self.push_process_concurrency.max(1),
            keep_status: Duration::from_secs(self.push_status_keep),
            shutdown_grace: Duration::from_secs(self.push_shutdown_grace),
        }
    }

    /// Where subscribers reach this data plane, listening on `bound`; a wildcard listen
    /// address becomes loopback.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            let mut address = bound;
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let scheme = if self.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{address}")
        })
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_message_size: self.max_message_size,
            max_request_size: self.max_request_size,
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            idempotency_window: Duration::from_secs(self.idempotency_window),
        }
    }

    /// How connections are taken: TLS or not, and the limits on them.
    pub fn listening(&self) -> Result<Listening, String> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => return Err("FERROMQ_TLS_CERT and FERROMQ_TLS_KEY go together".into()),
        };
        Ok(Listening {
            tls,
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
        })
    }

    /// All configured tokens; an error when none is configured (the API would refuse every call).
    pub fn load_tokens(&self) -> Result<Tokens, String> {
        let mut tokens = Tokens::default();
        if let Some(text) = &self.tokens {
            tokens.merge(Tokens::parse(text).map_err(|e| format!("FERROMQ_TOKENS: {e}"))?);
        }
        if let Some(path) = &self.tokens_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read tokens file {}: {e}", path.display()))?;
            tokens.merge(Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        if tokens.is_empty() {
            return Err("no tokens configured: set FERROMQ_TOKENS (e.g. 'mytoken=*') or FERROMQ_TOKENS_FILE".into());
        }
        Ok(tokens)
    }
}
