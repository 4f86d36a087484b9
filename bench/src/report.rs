//! The report: one table with, for each scenario, ferromq and its references (the floor, the
//! rsmq peer, RabbitMQ, the Redis limit); the targets; and the machine it ran on.

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

/// The lines of one scenario: ferromq, then each reference with ferromq's rate and CPU per
/// message divided by its own.
fn scenario_lines(row: &Row) -> Vec<String> {
    use crate::load::Outcome;
    let ours = row.ferromq.as_ref();
    let line = |first: bool, system: &str, o: Option<&Outcome>| {
        let versus =
            |pick: fn(&Outcome) -> Option<f64>| ratio(ours.and_then(pick), o.and_then(pick));
        let cloned = o.cloned();
        format!(
            "| {} | {system} | {} | {} | {} | {} | {} |",
            if first { row.scenario.as_str() } else { "" },
            rate(&cloned),
            latency(&cloned),
            cpu(&cloned),
            if o.is_some() && !first {
                versus(|o| Some(o.rate()))
            } else {
                "—".into()
            },
            if o.is_some() && !first {
                versus(|o| o.cpu.total())
            } else {
                "—".into()
            },
        )
    };
    let mut lines = Vec::new();
    if ours.is_some() {
        lines.push(line(true, "**ferromq**", ours));
    }
    if let Some(floor) = &row.floor {
        lines.push(line(lines.is_empty(), "floor", Some(floor)));
    }
    if let Some(peer) = &row.peer {
        lines.push(line(lines.is_empty(), "rsmq peer", Some(peer)));
    }
    if let Some((what, rabbit)) = &row.rabbitmq {
        lines.push(line(
            lines.is_empty(),
            &format!("RabbitMQ: {what}"),
            Some(rabbit),
        ));
    }
    if let Some((limit, what)) = row.limit {
        lines.push(format!(
            "| {} | limit: {what} | {limit:.0} | — | — | {} | — |",
            if lines.is_empty() {
                row.scenario.as_str()
            } else {
                ""
            },
            ratio(ours.map(|o| o.rate()), Some(limit)),
        ));
    }
    lines
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
        "- **ferromq**: the REST data plane (`ferromq serve`) over HTTP/1.1 keep-alive.\n\
         - **floor**: `ferromq-floor`, the least server that does the same HTTP work (axum, the same \
         routes, token check and JSON shapes) over the least Redis work a queue needs: one small \
         script per request, without ferromq's group commit, so under concurrency ferromq's Redis \
         work can be below the floor's. ferromq's server CPU divided by the floor's is the headroom \
         left in ferromq's own work.\n\
         - **rsmq peer**: rsmq (npm) behind a small Node REST front with the same routes \
         (`bench/peer/server.js`), same load generator.\n\
         - **RabbitMQ**: Debian's `rabbitmq-server`, a durable quorum queue (fsync before a confirm), \
         persistent messages, publisher confirms and consumer acks, over AMQP 0.9.1 (lapin) at the \
         same concurrency; CPU is the broker's (beam.smp). Its consume latency is the time to take \
         deliveries the broker already pushed and send their ack (with prefetch 100, up to 100 of \
         them), where ferromq's is two HTTP round trips.\n\
         - **limit**: `redis-benchmark` on the same redis-server, 64-deep pipelines, one message = one \
         LPUSH or RPOP.\n\
         - rows *confirmed by a replica*: ferromq with `FERROMQ_MIN_REPLICAS_ACK=1` on a primary \
         with one replica (both as above, on this machine): every change answered once the \
         replica has it (`WAIT`).\n\n\
         ferromq, the floor and the peer share one redis-server that persists as the chart runs it \
         (append-only file, fsync every second, no automatic rewrite during the run): a crash of \
         any process loses nothing acknowledged, a power loss up to a second of it. The quorum \
         queue fsyncs before it confirms, a stronger promise. Push rows time delivery of a posted \
         batch, so they have no per-request latency. \
         The last two columns divide ferromq's rate, and its CPU per message, by the row's: \
         above 1 ferromq is faster; below 1 it spends less.\n"
    );
    let _ = writeln!(
        out,
        "| scenario | system | msgs/s | p50 / p99 / p999 ms | CPU µs/msg (server + redis) | ferromq ÷ this, rate | ferromq ÷ this, CPU |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for row in &results.rows {
        for line in scenario_lines(row) {
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(w) = &results.wake {
        let _ = writeln!(
            out,
            "| long-poll wake (post sent → waiting reserve returns), {} rounds | **ferromq** | — | {:.2} / {:.2} / {:.2} | — | — | — |",
            w.messages,
            w.percentile_ms(0.5),
            w.percentile_ms(0.99),
            w.percentile_ms(0.999)
        );
    }
    // Failed requests are not counted in the rates; say so where there were any.
    for row in &results.rows {
        let failed = |o: Option<&crate::load::Outcome>| o.map_or(0, |o| o.errors);
        let counts = [
            ("ferromq", failed(row.ferromq.as_ref())),
            ("floor", failed(row.floor.as_ref())),
            ("peer", failed(row.peer.as_ref())),
            ("RabbitMQ", failed(row.rabbitmq.as_ref().map(|(_, o)| o))),
        ];
        if counts.iter().any(|(_, n)| *n > 0) {
            let listed: Vec<String> = counts.iter().map(|(who, n)| format!("{who} {n}")).collect();
            let _ = writeln!(
                out,
                "\nFailed requests in \"{}\" (not counted above): {}.",
                row.scenario,
                listed.join(", ")
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
    use crate::load::Outcome;
    let mut lines = Vec::new();
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let find = |prefix: &str| results.rows.iter().find(|r| r.scenario.starts_with(prefix));
    let cpu = |o: &Outcome| o.cpu.total();
    let (post1, cycle1) = (find("post, 1 "), find("reserve + delete, n = 1"));
    for (row, what) in [
        (cycle1, "reserve + delete, n = 1"),
        (post1, "post, 1 per request"),
    ] {
        if let Some(Row {
            ferromq: Some(o),
            peer: Some(p),
            ..
        }) = row
        {
            let x = o.rate() / p.rate();
            lines.push(format!(
                "{what}: ≥ 3 × the rsmq peer's rate: {x:.2} × — {}",
                verdict(x >= 3.0)
            ));
        }
    }
    if let Some(Row {
        ferromq: Some(o),
        peer: Some(p),
        ..
    }) = cycle1
        && let (Some(ours), Some(theirs)) = (cpu(o), cpu(p))
    {
        lines.push(format!(
            "reserve + delete, n = 1: CPU per message ≤ 1/3 of the peer's: {ours:.0} µs vs \
             {theirs:.0} µs ({:.2} of it) — {}",
            ours / theirs,
            verdict(ours * 3.0 <= theirs)
        ));
    }
    // A full cycle one message at a time: a post, then a reserve + delete (a publish, then a
    // consume + ack). Its rate combines the two; its cost adds them.
    let full = |post: Option<&Outcome>, cycle: Option<&Outcome>| {
        let (post, cycle) = (post?, cycle?);
        let rate = 1.0 / (1.0 / post.rate() + 1.0 / cycle.rate());
        Some((rate, cpu(post)? + cpu(cycle)?))
    };
    let ours = full(
        post1.and_then(|r| r.ferromq.as_ref()),
        cycle1.and_then(|r| r.ferromq.as_ref()),
    );
    let rabbit = full(
        post1.and_then(|r| r.rabbitmq.as_ref().map(|(_, o)| o)),
        cycle1.and_then(|r| r.rabbitmq.as_ref().map(|(_, o)| o)),
    );
    if let (Some((our_rate, our_cpu)), Some((their_rate, their_cpu))) = (ours, rabbit) {
        lines.push(format!(
            "full cycle one at a time (post, reserve, delete) cheaper per message than RabbitMQ's \
             quorum queue, at a higher rate: {our_cpu:.0} µs vs {their_cpu:.0} µs, \
             {our_rate:.0} vs {their_rate:.0} msgs/s — {}",
            verdict(our_cpu < their_cpu && our_rate > their_rate)
        ));
    }
    if let Some(Row {
        ferromq: Some(o), ..
    }) = post1
    {
        let p99 = o.percentile_ms(0.99);
        lines.push(format!(
            "single-message post p99 < 5 ms at {} connections: {p99:.2} ms — {}",
            results.args.concurrency,
            verdict(p99 < 5.0)
        ));
    }
    // The server's own work against the floor's, and Redis's apart: group commit makes
    // ferromq's Redis work cheaper than the floor's one call per request, which would hide
    // server overhead in a ratio of the totals.
    for row in &results.rows {
        if let (Some(o), Some(f)) = (&row.ferromq, &row.floor)
            && let (Some(ours), Some(floor)) = (o.cpu.server, f.cpu.server)
        {
            let x = ours / floor;
            let redis = match (o.cpu.redis, f.cpu.redis) {
                (Some(a), Some(b)) if b > 0.0 => format!("; Redis {:.2} ×", a / b),
                _ => String::new(),
            };
            lines.push(format!(
                "{}: server CPU per message within 1.5 × the floor's: {x:.2} × ({ours:.1} vs \
                 {floor:.1} µs{redis}) — {}",
                row.scenario,
                verdict(x <= 1.5)
            ));
        }
    }
    if let Some(row) = find("push to a subscriber answering 200")
        && let (Some(o), Some((limit, _))) = (&row.ferromq, row.limit)
    {
        let share = o.rate() / limit;
        lines.push(format!(
            "push to an immediate subscriber ≥ 60 % of the raw HTTP loop: {:.0} % — {}",
            share * 100.0,
            verdict(share >= 0.6)
        ));
    }
    if let Some(w) = &results.wake {
        let p99 = w.percentile_ms(0.99);
        lines.push(format!(
            "long-poll wake p99 < 5 ms: {p99:.2} ms — {}",
            verdict(p99 < 5.0)
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
