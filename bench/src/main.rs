//! `ferromq-bench`: the load generator behind `make bench`. In one run on this machine it
//! measures ferromq's REST data plane, the floor (`ferromq-floor`: the same HTTP work over the
//! least Redis work), the Redis limit (redis-benchmark, pipelined) and a peer doing the same job
//! (rsmq behind a small REST front), all over the same redis-server, then RabbitMQ with a quorum
//! queue, and prints one table (also written to BENCHMARKS.md).

mod limits;
mod load;
mod procs;
mod rabbitmq;
mod report;
mod subscriber;

use clap::Parser;
use load::{Outcome, QueueApi};
use procs::{Cpu, CpuMeter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
#[command(
    about = "Benchmarks ferromq against a floor server, the rsmq peer, RabbitMQ and the Redis limit"
)]
pub struct Args {
    /// Seconds each throughput scenario runs.
    #[arg(long, default_value_t = 8)]
    duration: u64,
    /// Concurrent connections for single-message scenarios.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Concurrent connections for 100-message batches.
    #[arg(long, default_value_t = 16)]
    batch_concurrency: usize,
    /// Message body size in bytes for the throughput scenarios.
    #[arg(long, default_value_t = 256)]
    body_size: usize,
    /// Long-poll wake-ups to time.
    #[arg(long, default_value_t = 300)]
    wakeups: usize,
    /// Messages stored for the memory measurement (1 KB each).
    #[arg(long, default_value_t = 100_000)]
    memory_messages: usize,
    /// Directory of the rsmq peer (server.js with node_modules); skip the peer when absent.
    #[arg(long, default_value = "bench/peer")]
    peer_dir: PathBuf,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    output: PathBuf,
    /// Run only the ferromq scenario on this queue (post-1, post-100, cycle-1, cycle-100,
    /// push-fast, push-slow, push-limited) and
    /// print the server's pid, for profiling; nothing else is measured or written.
    #[arg(long)]
    only: Option<String>,
    /// With --only: drive the server already listening at this base URL (the peer, say)
    /// instead of starting ferromq.
    #[arg(long, requires = "only")]
    target: Option<String>,
    /// Another ferromq binary to compare with, as LABEL=PATH (a build of an earlier commit,
    /// say); repeat it for several, oldest first. Only ferromq's scenarios are measured then,
    /// every build in turn scenario by scenario, this build last, and the comparison is
    /// appended to --ab-output.
    #[arg(long = "baseline", value_name = "LABEL=PATH")]
    baselines: Vec<String>,
    /// With --baseline: rounds over every scenario and build; each rate reported is the
    /// median of the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// What this build is, for the comparison.
    #[arg(long, default_value = "this build")]
    label: String,
    /// Where comparisons are appended.
    #[arg(long, default_value = "BENCHMARKS-AB.md")]
    ab_output: PathBuf,
}

const TOKEN: &str = "bench-token";
const PROJECT: &str = "bench";

/// One line of the report.
pub struct Row {
    pub scenario: String,
    pub ferromq: Option<Outcome>,
    pub floor: Option<Outcome>,
    pub peer: Option<Outcome>,
    /// RabbitMQ's nearest scenario: what it is, and its outcome.
    pub rabbitmq: Option<(&'static str, Outcome)>,
    /// The limit in messages/s and what it is.
    pub limit: Option<(f64, &'static str)>,
}

pub struct Results {
    pub args: Args,
    pub rows: Vec<Row>,
    pub wake: Option<Outcome>,
    pub memory_per_message: Option<f64>,
}

/// glibc's allocator showed up at a fifth of the data plane's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if !args.baselines.is_empty() {
        match compare(&args).await {
            Ok(text) => {
                println!("{text}");
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&args.ab_output)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
                if let Err(e) = appended {
                    eprintln!("cannot write {}: {e}", args.ab_output.display());
                    std::process::exit(1);
                }
            }
            Err(err) => {
                eprintln!("ferromq-bench: {err}");
                std::process::exit(1);
            }
        }
        return;
    }
    match run(args).await {
        Ok(results) => {
            let text = report::render(&results);
            println!("{text}");
            if let Err(e) = std::fs::write(&results.args.output, &text) {
                eprintln!("cannot write {}: {e}", results.args.output.display());
                std::process::exit(1);
            }
            eprintln!("written to {}", results.args.output.display());
        }
        Err(err) => {
            eprintln!("ferromq-bench: {err}");
            std::process::exit(1);
        }
    }
}

