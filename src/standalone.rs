//! `ferromq standalone`: the data plane and push workers, with queues declared by Queue and
//! Subscription manifests read from files: no Kubernetes needed. Starts a private redis-server
//! when no REDIS_URL is given.

use crate::config::StandaloneArgs;
use crate::k8s::declare;
use crate::k8s::manifests;
use crate::store::{RedisTarget, Store, StoreError};
use crate::tokens::Tokens;
use kube::ResourceExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long a started redis-server has to open its socket.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: StandaloneArgs) -> Result<(), crate::serve::Failure> {
    let manifests = manifests::load(&args.files, &args.namespace)?;
    let serve = args.serve;
    // Before anything is stored: a port in use would otherwise only show after declaring.
    std::net::TcpListener::bind(serve.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", serve.listen))?;
    // With no token configured, one is made up and shown (configured ones are never shown).
    let (tokens, shown_token) = match serve.load_tokens() {
        Ok(tokens) => (tokens, "as configured".to_string()),
        Err(_) if serve.tokens.is_none() && serve.tokens_file.is_none() => {
            let token = uuid::Uuid::new_v4().simple().to_string();
            (Tokens::parse(&format!("{token}=*"))?, token)
        }
        Err(err) => return Err(err.into()),
    };
    // Runs as long as the data plane serves (and is killed on drop, should start-up fail).
    let mut redis = None;
    let external = serve.redis.redis_url.is_some() || serve.redis.redis_sentinels.is_some();
    let target = match external {
        true => serve.redis.target()?,
        false => {
            let (child, socket) = start_redis(args.data_dir.as_deref()).await?;
            redis = Some(child);
            let url = format!("unix://{}", socket.display());
            println!("started redis-server at {url}");
            RedisTarget::parse(&url, false)
        }
    };
    let store = Store::connect(&target).await?;
    let previously = store.declared_queues().await?;
    if manifests.queues.is_empty() && !previously.is_empty() {
        tracing::warn!(
            queues = previously.len(),
            "the manifests declare no Queue: every queue an earlier run declared is released"
        );
    }
    for queue in &manifests.queues {
        let subscriptions = declare::subscriptions_of(queue, manifests.subscriptions.iter());
        // Noted first: a run cut short still knows, next time, what it may have declared.
        let (project, name, manager) = (queue.project(), queue.name_any(), queue.manager());
        store.note_declared(&project, &name, Some(&manager)).await?;
        if let Err(err) = declare::declare_queue(&store, queue, &subscriptions).await {
            // Not ours after all: the record goes back to what it was.
            let before = previously
                .iter()
                .find(|(p, n, _)| *p == project && *n == name)
                .map(|(_, _, m)| m.as_str());
            store.note_declared(&project, &name, before).await?;
            let file = manifests.file_of(queue);
            return Err(match err {
                StoreError::NotAdopted => format!(
                    "{file}: Queue {name}: a queue of that name was set up over the REST API; \
                     annotate the Queue {}: \"true\" to take it over with its messages",
                    declare::ADOPT_ANNOTATION
                ),
                StoreError::Managed { by } => format!(
                    "{file}: Queue {name}: queue {name} of project {project} is managed by {by}"
                ),
                err => format!("{file}: Queue {name}: {err}"),
            }
            .into());
        }
        println!(
            "queue {} ({:?}, {} subscription(s)): {}",
            queue.name_any(),
            queue.spec.queue_type,
            subscriptions.len(),
            queue.endpoint()
        );
    }
    release_dropped(&store, &manifests, previously).await?;
    for subscription in &manifests.subscriptions {
        let queue = manifests.queues.iter().find(|q| {
            q.namespace() == subscription.namespace() && q.name_any() == subscription.spec.queue
        });
        let status =
            declare::subscription_status(subscription, queue, None, declare::Circuit::Unknown);
        if let Some(c) = status
            .conditions
            .first()
            .filter(|c| c.status != "True" && c.reason != "QueuePending")
        {
            println!(
                "subscription {}: not used: {}",
                subscription.name_any(),
                c.message
            );
        }
    }
    println!(
        "ferromq: http://{}  token: {shown_token}  (any project)",
        serve.listen
    );
    let served = crate::serve::serve_store(serve, tokens, store).await;
    if let Some(mut redis) = redis {
        // Stop it and wait, so no exited redis-server is left behind unreaped.
        let _ = redis.kill().await;
    }
    served
}

/// Queues an earlier run declared from a manifest that is gone now are released: kept, with
/// their messages, as ordinary queues (never deleted: a file left out by mistake loses
/// nothing). Delete one over REST if it is not wanted.
async fn release_dropped(
    store: &Store,
    manifests: &manifests::Manifests,
    previously: Vec<(String, String, String)>,
) -> Result<(), StoreError> {
    for (project, name, manager) in previously {
        let declared = manifests
            .queues
            .iter()
            .any(|q| q.project() == project && q.name_any() == name);
        if declared {
            continue;
        }
        let ours = match store.queue_info(&project, &name).await {
            Ok(info) => info.config.managed_by.as_deref() == Some(manager.as_str()),
            Err(StoreError::QueueNotFound) => false,
            Err(err) => return Err(err),
        };
        if ours {
            store.release_queue(&project, &name, &manager).await?;
            println!(
                "queue {name} (project {project}): its manifest is gone; kept with its messages as an ordinary queue"
            );
        }
        store.note_declared(&project, &name, None).await?;
    }
    Ok(())
}

/// Starts redis-server on a unix socket in `data_dir` (a temporary directory when none),
/// with append-only persistence.
async fn start_redis(data_dir: Option<&Path>) -> Result<(Child, PathBuf), String> {
    let dir = match data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            std::fs::canonicalize(dir).map_err(|e| e.to_string())?
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("ferromq-")
                .tempdir()
                .map_err(|e| e.to_string())?;
            println!(
                "no --data-dir: redis keeps its data in {}",
                dir.path().display()
            );
            dir.keep()
        }
    };
    let socket = dir.join("redis.sock");
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        // Two servers on one append-only file would corrupt it.
        return Err(format!(
            "a redis-server already serves {} (another ferromq standalone on this data directory?)",
            socket.display()
        ));
    }
    let _ = std::fs::remove_file(&socket);
    let mut command = Command::new("redis-server");
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the child's own process state.
    unsafe {
        // Should this process die without stopping it (SIGKILL), the server stops too.
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = command
        .args(["--port", "0", "--unixsocket"])
        .arg(&socket)
        .args(["--unixsocketperm", "700", "--dir"])
        .arg(&dir)
        .args(["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""])
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot start redis-server ({e}): install it (apt-get install redis-server) or set REDIS_URL")
        })?;
    let started = tokio::time::Instant::now();
    while !socket.exists() {
        if started.elapsed() > REDIS_START_TIMEOUT {
            return Err(format!(
                "redis-server did not open {} in time",
                socket.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, socket))
}
