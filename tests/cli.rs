//! The command-line client (`ferromq queues`, `info`, `post`, `reserve`, `peek`, `delete`,
//! `tail`, `redrive`) run as a process against a real server and Redis: each verb in tables and
//! `-o json`, configuration from iron.json, IRON_* and flags, and the exit code of each failure.
//! The client runs as a blocking child process, so the in-process server has threads of its own.

use common::{TOKEN, post_bodies, q, reserve, start_server};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `ferromq ARGS` in `dir` (also its HOME), with the environment given and no other IRON_*.
fn ferromq(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferromq"));
    command.args(args).current_dir(dir).env("HOME", dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("IRON_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command
}

/// The environment that points the client at `base` (http://127.0.0.1:PORT), project `p`.
fn env_for(base: &str) -> Vec<(&'static str, String)> {
    let (host, port) = base.trim_start_matches("http://").split_once(':').unwrap();
    vec![
        ("IRON_TOKEN", TOKEN.to_string()),
        ("IRON_PROJECT_ID", "p".to_string()),
        ("IRON_HOST", host.to_string()),
        ("IRON_PORT", port.to_string()),
        ("IRON_PROTOCOL", "http".to_string()),
    ]
}

struct Cli {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Cli {
    fn new(base: &str) -> Self {
        Cli {
            dir: tempfile::tempdir().unwrap(),
            env: env_for(base),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ferromq(self.dir.path(), &env, args)
    }

    fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, "")
    }

    /// Runs a command that must succeed, and answers its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts the exit code, and that standard error says `says`.
fn fails(output: Output, code: i32, says: &str) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_verb_works_in_tables_and_json() {
    let running = start_server().await;
    let client = &running.client;
    let cli = Cli::new(&running.server.base);

    // post: an argument, standard input, and lines (three batches of up to 100).
    let id = cli.ok(&["post", "orders", "first"]);
    assert_eq!(id.lines().count(), 1, "one id: {id}");
    let from_stdin = cli.run_with_input(&["post", "orders", "-o", "json"], "second\n");
    assert!(from_stdin.status.success(), "{}", describe(&from_stdin));
    let posted: Value = serde_json::from_slice(&from_stdin.stdout).unwrap();
    assert_eq!(posted["ids"].as_array().unwrap().len(), 1, "{posted}");
    let lines: String = (0..250).map(|i| format!("line {i}\n\n")).collect();
    let many = cli.run_with_input(&["post", "bulk", "--lines", "-o", "json"], &lines);
    assert!(many.status.success(), "{}", describe(&many));
    let many: Value = serde_json::from_slice(&many.stdout).unwrap();
    assert_eq!(many["ids"].as_array().unwrap().len(), 250);

    // queues and info.
    let listed = cli.json(&["queues"]);
    assert_eq!(
        listed,
        json!([
            {"name": "bulk", "type": "pull", "size": 250},
            {"name": "orders", "type": "pull", "size": 2},
        ])
    );
    let table = cli.ok(&["queues"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "TYPE", "SIZE"], "{table}");
    assert!(rows.contains(&vec!["orders", "pull", "2"]), "{table}");
    let info = cli.json(&["info", "orders"]);
    assert_eq!(info["name"], "orders");
    assert_eq!(info["size"], 2);
    assert!(cli.ok(&["info", "orders"]).contains("message_timeout"));

    // peek, then reserve and delete with the reservation.
    let peeked = cli.json(&["peek", "orders", "-n", "2"]);
    let bodies: Vec<&str> = peeked
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["first", "second"], "{peeked}");
    assert!(cli.ok(&["peek", "orders"]).contains("first"));
    let reserved = cli.json(&["reserve", "orders", "-n", "1", "--timeout", "30"]);
    let message = &reserved[0];
    assert_eq!(message["body"], "first");
    let (id, rid) = (
        message["id"].as_str().unwrap(),
        message["reservation_id"].as_str().unwrap(),
    );
    let refused = cli.run(&["delete", "orders", id]);
    fails(refused, 4, "reservation_id is required");
    let deleted = cli.json(&["delete", "orders", id, "--reservation", rid]);
    assert_eq!(deleted["msg"], "Deleted");
    let table = cli.ok(&["reserve", "orders", "-n", "2"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("second"), "{table}");
    let empty = cli.run(&["reserve", "orders", "--wait", "1"]);
    assert!(empty.status.success(), "{}", describe(&empty));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("No messages"));

    // redrive: the messages of a dead-letter queue back to its source.
    let (status, body) = client
        .put(
            &q("orders-again"),
            json!({"queue": {"dead_letter": {"queue_name": "parked", "max_reservations": 5}}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    post_bodies(client, "parked", &["p1", "p2"]).await;
    let started = cli.json(&["redrive", "parked"]);
    assert_eq!(started["redrive"]["to"], "orders-again", "{started}");
    let mut status = Value::Null;
    for _ in 0..100 {
        status = cli.json(&["redrive", "parked", "--status"]);
        if status["redrive"]["state"] == "done" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status["redrive"]["moved"], 2, "{status}");
    let (_, info) = client.get(&q("orders-again")).await;
    assert_eq!(info["queue"]["size"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tail_prints_and_deletes_each_message_and_stops_on_ctrl_c() {
    let running = start_server().await;
    let client = &running.client;
    let cli = Cli::new(&running.server.base);
    post_bodies(client, "events", &["one", "two"]).await;
    let mut tail = cli
        .command(&["tail", "events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "one");
    assert_eq!(lines.next().unwrap().unwrap(), "two");
    // Posted while it waits in a long poll.
    post_bodies(client, "events", &["three"]).await;
    assert_eq!(lines.next().unwrap().unwrap(), "three");
    // Deleted once printed: nothing is left, nothing reserved.
    let mut size = Value::Null;
    for _ in 0..100 {
        size = client.get(&q("events")).await.1["queue"]["size"].clone();
        if size == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(size, 0);
    // Ctrl-C in the middle of a long poll ends it at once, cleanly.
    // SAFETY: a plain signal to a child process this test started.
    unsafe { libc::kill(tail.id() as i32, libc::SIGINT) };
    let stopped = std::time::Instant::now();
    let status = tail.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(stopped.elapsed() < Duration::from_secs(5));
    // A message posted afterwards is there for others.
    post_bodies(client, "events", &["four"]).await;
    let got = reserve(client, "events", json!({"n": 1})).await;
    assert_eq!(got[0]["body"], "four");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn configuration_comes_from_files_variables_and_flags() {
    let running = start_server().await;
    let base = running.server.base.clone();
    let (host, port) = base.trim_start_matches("http://").split_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    post_bodies(&running.client, "configured", &["x"]).await;

    // iron.json alone, with the MQ object overriding the top level.
    std::fs::write(
        dir.path().join("iron.json"),
        json!({"token": "wrong", "project_id": "p", "host": host, "port": port,
               "protocol": "http", "iron_mq": {"token": TOKEN}})
        .to_string(),
    )
    .unwrap();
    let listed = ferromq(dir.path(), &[], &["queues", "-o", "json"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", describe(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("configured"));

    // As in the official clients, ./iron.json beats a variable; a flag beats both.
    let file_wins = ferromq(dir.path(), &[("IRON_MQ_TOKEN", "nope")], &["queues"])
        .output()
        .unwrap();
    assert!(file_wins.status.success(), "{}", describe(&file_wins));
    let wrong_token = ferromq(dir.path(), &[], &["queues", "--token", "nope"])
        .output()
        .unwrap();
    fails(wrong_token, 4, "401");
    // A variable beats ~/.iron.json.
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("iron.json"), work.path().join(".iron.json")).unwrap();
    let from_home = ferromq(work.path(), &[], &["queues"]).output().unwrap();
    assert!(from_home.status.success(), "{}", describe(&from_home));
    let variable_wins = ferromq(work.path(), &[("IRON_TOKEN", "nope")], &["queues"])
        .output()
        .unwrap();
    fails(variable_wins, 4, "401");
    let other_project = ferromq(
        dir.path(),
        &[],
        &["info", "configured", "--project", "other"],
    )
    .output()
    .unwrap();
    fails(other_project, 5, "Queue not found");

    // What cannot work says so, with its own exit code.
    let empty = tempfile::tempdir().unwrap();
    fails(
        ferromq(empty.path(), &[], &["queues"]).output().unwrap(),
        3,
        "no token: pass --token, set IRON_TOKEN",
    );
    fails(
        ferromq(empty.path(), &[("IRON_TOKEN", "t")], &["queues"])
            .output()
            .unwrap(),
        3,
        "no project id",
    );
    std::fs::write(empty.path().join("iron.json"), "{\"token\": ").unwrap();
    fails(
        ferromq(empty.path(), &[], &["queues"]).output().unwrap(),
        3,
        "iron.json",
    );
    fails(
        ferromq(dir.path(), &[("IRON_PORT", "eighty")], &["queues"])
            .output()
            .unwrap(),
        3,
        "IRON_PORT",
    );
    let closed = common::free_port().to_string();
    fails(
        ferromq(dir.path(), &[], &["queues", "--port", &closed])
            .output()
            .unwrap(),
        8,
        "cannot reach",
    );
    fails(
        ferromq(dir.path(), &[], &["reserve", "configured", "-n", "1000"])
            .output()
            .unwrap(),
        6,
        "400",
    );
    fails(
        ferromq(dir.path(), &[], &["reserve"]).output().unwrap(),
        2,
        "QUEUE",
    );
}
