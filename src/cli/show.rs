//! How the command-line client prints answers: a table for people, JSON for scripts.

use super::Output;
use comfy_table::{Table, presets::NOTHING};
use serde_json::{Value, json};

/// Longest body shown in a table; `-o json` shows them whole.
const BODY_WIDTH: usize = 60;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING).set_header(header.to_vec());
    // Flush left, two spaces between columns.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// A value as a cell: strings as they are, anything else as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A body on one line, cut to `BODY_WIDTH` characters.
fn short(body: &str) -> String {
    let line = body.replace('\n', "\\n").replace('\r', "\\r");
    match line.char_indices().nth(BODY_WIDTH) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

pub fn queues(queues: &[Value], output: Output) {
    let rows: Vec<Value> = queues
        .iter()
        .map(|q| json!({ "name": q["name"], "type": q["type"], "size": q["size"] }))
        .collect();
    match output {
        Output::Json => print_json(&Value::Array(rows)),
        Output::Table => {
            let mut table = table(&["NAME", "TYPE", "SIZE"]);
            for row in &rows {
                table.add_row(vec![
                    cell(&row["name"]),
                    cell(&row["type"]),
                    cell(&row["size"]),
                ]);
            }
            println!("{table}");
        }
    }
}

pub fn info(queue: &Value, output: Output) {
    match output {
        Output::Json => print_json(queue),
        Output::Table => {
            let mut table = table(&["FIELD", "VALUE"]);
            if let Some(fields) = queue.as_object() {
                for (name, value) in fields {
                    table.add_row(vec![name.clone(), cell(value)]);
                }
            }
            println!("{table}");
        }
    }
}

/// Reserved messages (with their reservation ids) or peeked ones.
pub fn messages(messages: &Value, output: Output, reserved: bool) {
    let empty = Vec::new();
    let list = messages.as_array().unwrap_or(&empty);
    match output {
        Output::Json => print_json(&Value::Array(list.clone())),
        Output::Table if list.is_empty() => eprintln!("No messages"),
        Output::Table => {
            let mut header = vec!["ID"];
            if reserved {
                header.push("RESERVATION");
            }
            header.extend(["RESERVED_COUNT", "BODY"]);
            let mut table = table(&header);
            for m in list {
                let mut row = vec![cell(&m["id"])];
                if reserved {
                    row.push(cell(&m["reservation_id"]));
                }
                row.push(cell(&m["reserved_count"]));
                row.push(short(m["body"].as_str().unwrap_or_default()));
                table.add_row(row);
            }
            println!("{table}");
        }
    }
}

/// One message of `tail`, printed at once: its body as it is, or one JSON object per line. An
/// error (the reader went away) is the caller's to handle.
pub fn tailed(message: &Value, output: Output) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(stdout, "{message}")?,
        Output::Table => writeln!(stdout, "{}", message["body"].as_str().unwrap_or_default())?,
    }
    stdout.flush()
}

pub fn ids(ids: &[Value], output: Output) {
    match output {
        Output::Json => print_json(&json!({ "ids": ids })),
        Output::Table => {
            for id in ids {
                println!("{}", cell(id));
            }
        }
    }
}

/// An answer that is only a `msg`.
pub fn answer(answer: &Value, output: Output) {
    match output {
        Output::Json => print_json(answer),
        Output::Table => println!("{}", cell(&answer["msg"])),
    }
}

pub fn redrive(answer: &Value, output: Output) {
    match output {
        Output::Json => print_json(answer),
        Output::Table => {
            if let Some(msg) = answer["msg"].as_str() {
                println!("{msg}");
            }
            info(&answer["redrive"], Output::Table);
        }
    }
}