pub fn http_client(connections: usize) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .build()
        .expect("http client")
}

async fn run(args: Args) -> Result<Results, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let redis = procs::Redis::start(dir.path())?;
    let duration = Duration::from_secs(args.duration);

    if let Some(only) = &args.only {
        let (base, server) = match &args.target {
            Some(target) => (target.clone(), None),
            None => {
                let port = procs::free_port();
                let server = procs::start_ferromq(&redis, port, TOKEN)?;
                eprintln!("ferromq pid {}", server.pid());
                (format!("http://127.0.0.1:{port}"), Some(server))
            }
        };
        let pids = (server.as_ref().map(procs::Proc::pid), redis.pid());
        match only.as_str() {
            "push-fast" => {
                drop(push_scenario(&args, &base, Duration::ZERO, 200_000, false, pids).await?)
            }
            "push-slow" => drop(
                push_scenario(&args, &base, Duration::from_millis(50), 5_000, false, pids).await?,
            ),
            "push-limited" => drop(limited_push(&args, &base, pids).await?),
            _ => drop(scenarios(&args, &base, duration, Some(only), pids).await?),
        }
        return Err("--only: done (nothing written)".into());
    }

    eprintln!("measuring the Redis limit with redis-benchmark...");
    let limit = limits::measure(&redis, 2_000_000)?;

    eprintln!("measuring ferromq...");
    let port = procs::free_port();
    let server = procs::start_ferromq(&redis, port, TOKEN)?;
    let base = format!("http://127.0.0.1:{port}");
    let ferromq = scenarios(
        &args,
        &base,
        duration,
        None,
        (Some(server.pid()), redis.pid()),
    )
    .await?;
    let wake = Some(wake_latency(&base, args.wakeups).await?);
    let mut push_rows = Vec::new();
    for (scenario, pause, count) in [
        (
            "push to a subscriber answering 200 at once",
            Duration::ZERO,
            20_000,
        ),
        (
            "push to a subscriber answering after 50 ms",
            Duration::from_millis(50),
            3_000,
        ),
    ] {
        let pids = (Some(server.pid()), redis.pid());
        let (ours, limit) = push_scenario(&args, &base, pause, count, true, pids).await?;
        push_rows.push(Row {
            scenario: scenario.to_string(),
            ferromq: Some(ours),
            floor: None,
            peer: None,
            rabbitmq: None,
            limit: limit.map(|l| (l.rate(), "raw HTTP loop")),
        });
    }
    push_rows.extend(
        limited_push(&args, &base, (Some(server.pid()), redis.pid()))
            .await?
            .into_iter()
            .map(|(scenario, ours, limit)| Row {
                scenario,
                ferromq: Some(ours),
                floor: None,
                peer: None,
                rabbitmq: None,
                limit,
            }),
    );
    let memory_per_message = Some(memory(&redis, &base, args.memory_messages).await?);
    drop(server);
    redis.cli(&["FLUSHALL"])?;
    let replica_rows = replica_acks(&args, dir.path(), duration).await?;

    eprintln!("measuring the floor...");
    let port = procs::free_port();
    let floor_server = procs::start_floor(&redis, port, TOKEN)?;
    let base = format!("http://127.0.0.1:{port}");
    let pids = (Some(floor_server.pid()), redis.pid());
    let floor = scenarios(&args, &base, duration, None, pids).await?;
    drop(floor_server);
    redis.cli(&["FLUSHALL"])?;

    let peer = if args.peer_dir.join("node_modules").exists() {
        eprintln!("measuring the rsmq peer...");
        let port = procs::free_port();
        let peer = procs::start_peer(&args.peer_dir, &redis, port)?;
        let base = format!("http://127.0.0.1:{port}");
        Some(
            scenarios(
                &args,
                &base,
                duration,
                None,
                (Some(peer.pid()), redis.pid()),
            )
            .await?,
        )
    } else {
        eprintln!(
            "no rsmq peer at {} (run `make bench`): peer rows left out",
            args.peer_dir.display()
        );
        None
    };
    drop(redis);

    let rabbitmq = if rabbitmq::installed() {
        eprintln!("starting RabbitMQ...");
        let measured = match rabbitmq::Broker::start(dir.path()) {
            Ok(broker) => {
                eprintln!("measuring RabbitMQ...");
                rabbitmq::scenarios(&broker, &args, duration).await
            }
            Err(err) => Err(err),
        };
        // What was measured of the others still makes a report.
        measured
            .inspect_err(|err| eprintln!("RabbitMQ rows left out: {err}"))
            .ok()
    } else {
        eprintln!("no rabbitmq-server (run `make bench`): RabbitMQ rows left out");
        None
    };

    let names = [
        (
            "post, 1 message per request",
            Some((limit.lpush, "LPUSH")),
            "publish 1 per confirm",
        ),
        (
            "post, 100 messages per request",
            Some((limit.lpush, "LPUSH")),
            "publish 100 per confirm",
        ),
        (
            "reserve + delete, n = 1",
            Some((limit.rpop, "RPOP")),
            "consume + ack, prefetch 1",
        ),
        (
            "reserve + delete, n = 100",
            Some((limit.rpop, "RPOP")),
            "consume + ack, prefetch 100, one ack per 100",
        ),
    ];
    let mut floor = floor.into_iter();
    let mut peer = peer.map(|p| p.into_iter());
    let mut rabbitmq = rabbitmq.map(|p| p.into_iter());
    let rows = names
        .into_iter()
        .zip(ferromq)
        .map(|((scenario, limit, theirs), ours)| Row {
            scenario: scenario.to_string(),
            ferromq: Some(ours),
            floor: floor.next(),
            peer: peer.as_mut().and_then(Iterator::next),
            rabbitmq: rabbitmq
                .as_mut()
                .and_then(Iterator::next)
                .map(|o| (theirs, o)),
            limit,
        })
        .chain(std::iter::once(Row {
            scenario: "EVALSHA of a trivial script (the cost of one script call)".into(),
            ferromq: None,
            floor: None,
            peer: None,
            rabbitmq: None,
            limit: Some((limit.evalsha, "EVALSHA")),
        }))
        .chain(push_rows)
        .chain(replica_rows)
        .collect();
    Ok(Results {
        args,
        rows,
        wake,
        memory_per_message,
    })
}

