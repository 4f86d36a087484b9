//! The command-line client: `ferromq queues`, `info`, `post`, `reserve`, `peek`, `delete`,
//! `tail` and `redrive`, over the REST API of any ferromq (or IronMQ v3) server, configured as
//! the official clients are (`config.rs`). Tables for people, `-o json` for scripts, and an
//! exit code that says what failed (`Exit`).

mod api;
mod config;
mod show;

use api::{Api, queue_path};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::{IsTerminal, Read};

/// Why the client stopped, as its exit code (2 is a usage error, from the argument parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// No token or project, or a config file or variable that cannot be read.
    Config = 3,
    /// Not allowed (401, 403): the token, or a reservation that is not the message's.
    Refused = 4,
    /// No such queue or message (404).
    NotFound = 5,
    /// The server refused the request (another 4xx).
    BadRequest = 6,
    /// The server failed (5xx).
    Server = 7,
    /// The server could not be reached.
    Unreachable = 8,
    /// Standard input could not be read.
    Input = 9,
}

#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }

    fn config(message: impl Into<String>) -> Self {
        Failure::new(Exit::Config, message)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, for people.
    #[default]
    Table,
    /// JSON, for scripts.
    Json,
}

/// What every client command takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    #[command(flatten)]
    settings: config::Settings,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Output,
}

