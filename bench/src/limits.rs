//! The limits ferromq is measured against: what redis-benchmark gets from the same
//! redis-server with pipelining (messages/s when a message is one LPUSH or one RPOP).

use crate::procs::Redis;
use std::process::Command;

/// Requests per second of each test redis-benchmark ran, by test name.
fn redis_benchmark(
    redis: &Redis,
    requests: u64,
    args: &[&str],
) -> Result<Vec<(String, f64)>, String> {
    let out = Command::new("redis-benchmark")
        .arg("-s")
        .arg(&redis.socket)
        .args(["-n", &requests.to_string(), "-P", "64", "-c", "32", "--csv"])
        .args(args)
        .output()
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(String, f64)> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(',').map(|c| c.trim_matches('"')).collect();
            let rps = cells.get(1)?.parse::<f64>().ok()?;
            Some((cells[0].to_string(), rps))
        })
        .collect();
    if rows.is_empty() {
        return Err(format!("redis-benchmark printed no results: {text}"));
    }
    Ok(rows)
}

pub struct RedisLimits {
    pub lpush: f64,
    pub rpop: f64,
    pub evalsha: f64,
}

pub fn measure(redis: &Redis, requests: u64) -> Result<RedisLimits, String> {
    let rows = redis_benchmark(redis, requests, &["-t", "lpush,rpop"])?;
    let find = |name: &str| {
        rows.iter()
            .find(|(n, _)| n.starts_with(name))
            .map(|(_, r)| *r)
    };
    let lpush = find("LPUSH").ok_or("no LPUSH result")?;
    let rpop = find("RPOP").ok_or("no RPOP result")?;
    let sha = redis.cli(&["SCRIPT", "LOAD", "return 1"])?;
    let evalsha = redis_benchmark(redis, requests, &["EVALSHA", &sha, "0"])?[0].1;
    redis.cli(&["FLUSHALL"])?;
    Ok(RedisLimits {
        lpush,
        rpop,
        evalsha,
    })
}