/// Several builds serving the same redis-server: each scenario runs on every build in turn,
/// so drift in the machine's state hits all alike. Returns a markdown section: messages/s per
/// build, and the ratio to the build before it (what that change gained).
async fn compare(args: &Args) -> Result<String, String> {
    let mut builds = Vec::new();
    for spec in &args.baselines {
        let (label, path) = spec
            .rsplit_once('=')
            .ok_or_else(|| format!("--baseline {spec:?}: expected LABEL=PATH"))?;
        builds.push((label.to_string(), PathBuf::from(path)));
    }
    let this = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("ferromq");
    builds.push((args.label.clone(), this));

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let redis = procs::Redis::start(dir.path())?;
    let duration = Duration::from_secs(args.duration);
    let scenarios_compared = [
        ("post-1", "post ×1"),
        ("post-100", "post ×100"),
        ("cycle-1", "reserve + delete, n = 1"),
        ("cycle-100", "reserve + delete, n = 100"),
        ("push-fast", "push, immediate subscriber"),
    ];
    // samples[build][scenario]: one rate (and CPU per message) per round, none where the build
    // cannot run the scenario (push before push queues existed).
    let mut samples: Vec<Vec<Vec<(f64, Cpu)>>> =
        vec![vec![Vec::new(); scenarios_compared.len()]; builds.len()];
    // Rounds, each over every scenario and build: drift over the run hits every build alike.
    for round in 1..=args.rounds {
        for (s, (scenario, _)) in scenarios_compared.iter().enumerate() {
            // One server at a time: two would push from the same Redis. Each round starts
            // with another build, so no build always runs first.
            for turn in 0..builds.len() {
                let k = (turn + round) % builds.len();
                let (label, binary) = &builds[k];
                eprintln!("round {round}: {scenario} on {label}...");
                let port = procs::free_port();
                let server = procs::start_ferromq_binary(binary, &redis, port, TOKEN, &[])?;
                let base = format!("http://127.0.0.1:{port}");
                let pids = (Some(server.pid()), redis.pid());
                let measured = if *scenario == "push-fast" {
                    push_scenario(args, &base, Duration::ZERO, 20_000, false, pids)
                        .await
                        .map(|(ours, _)| (ours.rate(), ours.cpu))
                } else {
                    scenarios(args, &base, duration, Some(scenario), pids)
                        .await
                        .map(|o| {
                            o.first()
                                .map_or((0.0, Cpu::default()), |o| (o.rate(), o.cpu))
                        })
                };
                drop(server);
                redis.cli(&["FLUSHALL"])?;
                match measured {
                    Ok(sample) => samples[k][s].push(sample),
                    Err(e) => eprintln!("  {label}: {e}"),
                }
            }
        }
    }
    let rates: Vec<Vec<Option<f64>>> = samples
        .iter()
        .map(|build| {
            build
                .iter()
                .map(|runs| median(&runs.iter().map(|(rate, _)| *rate).collect::<Vec<_>>()))
                .collect()
        })
        .collect();
    // The median CPU per message of each process over the rounds.
    let cpu: Vec<Vec<Cpu>> = samples
        .iter()
        .map(|build| {
            build
                .iter()
                .map(|runs| {
                    let of = |pick: fn(&Cpu) -> Option<f64>| {
                        median(
                            &runs
                                .iter()
                                .filter_map(|(_, cpu)| pick(cpu))
                                .collect::<Vec<_>>(),
                        )
                    };
                    Cpu {
                        server: of(|c| c.server),
                        redis: of(|c| c.redis),
                    }
                })
                .collect()
        })
        .collect();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut text = format!(
        "\n## {}\n\nOne run of `ferromq-bench --baseline` on {cores} cores: the builds below serve the \
         same redis-server, one at a time, every build in turn scenario by scenario, in {} \
         rounds of {} s per scenario. Messages/s, the median of the rounds, and in brackets the \
         ratio to the build above (what that change gained); then the CPU each message cost the \
         server and redis-server (µs, medians, from /proc: this holds where rates are noisy); — \
         where a build cannot run the scenario.\n\n| build |",
        builds
            .iter()
            .map(|(label, _)| label.split(' ').next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" → "),
        args.rounds,
        args.duration,
    );
    for (_, name) in scenarios_compared {
        text.push_str(&format!(" {name} |"));
    }
    text.push_str(&format!(
        "\n|---|{}\n",
        "---|".repeat(scenarios_compared.len())
    ));
    for (k, (label, _)) in builds.iter().enumerate() {
        text.push_str(&format!("| {label} |"));
        for (s, rate) in rates[k].iter().enumerate() {
            let before = k.checked_sub(1).and_then(|p| rates[p][s]);
            let cost = cpu[k][s].cell();
            let cell = match (*rate, before) {
                (Some(rate), Some(before)) if before > 0.0 => {
                    format!(" {rate:.0} ({:.2}×), {cost} µs |", rate / before)
                }
                (Some(rate), _) => format!(" {rate:.0}, {cost} µs |"),
                (None, _) => " — |".to_string(),
            };
            text.push_str(&cell);
        }
        text.push('\n');
    }
    Ok(text)
}

