//! The processes one benchmark run needs, all on this machine: a private redis-server, the
//! ferromq data plane, and the rsmq peer. Each is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proc(Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// CPU time a process has used so far (user + system), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: utime and
    // stime are the 12th and 13th of them (14th and 15th of the line), in clock ticks.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_micros(ticks * 1_000_000 / per_second))
}

/// The CPU time of the server and of redis-server over one measured stretch.
pub struct CpuMeter {
    pids: [Option<u32>; 2],
    start: [Option<Duration>; 2],
}

impl CpuMeter {
    /// Starts measuring the server (when it runs here) and redis-server (when there is one).
    pub fn start(server: Option<u32>, redis: Option<u32>) -> Self {
        let pids = [server, redis];
        CpuMeter {
            pids,
            start: pids.map(|pid| pid.and_then(cpu_time)),
        }
    }

    /// CPU µs per message of the server and of redis-server since the start.
    pub fn per_message(&self, messages: u64) -> Cpu {
        let used = |k: usize| -> Option<f64> {
            let now = cpu_time(self.pids[k]?)?;
            let spent = now.checked_sub(self.start[k]?)?;
            (messages > 0).then(|| spent.as_micros() as f64 / messages as f64)
        };
        Cpu {
            server: used(0),
            redis: used(1),
        }
    }
}

/// CPU µs per message: of the server process, and of its redis-server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub server: Option<f64>,
    pub redis: Option<f64>,
}

impl Cpu {
    /// "server + redis" µs for a table cell, or the server's alone where there is no Redis.
    pub fn cell(&self) -> String {
        match (self.server, self.redis) {
            (Some(s), Some(r)) => format!("{s:.1} + {r:.1}"),
            (Some(s), None) => format!("{s:.1}"),
            _ => "—".into(),
        }
    }

    /// Server and Redis together.
    pub fn total(&self) -> Option<f64> {
        Some(self.server? + self.redis.unwrap_or(0.0))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Redis {
    proc: Proc,
    pub socket: PathBuf,
}

impl Redis {
    /// A redis-server on a unix socket, its data in `dir`, persisted as ferromq's chart runs it:
    /// append-only file, fsync every second (RabbitMQ's rows are durable too).
    pub fn start(dir: &Path) -> Result<Self, String> {
        Self::start_on(dir, 0, None)
    }

    /// A primary with one replica, both as `start` runs them, on loopback ports (replication
    /// needs TCP) besides their sockets: (primary, replica).
    pub fn start_replicated(dir: &Path) -> Result<(Self, Self), String> {
        let (primary_dir, replica_dir) = (dir.join("primary"), dir.join("replica"));
        for d in [&primary_dir, &replica_dir] {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        let port = free_port();
        let primary = Self::start_on(&primary_dir, port, None)?;
        let replica = Self::start_on(&replica_dir, free_port(), Some(port))?;
        wait_for(Duration::from_secs(10), || {
            replica
                .cli(&["INFO", "replication"])
                .is_ok_and(|i| i.contains("master_link_status:up"))
        })?;
        Ok((primary, replica))
    }

    /// `port` 0: no TCP; `replica_of`: the port of the primary to follow.
    fn start_on(dir: &Path, port: u16, replica_of: Option<u16>) -> Result<Self, String> {
        let socket = dir.join("redis.sock");
        let mut command = Command::new("redis-server");
        if let Some(primary) = replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                // No automatic rewrite: its forked child would take a core from whichever
                // row runs then, unmeasured.
                "--auto-aof-rewrite-percentage",
                "0",
                "--dir",
            ])
            .arg(dir)
            .arg("--unixsocket")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let redis = Redis {
            proc: Proc(child),
            socket,
        };
        wait_for(Duration::from_secs(10), || {
            redis.cli(&["PING"]).is_ok_and(|o| o == "PONG")
        })?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Runs a redis-cli command and returns its trimmed output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .map_err(|e| format!("redis-cli: {e}"))?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `used_memory` from INFO memory, in bytes.
    pub fn used_memory(&self) -> Result<u64, String> {
        let info = self.cli(&["INFO", "memory"])?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| "no used_memory in INFO".to_string())
    }
}

/// `ferromq serve` from the same build as this benchmark.
pub fn start_ferromq(redis: &Redis, port: u16, token: &str) -> Result<Proc, String> {
    start_ferromq_with(redis, port, token, &[])
}

/// Like `start_ferromq`, with more environment variables.
pub fn start_ferromq_with(
    redis: &Redis,
    port: u16,
    token: &str,
    env: &[(&str, &str)],
) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    start_ferromq_binary(&exe.with_file_name("ferromq"), redis, port, token, env)
}

/// `ferromq serve` from a given binary (another build, for A/B comparisons).
pub fn start_ferromq_binary(
    ferromq: &Path,
    redis: &Redis,
    port: u16,
    token: &str,
    env: &[(&str, &str)],
) -> Result<Proc, String> {
    let child = Command::new(ferromq)
        .arg("serve")
        .env("REDIS_URL", redis.url())
        .env("FERROMQ_TOKENS", format!("{token}=*"))
        .env("FERROMQ_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", ferromq.display()))?;
    let proc = Proc(child);
    wait_for_http(port)?;
    Ok(proc)
}

/// The floor (`ferromq-floor`, built beside this benchmark) over the same Redis.
pub fn start_floor(redis: &Redis, port: u16, token: &str) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let floor = exe.with_file_name("ferromq-floor");
    let child = Command::new(&floor)
        .args(["--redis", &redis.url(), "--token", token])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", floor.display()))?;
    let proc = Proc(child);
    wait_for_http(port)?;
    Ok(proc)
}

/// The rsmq peer: a small REST front (bench/peer/server.js) over the same Redis.
pub fn start_peer(peer_dir: &Path, redis: &Redis, port: u16) -> Result<Proc, String> {
    let child = Command::new("node")
        .arg(peer_dir.join("server.js"))
        .env("REDIS_SOCKET", &redis.socket)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the rsmq peer (node): {e}"))?;
    let proc = Proc(child);
    wait_for_http(port)?;
    Ok(proc)
}

fn wait_for_http(port: u16) -> Result<(), String> {
    wait_for(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("a benchmark process did not come up".into())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_080)
}