const CONFIG_HELP: &str = "Configuration, later wins: ~/.iron.json, IRON_TOKEN, IRON_PROJECT_ID, \
IRON_HOST, IRON_PORT, IRON_PROTOCOL, then IRON_MQ_* the same, then ./iron.json, then flags.
Exit codes: 0 done, 2 bad usage, 3 configuration, 4 not allowed (token, reservation), \
5 not found, 6 request refused, 7 server error, 8 server unreachable, 9 stdin unreadable.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the project's queues with their type and size.
    #[command(after_help = format!("Examples:\n  ferromq queues\n  ferromq queues -o json\n\n{CONFIG_HELP}"))]
    Queues(Common),
    /// Show a queue's settings and size.
    #[command(after_help = format!("Examples:\n  ferromq info orders\n\n{CONFIG_HELP}"))]
    Info {
        queue: String,
        #[command(flatten)]
        common: Common,
    },
    /// Post a message (BODY, or standard input), or one message per line of input.
    #[command(after_help = format!("Examples:\n  ferromq post orders 'hello'\n  \
        echo '{{\"id\": 1}}' | ferromq post orders\n  ferromq post orders --lines < events.txt\n\n\
        {CONFIG_HELP}"))]
    Post {
        queue: String,
        /// The body; read from standard input when left out.
        body: Option<String>,
        /// Post each line of standard input (or of BODY) as a message; blank lines are skipped.
        #[arg(long)]
        lines: bool,
        /// Seconds before the messages can be reserved.
        #[arg(long, default_value_t = 0)]
        delay: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Reserve messages: they stay hidden from others until deleted or the timeout passes.
    #[command(after_help = format!("Examples:\n  ferromq reserve orders\n  \
        ferromq reserve orders -n 10 --timeout 120 --wait 20 -o json\n\n{CONFIG_HELP}"))]
    Reserve {
        queue: String,
        /// How many (1 to 100).
        #[arg(short, default_value_t = 1)]
        n: u64,
        /// Seconds the reservation lasts.
        #[arg(long)]
        timeout: Option<u64>,
        /// Seconds to wait for a message when none is ready (long poll, up to 30).
        #[arg(long)]
        wait: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Show the next messages without reserving them.
    #[command(after_help = format!("Examples:\n  ferromq peek orders -n 5\n\n{CONFIG_HELP}"))]
    Peek {
        queue: String,
        /// How many (1 to 100).
        #[arg(short, default_value_t = 1)]
        n: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a message (a reserved one needs its reservation id).
    #[command(after_help = format!("Examples:\n  ferromq delete orders 0123abcd --reservation 9f8e7d\n\n{CONFIG_HELP}"))]
    Delete {
        queue: String,
        id: String,
        /// The reservation id, when the message is reserved.
        #[arg(long)]
        reservation: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Print each message's body as it arrives, and delete it once printed. Ctrl-C stops:
    /// messages received but not printed are released for others.
    #[command(after_help = format!("Examples:\n  ferromq tail orders\n  \
        ferromq tail orders -o json | jq .body\n\n{CONFIG_HELP}"))]
    Tail {
        queue: String,
        /// Messages to reserve at a time (1 to 100).
        #[arg(short, default_value_t = 10)]
        n: u64,
        /// Seconds each reservation lasts (they are deleted once printed).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Move the messages of a dead-letter or error queue back to their source queue (or
    /// show or cancel the running move).
    #[command(after_help = format!("Examples:\n  ferromq redrive orders-dead\n  \
        ferromq redrive orders-errors --max 100 --rate 50\n  ferromq redrive orders-dead --status\n\n\
        {CONFIG_HELP}"))]
    Redrive {
        queue: String,
        /// Move at most this many.
        #[arg(long)]
        max: Option<u64>,
        /// Messages per second.
        #[arg(long)]
        rate: Option<u64>,
        /// The queue to move them to (default: the one they came from).
        #[arg(long)]
        to: Option<String>,
        /// Show the last redrive instead of starting one.
        #[arg(long, conflicts_with_all = ["cancel", "max", "rate", "to"])]
        status: bool,
        /// Cancel the running redrive.
        #[arg(long, conflicts_with_all = ["max", "rate", "to"])]
        cancel: bool,
        #[command(flatten)]
        common: Common,
    },
}

impl Command {
    fn common(&self) -> &Common {
        match self {
            Command::Queues(common)
            | Command::Info { common, .. }
            | Command::Post { common, .. }
            | Command::Reserve { common, .. }
            | Command::Peek { common, .. }
            | Command::Delete { common, .. }
            | Command::Tail { common, .. }
            | Command::Redrive { common, .. } => common,
        }
    }
}

/// Runs one command; prints its failure and answers the exit code.
pub fn main(command: Command) -> std::process::ExitCode {
    if !matches!(command, Command::Tail { .. }) {
        // Output cut short (`| head`) ends the command quietly, as it does any Unix tool; `tail`
        // sees the error instead, and gives back what it did not print.
        // SAFETY: setting a signal's disposition to its default, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run(command)),
        Err(err) => Err(Failure::new(Exit::Server, format!("cannot start: {err}"))),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("ferromq: {}", failure.message);
            std::process::ExitCode::from(failure.exit as u8)
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    let common = command.common().clone();
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::config(format!("no working directory: {e}")))?;
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let target = config::resolve(common.settings, home.as_deref(), &cwd, |name| {
        std::env::var(name).ok()
    })?;
    let api = Api::new(target)?;
    let output = common.output;
    match command {
        Command::Queues(_) => queues(&api, output).await,
        Command::Info { queue, .. } => {
            let info = api.get(&queue_path(&queue, &[])).await?;
            show::info(&info["queue"], output);
            Ok(())
        }
        Command::Post {
            queue,
            body,
            lines,
            delay,
            ..
        } => post(&api, &queue, body, lines, delay, output).await,
        Command::Reserve {
            queue,
            n,
            timeout,
            wait,
            ..
        } => {
            let mut request = json!({ "n": n });
            if let Some(timeout) = timeout {
                request["timeout"] = json!(timeout);
            }
            if let Some(wait) = wait {
                request["wait"] = json!(wait);
            }
            let reserved = api
                .post(&queue_path(&queue, &["reservations"]), request)
                .await?;
            show::messages(&reserved["messages"], output, true);
            Ok(())
        }
        Command::Peek { queue, n, .. } => {
            let peeked = api
                .get(&format!("{}?n={n}", queue_path(&queue, &["messages"])))
                .await?;
            show::messages(&peeked["messages"], output, false);
            Ok(())
        }
        Command::Delete {
            queue,
            id,
            reservation,
            ..
        } => {
            let body = match reservation {
                Some(rid) => json!({ "reservation_id": rid }),
                None => json!({}),
            };
            let answer = api
                .delete(&queue_path(&queue, &["messages", &id]), body)
                .await?;
            show::answer(&answer, output);
            Ok(())
        }
        Command::Tail {
            queue, n, timeout, ..
        } => tail(&api, &queue, n, timeout, output).await,
        Command::Redrive {
            queue,
            max,
            rate,
            to,
            status,
            cancel,
            ..
        } => {
            let path = queue_path(&queue, &["redrive"]);
            let answer = if status {
                api.get(&path).await?
            } else if cancel {
                api.delete(&path, json!({})).await?
            } else {
                let mut request = json!({});
                for (key, value) in [
                    ("max", max.map(Value::from)),
                    ("rate", rate.map(Value::from)),
                    ("to", to.map(Value::from)),
                ] {
                    if let Some(value) = value {
                        request[key] = value;
                    }
                }
                api.post(&path, request).await?
            };
            show::redrive(&answer, output);
            Ok(())
        }
    }
}

/// Every queue of the project (page by page), each with its type and size.
async fn queues(api: &Api, output: Output) -> Result<(), Failure> {
    let mut names: Vec<String> = Vec::new();
    loop {
        let mut path = "/queues?per_page=100".to_string();
        if let Some(last) = names.last() {
            let last = percent_encoding::utf8_percent_encode(last, api::SEGMENT);
            path.push_str(&format!("&previous={last}"));
        }
        let page = api.get(&path).await?;
        let page: Vec<String> = page["queues"]
            .as_array()
            .map(|queues| {
                queues
                    .iter()
                    .filter_map(|q| q["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let full = page.len() == 100;
        names.extend(page);
        if !full {
            break;
        }
    }
    use futures_util::StreamExt;
    let infos: Vec<Result<Value, Failure>> = futures_util::stream::iter(&names)
        .map(|name| async move { api.get(&queue_path(name, &[])).await })
        .buffered(8)
        .collect()
        .await;
    let mut rows = Vec::with_capacity(names.len());
    for info in infos {
        match info {
            Ok(info) => rows.push(info["queue"].clone()),
            // Deleted since it was listed.
            Err(failure) if failure.exit == Exit::NotFound => {}
            Err(failure) => return Err(failure),
        }
    }
    show::queues(&rows, output);
    Ok(())
}

/// Posts one message, or one per line, in batches of 100 with a progress bar on a terminal.
async fn post(
    api: &Api,
    queue: &str,
    body: Option<String>,
    lines: bool,
    delay: u64,
    output: Output,
) -> Result<(), Failure> {
    let text = match body {
        Some(body) => body,
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                Failure::new(Exit::Input, format!("cannot read standard input: {e}"))
            })?;
            if !lines {
                // What `echo` adds is not part of the message.
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
            }
            text
        }
    };
    let bodies: Vec<&str> = match lines {
        true => text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect(),
        false => vec![text.as_str()],
    };
    if bodies.is_empty() {
        return Err(Failure::new(
            Exit::Input,
            "nothing to post: the input has no lines",
        ));
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(bodies.len() as u64),
        match bodies.len() > 100 && std::io::stderr().is_terminal() {
            true => indicatif::ProgressDrawTarget::stderr(),
            false => indicatif::ProgressDrawTarget::hidden(),
        },
    );
    let mut ids: Vec<Value> = Vec::with_capacity(bodies.len());
    let path = queue_path(queue, &["messages"]);
    for batch in bodies.chunks(100) {
        let messages: Vec<Value> = batch
            .iter()
            .map(|body| json!({ "body": body, "delay": delay }))
            .collect();
        let posted = api.post(&path, json!({ "messages": messages })).await?;
        if let Some(posted) = posted["ids"].as_array() {
            ids.extend(posted.iter().cloned());
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    show::ids(&ids, output);
    Ok(())
}

/// Reserves with long polls, prints each body, deletes it once printed; Ctrl-C stops between
/// messages, and what was received but not printed is released.
async fn tail(api: &Api, queue: &str, n: u64, timeout: u64, output: Output) -> Result<(), Failure> {
    let reservations = queue_path(queue, &["reservations"]);
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let request = json!({ "n": n, "timeout": timeout, "wait": 30 });
        let reserved = tokio::select! {
            reserved = api.post(&reservations, request) => reserved?,
            // A reservation the server made for this poll is never seen here: it ends with
            // its timeout and the message goes to someone else.
            _ = &mut stop => return Ok(()),
        };
        let messages = reserved["messages"].as_array().cloned().unwrap_or_default();
        for (i, message) in messages.iter().enumerate() {
            let stopping = futures_util::FutureExt::now_or_never(&mut stop).is_some();
            if stopping {
                release(api, queue, &messages[i..]).await;
                return Ok(());
            }
            if show::tailed(message, output).is_err() {
                // Whoever read the output is gone (`| head`): stop, and give back what was
                // not printed.
                release(api, queue, &messages[i..]).await;
                return Ok(());
            }
            let id = message["id"].as_str().unwrap_or_default();
            api.delete(
                &queue_path(queue, &["messages", id]),
                json!({ "reservation_id": message["reservation_id"] }),
            )
            .await?;
        }
    }
}

/// Gives messages back for others at once instead of at their reservation's end.
async fn release(api: &Api, queue: &str, messages: &[Value]) {
    for message in messages {
        let id = message["id"].as_str().unwrap_or_default();
        let body = json!({ "reservation_id": message["reservation_id"] });
        if let Err(failure) = api
            .post(&queue_path(queue, &["messages", id, "release"]), body)
            .await
        {
            eprintln!(
                "ferromq: message {id} not released ({}); it returns when its reservation ends",
                failure.message
            );
        }
    }
}