/// The median of some rates; None when there are none.
fn median(rates: &[f64]) -> Option<f64> {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The four throughput scenarios against one target, each on a queue of its own. The CPU of
/// `server` (when it runs on this machine) and of `redis` is measured over each run.
/// The single-message rows again on a primary with one local replica, every change confirmed
/// by it (`FERROMQ_MIN_REPLICAS_ACK=1`): what durability across the loss of the primary costs.
async fn replica_acks(args: &Args, dir: &Path, duration: Duration) -> Result<Vec<Row>, String> {
    eprintln!("measuring ferromq with replica acknowledgements...");
    let (primary, _replica) = procs::Redis::start_replicated(dir)?;
    let port = procs::free_port();
    let env = [("FERROMQ_MIN_REPLICAS_ACK", "1")];
    let server = procs::start_ferromq_with(&primary, port, TOKEN, &env)?;
    let base = format!("http://127.0.0.1:{port}");
    let mut rows = Vec::new();
    for (only, scenario) in [
        (
            "post-1",
            "post, 1 message per request, confirmed by a replica",
        ),
        ("cycle-1", "reserve + delete, n = 1, confirmed by a replica"),
    ] {
        let pids = (Some(server.pid()), primary.pid());
        let outcome = scenarios(args, &base, duration, Some(only), pids).await?;
        rows.push(Row {
            scenario: scenario.to_string(),
            ferromq: outcome.into_iter().next(),
            floor: None,
            peer: None,
            rabbitmq: None,
            limit: None,
        });
    }
    Ok(rows)
}

async fn scenarios(
    args: &Args,
    base: &str,
    duration: Duration,
    only: Option<&str>,
    (server, redis): (Option<u32>, u32),
) -> Result<Vec<Outcome>, String> {
    let skip = |queue: &str| only.is_some_and(|o| o != queue);
    let api = |queue: &str| QueueApi::new(base, PROJECT, queue, TOKEN);
    let mut outcomes = Vec::new();

    for (queue, batch, concurrency) in [
        ("post-1", 1, args.concurrency),
        ("post-100", 100, args.batch_concurrency),
    ] {
        if skip(queue) {
            continue;
        }
        let api = api(queue)?;
        let mut connections = api.connect_many(concurrency).await?;
        api.create(&mut connections[0]).await?;
        let body = load::post_body(batch, args.body_size);
        let pids = (server, Some(redis));
        let outcome = load::measure(queue, pids, connections, duration, {
            let api = api.clone();
            move |mut conn| {
                let (api, body) = (api.clone(), body.clone());
                async move {
                    let result = api.post(&mut conn, body).await.map(|_| batch as u64);
                    (conn, result)
                }
            }
        })
        .await;
        clear(&api).await;
        outcomes.push(outcome);
    }

    for (queue, n, concurrency) in [
        ("cycle-1", 1usize, args.concurrency),
        ("cycle-100", 100, args.batch_concurrency),
    ] {
        if skip(queue) {
            continue;
        }
        let api = api(queue)?;
        let mut connections = api.connect_many(concurrency).await?;
        api.create(&mut connections[0]).await?;
        let stock = stock(n, duration);
        let filled = Instant::now();
        load::fill(&api, stock, args.body_size).await?;
        eprintln!(
            "  {queue}: {stock} messages stocked in {:.1}s",
            filled.elapsed().as_secs_f64()
        );
        let pids = (server, Some(redis));
        let outcome = load::measure(queue, pids, connections, duration, {
            let api = api.clone();
            move |mut conn| {
                let api = api.clone();
                async move {
                    let result = cycle(&api, &mut conn, n).await;
                    (conn, result)
                }
            }
        })
        .await;
        clear(&api).await;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Messages to stock a queue with for `duration` of consuming `n` at a time: more than this
/// machine moves (up to 25,000/s one at a time, 100,000/s in hundreds), so no run runs dry.
pub fn stock(n: usize, duration: Duration) -> usize {
    let rate = if n == 1 { 25_000 } else { 100_000 };
    (rate * duration.as_secs().max(1) as usize).max(10_000)
}

/// Reserves up to `n` and deletes what came; how many that was.
async fn cycle(api: &QueueApi, conn: &mut load::Connection, n: usize) -> Result<u64, String> {
    let reserved = api.reserve(conn, n, 0).await?;
    match reserved.len() {
        0 => Ok(0),
        1 => api
            .delete(conn, &reserved[0].0, &reserved[0].1)
            .await
            .map(|_| 1),
        k => api.delete_many(conn, &reserved).await.map(|_| k as u64),
    }
}

/// Empties a scenario's queue, so the next scenario starts from the same Redis.
async fn clear(api: &QueueApi) {
    if let Ok(mut conn) = api.connect().await {
        let _ = api.clear(&mut conn).await;
    }
}

/// Creates (or sets) `queue` with `settings` over REST.
async fn put_queue(
    http: &reqwest::Client,
    base: &str,
    queue: &str,
    settings: &serde_json::Value,
) -> Result<(), String> {
    let response = http
        .put(format!("{base}/3/projects/{PROJECT}/queues/{queue}"))
        .header("Authorization", format!("OAuth {TOKEN}"))
        .body(settings.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("cannot create {queue}: {}", response.status()));
    }
    Ok(())
}

/// The rate a subscriber limited with `max_per_second` is held to.
const LIMITED_RATE: f64 = 500.0;

/// A push scenario's rows: (scenario, outcome, limit).
type PushRows = Vec<(String, Outcome, Option<(f64, &'static str)>)>;

/// One multicast queue, two subscribers answering 200 at once, first with no limit (the
/// baseline), then with one limited to `LIMITED_RATE` deliveries a second: the unlimited one
/// must go as fast as in the baseline, the limited one at its rate (shown as the limit).
async fn limited_push(
    args: &Args,
    base: &str,
    pids: (Option<u32>, u32),
) -> Result<PushRows, String> {
    let mut rows = two_subscribers(args, base, pids, None).await?;
    rows.extend(two_subscribers(args, base, pids, Some(LIMITED_RATE)).await?);
    Ok(rows)
}

async fn two_subscribers(
    args: &Args,
    base: &str,
    (server, redis): (Option<u32>, u32),
    rate: Option<f64>,
) -> Result<PushRows, String> {
    let count = (LIMITED_RATE as usize) * 8;
    let free = subscriber::Subscriber::start(Duration::ZERO).await?;
    let limited = subscriber::Subscriber::start(Duration::ZERO).await?;
    let queue = if rate.is_some() {
        "push-limited"
    } else {
        "push-two"
    };
    let mut second = serde_json::json!({"name": "limited", "url": limited.url});
    if let Some(rate) = rate {
        second["max_per_second"] = rate.into();
    }
    let settings = serde_json::json!({"queue": {"type": "multicast", "push": {"subscribers": [
        {"name": "free", "url": free.url}, second,
    ]}}});
    put_queue(&http_client(1), base, queue, &settings).await?;
    let api = QueueApi::new(base, PROJECT, queue, TOKEN)?;
    api.post(
        &mut api.connect().await?,
        load::post_body(1, args.body_size),
    )
    .await?;
    if !limited.wait_for(1, Duration::from_secs(10)).await {
        return Err(format!("{queue}: the warm-up message was not delivered"));
    }
    // Both subscribers have had the warm-up message; the limit's slot after it is taken.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let meter = CpuMeter::start(server, Some(redis));
    load::fill(&api, count, args.body_size).await?;
    let all = count as u64 + 1;
    if !free.wait_for(all, Duration::from_secs(60)).await {
        return Err(format!(
            "{queue}: the unlimited subscriber got {}",
            free.received()
        ));
    }
    let free_took = started.elapsed();
    let limit = Duration::from_secs_f64(count as f64 / rate.unwrap_or(LIMITED_RATE) * 2.0 + 10.0);
    if !limited.wait_for(all, limit).await {
        return Err(format!(
            "{queue}: the limited subscriber got {}",
            limited.received()
        ));
    }
    let limited_took = started.elapsed();
    let cpu = meter.per_message(2 * count as u64);
    let outcome = |elapsed| Outcome {
        messages: count as u64,
        elapsed,
        errors: 0,
        latency: hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .expect("histogram"),
        cpu,
    };
    let (free_row, limited_row) = (outcome(free_took), outcome(limited_took));
    eprintln!(
        "  {queue}: first subscriber {:.0} msgs/s, second {:.0} msgs/s",
        free_row.rate(),
        limited_row.rate()
    );
    Ok(match rate {
        None => vec![(
            "push, 2 subscribers (multicast), neither limited".to_string(),
            free_row,
            None,
        )],
        Some(rate) => vec![
            (
                format!("push, 2 subscribers, one limited to {rate:.0}/s: the unlimited one"),
                free_row,
                None,
            ),
            (
                format!("push, 2 subscribers, one limited to {rate:.0}/s: the limited one"),
                limited_row,
                Some((rate, "max_per_second")),
            ),
        ],
    })
}

/// Push throughput of one ferromq process to one subscriber: post `count` messages to a push
/// queue and time until the subscriber has them all, with the CPU each message cost the server
/// and redis-server (posting included). The limit is a raw HTTP loop at the push concurrency
/// against the same subscriber.
async fn push_scenario(
    args: &Args,
    base: &str,
    pause: Duration,
    count: usize,
    with_limit: bool,
    (server, redis): (Option<u32>, u32),
) -> Result<(Outcome, Option<Outcome>), String> {
    let sub = subscriber::Subscriber::start(pause).await?;
    let http = http_client(8);
    let queue = if pause.is_zero() {
        "push-fast"
    } else {
        "push-slow"
    };
    let api = QueueApi::new(base, PROJECT, queue, TOKEN)?;
    let settings = serde_json::json!({"queue": {"type": "multicast", "push": {"subscribers": [{"name": "bench", "url": sub.url}]}}});
    put_queue(&http, base, queue, &settings).await?;
    // Warm up: the workers pick a new push queue up within a second; time from then on.
    api.post(
        &mut api.connect().await?,
        load::post_body(1, args.body_size),
    )
    .await?;
    if !sub.wait_for(1, Duration::from_secs(10)).await {
        return Err("push: the warm-up message was not delivered".into());
    }
    let started = Instant::now();
    let meter = CpuMeter::start(server, Some(redis));
    load::fill(&api, count, args.body_size).await?;
    if !sub
        .wait_for(count as u64 + 1, Duration::from_secs(120))
        .await
    {
        return Err(format!(
            "push: only {} of {count} delivered",
            sub.received()
        ));
    }
    let elapsed = started.elapsed();
    // No per-message latency here: the rate is what this scenario measures.
    let latency =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let ours = Outcome {
        messages: count as u64,
        elapsed,
        errors: 0,
        latency,
        cpu: meter.per_message(count as u64),
    };
    eprintln!(
        "  {queue}: {:.0} msgs/s, CPU µs/msg server + redis {}",
        ours.rate(),
        ours.cpu.cell()
    );
    if !with_limit {
        return Ok((ours, None));
    }
    let body = "x".repeat(args.body_size);
    let raw = subscriber::raw_loop(
        &sub.url,
        &body,
        PUSH_CONCURRENCY,
        Duration::from_secs(args.duration.min(5)),
    )
    .await;
    eprintln!("  {queue} raw HTTP loop: {:.0} msgs/s", raw.rate());
    Ok((ours, Some(raw)))
}

/// Deliveries in flight per queue in `ferromq serve` (its default), and so in the raw loop.
const PUSH_CONCURRENCY: usize = 32;

/// Time from the moment a post is sent to the moment a waiting long poll returns the message.
async fn wake_latency(base: &str, rounds: usize) -> Result<Outcome, String> {
    let api = QueueApi::new(base, PROJECT, "wake", TOKEN)?;
    let mut poster = api.connect().await?;
    let mut waiter_conn = Some(api.connect().await?);
    api.create(&mut poster).await?;
    let body = load::post_body(1, 64);
    let mut latency =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let started = Instant::now();
    for _ in 0..rounds {
        let waiter = api.clone();
        let mut conn = waiter_conn.take().ok_or("no waiting connection")?;
        let waiting = tokio::spawn(async move {
            let got = waiter.reserve(&mut conn, 1, 5).await;
            (got, Instant::now(), conn)
        });
        // Let the waiter reach the server and find the queue empty.
        tokio::time::sleep(Duration::from_millis(15)).await;
        let sent = Instant::now();
        api.post(&mut poster, body.clone()).await?;
        let (got, returned, conn) = waiting.await.map_err(|e| e.to_string())?;
        waiter_conn = Some(conn);
        let got = got?;
        let (id, rid) = got.first().ok_or("a long poll returned nothing")?;
        let _ = latency.record(returned.duration_since(sent).as_micros().max(1) as u64);
        api.delete(&mut poster, id, rid).await?;
    }
    eprintln!(
        "  long-poll wake p50 {:.2} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0
    );
    Ok(Outcome {
        messages: rounds as u64,
        elapsed: started.elapsed(),
        errors: 0,
        latency,
        cpu: Default::default(),
    })
}

/// Redis memory per stored 1 KB message: INFO memory before and after storing `count` of them.
async fn memory(redis: &procs::Redis, base: &str, count: usize) -> Result<f64, String> {
    let api = QueueApi::new(base, PROJECT, "memory", TOKEN)?;
    api.create(&mut api.connect().await?).await?;
    let before = redis.used_memory()?;
    load::fill(&api, count, 1024).await?;
    let after = redis.used_memory()?;
    let per_message = (after.saturating_sub(before)) as f64 / count as f64;
    eprintln!("  memory: {per_message:.0} bytes per 1 KB message");
    Ok(per_message)
}
