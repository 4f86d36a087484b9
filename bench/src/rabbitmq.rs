//! RabbitMQ's reference rows: Debian's `rabbitmq-server`, started on free ports with its data
//! in the run's temporary directory, one durable quorum queue (replicated log, fsync before a
//! confirm), persistent 256-byte messages, publisher confirms and consumer acks, driven over
//! AMQP 0.9.1 (lapin) at the same concurrency as ferromq's scenarios. Broker CPU comes from its
//! `beam.smp` process.

use crate::load::{self, Outcome};
use crate::procs;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's package puts the broker's start script.
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const QUEUE: &str = "bench";

pub fn installed() -> bool {
    Path::new(SERVER).exists()
}

/// A private broker: its own node name, ports, Erlang port mapper and data directory. Killed
/// with its whole process group (the start script, beam.smp, its helpers) when dropped.
pub struct Broker {
    script: Child,
    epmd_port: u16,
    pub url: String,
    /// The Erlang VM that does the broker's work.
    pub beam: u32,
}

impl Broker {
    pub fn start(dir: &Path) -> Result<Broker, String> {
        let base = dir.join("rabbitmq");
        std::fs::create_dir_all(&base).map_err(|e| e.to_string())?;
        // Guest may sign in over loopback only, which is where the load comes from.
        std::fs::write(base.join("rabbitmq.conf"), "loopback_users = none\n")
            .map_err(|e| e.to_string())?;
        std::fs::write(base.join("enabled_plugins"), "[].\n").map_err(|e| e.to_string())?;
        let (port, dist_port, epmd_port) =
            (procs::free_port(), procs::free_port(), procs::free_port());
        let script = Command::new(SERVER)
            .env("HOME", &base)
            .env(
                "RABBITMQ_NODENAME",
                format!("ferromq-bench-{port}@localhost"),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", base.join("rabbitmq"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                base.join("enabled_plugins"),
            )
            .env("RABBITMQ_MNESIA_BASE", base.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", base.join("log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {SERVER}: {e}"))?;
        let mut broker = Broker {
            script,
            epmd_port,
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            beam: 0,
        };
        // The VM boots in 10 to 20 s here; the port opens once the broker accepts clients.
        let deadline = Instant::now() + Duration::from_secs(90);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || broker.script.try_wait().ok().flatten().is_some() {
                return Err(format!(
                    "RabbitMQ did not start (see {})",
                    base.join("log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        broker.beam = find_beam(broker.script.id())
            .ok_or("RabbitMQ runs, but its beam.smp process was not found")?;
        Ok(broker)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal, to the group the start script leads.
        unsafe { libc::kill(-(self.script.id() as i32), libc::SIGKILL) };
        let _ = self.script.wait();
        // The port mapper detached from the group; it has a port of its own and stops on
        // request, but refuses while the node it knows is still registered: wait for the VM
        // to be gone, then ask until it stops.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(self.beam) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        while Instant::now() < deadline {
            let stopped = Command::new("epmd")
                .arg("-kill")
                .env("ERL_EPMD_PORT", self.epmd_port.to_string())
                .stderr(Stdio::null())
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Killed"));
            if stopped {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "RabbitMQ's port mapper (epmd on port {}) did not stop",
            self.epmd_port
        );
    }
}

/// Whether a process still runs (a zombie, dead but not yet reaped, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X') | None)
    })
}

/// The beam.smp process below the start script (its child, or a grandchild).
fn find_beam(script: u32) -> Option<u32> {
    let mut pending = vec![script];
    while let Some(pid) = pending.pop() {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            let name = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if name.trim() == "beam.smp" {
                return Some(child);
            }
            pending.push(child);
        }
    }
    None
}

/// The measurements of one run, in the order of ferromq's throughput scenarios.
pub async fn scenarios(
    broker: &Broker,
    args: &crate::Args,
    duration: Duration,
) -> Result<Vec<Outcome>, String> {
    let link = open(&broker.url).await?;
    declare(&link.channel).await?;
    let body = vec![b'x'; args.body_size];
    let mut outcomes = Vec::new();
    for (label, batch, publishers) in [
        ("publish 1 per confirm", 1, args.concurrency),
        ("publish 100 per confirm", 100, args.batch_concurrency),
    ] {
        let channels = publishers_of(&broker.url, publishers).await?;
        let label = format!("RabbitMQ {label}");
        let outcome = load::measure(&label, (Some(broker.beam), None), channels, duration, {
            let body = body.clone();
            move |link: Link| {
                let body = body.clone();
                async move {
                    let result = publish(&link.channel, &body, batch)
                        .await
                        .map(|_| batch as u64);
                    (link, result)
                }
            }
        })
        .await;
        outcomes.push(outcome);
    }
    for (label, prefetch, consumers, stock) in [
        (
            "consume + ack, prefetch 1",
            1u16,
            args.concurrency,
            crate::stock(1, duration),
        ),
        (
            "consume + ack, prefetch 100",
            100,
            args.batch_concurrency,
            crate::stock(100, duration),
        ),
    ] {
        stock_up(&broker.url, &link.channel, stock, &body).await?;
        let mut workers = Vec::new();
        for k in 0..consumers {
            let link = open(&broker.url).await?;
            link.channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let consumer = link
                .channel
                .basic_consume(
                    QUEUE.into(),
                    format!("bench-{k}").into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            workers.push((link, consumer));
        }
        let label = format!("RabbitMQ {label}");
        let beam = (Some(broker.beam), None);
        let outcome = load::measure(
            &label,
            beam,
            workers,
            duration,
            move |(link, mut consumer)| async move {
                let result = consume(&mut consumer, prefetch as usize).await;
                ((link, consumer), result)
            },
        )
        .await;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// A channel on a connection of its own, as each HTTP worker has a connection of its own.
struct Link {
    channel: Channel,
    _connection: Connection,
}

async fn open(url: &str) -> Result<Link, String> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(|e| format!("cannot connect to RabbitMQ: {e}"))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    Ok(Link {
        channel,
        _connection: connection,
    })
}

/// The durable quorum queue; answers how many messages it holds.
async fn declare(channel: &Channel) -> Result<u32, String> {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(QUEUE.into(), QueueDeclareOptions::durable(), arguments)
        .await
        .map(|q| q.message_count())
        .map_err(|e| e.to_string())
}

async fn publishers_of(url: &str, count: usize) -> Result<Vec<Link>, String> {
    let mut links = Vec::with_capacity(count);
    for _ in 0..count {
        let link = open(url).await?;
        link.channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        links.push(link);
    }
    Ok(links)
}

/// Publishes `batch` persistent messages and waits until the broker confirms them all.
async fn publish(channel: &Channel, body: &[u8], batch: usize) -> Result<(), String> {
    for _ in 0..batch {
        channel
            .basic_publish(
                "".into(),
                QUEUE.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    channel
        .wait_for_confirms()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Receives up to `n` deliveries and acknowledges them with one ack; how many came. A consumer
/// that waits half a second for its first delivery has found the queue empty.
async fn consume(consumer: &mut Consumer, n: usize) -> Result<u64, String> {
    let mut last = None;
    let mut got = 0;
    while got < n {
        let wait = if got == 0 { 500 } else { 50 };
        match tokio::time::timeout(Duration::from_millis(wait), consumer.next()).await {
            Ok(Some(Ok(delivery))) => {
                got += 1;
                last = Some(delivery);
            }
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) | Err(_) => break,
        }
    }
    if let Some(delivery) = last {
        delivery
            .ack(BasicAckOptions { multiple: true })
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(got as u64)
}

/// Publishes until the queue holds at least `stock` messages, 100 per confirm on 8 channels.
async fn stock_up(url: &str, channel: &Channel, stock: usize, body: &[u8]) -> Result<(), String> {
    let have = declare(channel).await? as usize;
    let batches = stock.saturating_sub(have).div_ceil(100);
    let links = publishers_of(url, 8).await?;
    let mut tasks = Vec::new();
    for (k, link) in links.into_iter().enumerate() {
        let body = body.to_vec();
        tasks.push(tokio::spawn(async move {
            for _ in (k..batches).step_by(8) {
                publish(&link.channel, &body, 100).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
