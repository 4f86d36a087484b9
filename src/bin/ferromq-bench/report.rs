//! The report: one table of ferromq, the limit and the peer side by side, the targets, and the
//! machine it ran on.

use crate::{Results, Row};
use load_fmt::*;
use std::fmt::Write;

mod load_fmt {
    use crate::load::Outcome;

    pub fn rate(o: &Option<Outcome>) -> String {
        o.as_ref()
            .map_or("—".into(), |o| format!("{:.0}", o.rate()))
    }

    pub fn latency(o: &Option<Outcome>) -> String {
        o.as_ref()
            .filter(|o| !o.latency.is_empty())
            .map_or("—".into(), |o| {
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    o.percentile_ms(0.5),
                    o.percentile_ms(0.99),
                    o.percentile_ms(0.999)
                )
            })
    }

    /// CPU µs per message, server + redis-server.
    pub fn cpu(o: &Option<Outcome>) -> String {
        o.as_ref().map_or("—".into(), |o| o.cpu.cell())
    }

    pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "—".into(),
        }
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores ({model})")
}

fn row_line(row: &Row) -> String {
    let ours = row.ferromq.as_ref().map(|o| o.rate());
    let limit = row.limit.map(|(l, _)| l);
    let peer = row.peer.as_ref().map(|o| o.rate());
    let limit_text = row
        .limit
        .map_or("—".into(), |(l, what)| format!("{l:.0} ({what})"));
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        row.scenario,
        rate(&row.ferromq),
        latency(&row.ferromq),
        cpu(&row.ferromq),
        limit_text,
        rate(&row.peer),
        latency(&row.peer),
        cpu(&row.peer),
        ratio(ours, limit),
        ratio(ours, peer),
    )
}

pub fn render(results: &Results) -> String {
    let a = &results.args;
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Made by `make bench` on {}: redis-server, ferromq (or the peer) and the load generator share the machine. \
         Messages of {} bytes; {} connections for single messages, {} for batches of 100; {} s per scenario. \
         Latency is per request (per reserve + delete cycle for the cycles), in milliseconds. \
         CPU is what each message cost the server process and its redis-server, in µs, from \
         /proc over the scenario's run (this holds on a noisy machine where rates do not). \
         Push rows time one process delivering a batch of posted messages to one local subscriber.\n",
        machine(),
        a.body_size,
        a.concurrency,
        a.batch_concurrency,
        a.duration
    );
    let _ = writeln!(
        out,
        "- **ferromq**: the REST data plane (`ferromq serve`) over HTTP/1.1 keep-alive."
    );
    let _ = writeln!(
        out,
        "- **limit**: `redis-benchmark` on the same redis-server, 64-deep pipelines, one message = one LPUSH or RPOP."
    );
    let _ = writeln!(
        out,
        "- **peer**: rsmq (npm) behind a small Node REST front with the same routes (`bench/peer/server.js`), same load generator.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | ferromq msgs/s | ferromq p50 / p99 / p999 ms | ferromq CPU µs/msg (server + redis) | limit msgs/s | peer msgs/s | peer p50 / p99 / p999 ms | peer CPU µs/msg (server + redis) | ferromq / limit | ferromq / peer |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for row in &results.rows {
        let _ = writeln!(out, "{}", row_line(row));
    }
    if let Some(w) = &results.wake {
        let _ = writeln!(
            out,
            "| long-poll wake (post sent → waiting reserve returns), {} rounds | — | {:.2} / {:.2} / {:.2} | — | — | — (no long poll) | — | — | — | — |",
            w.messages,
            w.percentile_ms(0.5),
            w.percentile_ms(0.99),
            w.percentile_ms(0.999)
        );
    }
    // Failed requests are not counted in the rates; say so where there were any.
    for row in &results.rows {
        let failed = |o: &Option<crate::load::Outcome>| o.as_ref().map_or(0, |o| o.errors);
        let (ours, peer) = (failed(&row.ferromq), failed(&row.peer));
        if ours + peer > 0 {
            let _ = writeln!(
                out,
                "\nFailed requests in \"{}\" (not counted above): ferromq {ours}, peer {peer}.",
                row.scenario
            );
        }
    }
    if let Some(m) = results.memory_per_message {
        let _ = writeln!(
            out,
            "\nRedis memory per stored 1 KB message: **{m:.0} bytes** ({:.2} KB; `INFO memory` before and after {} messages).",
            m / 1024.0,
            a.memory_messages
        );
    }
    let _ = writeln!(out, "\n## Targets\n");
    for line in targets(results) {
        let _ = writeln!(out, "- {line}");
    }
    out
}

fn targets(results: &Results) -> Vec<String> {
    let mut lines = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let find = |prefix: &str| results.rows.iter().find(|r| r.scenario.starts_with(prefix));
    if let Some(row) = find("post, 100")
        && let (Some(o), Some((limit, _))) = (&row.ferromq, row.limit)
    {
        let share = o.rate() / limit;
        lines.push(format!(
            "batched post ≥ 40 % of pipelined LPUSH: {:.0} % — {}",
            share * 100.0,
            verdict(share >= 0.4)
        ));
    }
    if let Some(row) = find("reserve + delete, n = 1")
        && let (Some(o), Some(p)) = (&row.ferromq, &row.peer)
    {
        let x = o.rate() / p.rate();
        lines.push(format!(
            "reserve + delete ≥ 3 × rsmq (n = 1): {x:.2} × — {}",
            verdict(x >= 3.0)
        ));
    }
    if let Some(row) = find("post, 1 ")
        && let Some(o) = &row.ferromq
    {
        let p99 = o.percentile_ms(0.99);
        lines.push(format!(
            "single-message post p99 < 5 ms at {} connections: {p99:.2} ms — {}",
            results.args.concurrency,
            verdict(p99 < 5.0)
        ));
    }
    if let Some(w) = &results.wake {
        let p99 = w.percentile_ms(0.99);
        lines.push(format!(
            "long-poll wake p99 < 5 ms: {p99:.2} ms — {}",
            verdict(p99 < 5.0)
        ));
    }
    if let Some(row) = find("push to a subscriber answering 200")
        && let (Some(o), Some((limit, _))) = (&row.ferromq, row.limit)
    {
        let share = o.rate() / limit;
        lines.push(format!(
            "push to an immediate subscriber ≥ 50 % of the raw HTTP loop: {:.0} % — {}",
            share * 100.0,
            verdict(share >= 0.5)
        ));
    }
    if let Some(m) = results.memory_per_message {
        lines.push(format!(
            "Redis memory ≤ 1.5 KB per 1 KB message: {:.2} KB — {}",
            m / 1024.0,
            verdict(m <= 1536.0)
        ));
    }
    lines
}
