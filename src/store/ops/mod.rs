//! One file per store operation, each beside its script: what the script is given, what it
//! answers, and what its statuses mean.
//!
//! | file (`.rs` and `.lua`) | `Store` methods |
//! |---|---|
//! | `post` | `post` |
//! | `reserve` | `reserve` (long polls: `long_poll.rs`) |
//! | `peek`, `get` | `peek`, `get_message` |
//! | `delete`, `delete_batch` | `delete_message`, `delete_messages` |
//! | `touch`, `release` | `touch`, `release` |
//! | `clear`, `delete_queue` | `clear`, `delete_queue` |
//! | `info` | `queue_info` |
//! | `history` | `record_activity`, `record_history`, `history` |
//! | `apply` | `write_settings` (called by `settings.rs`: `apply_queue`, `update_queue`) |
//! | `push_claim`, `push_report`, `push_ack` | `claim_push`, `report_push`, `ack_push` |
//! | `push_gate` (`_admit`, `_settle`) | `admit_push`, `settle_push`, `open_circuits` |
//! | `dead_letter` (`_take`, `_done`) | `move_dead_letters` (called by `reserve`) |
//! | `redrive` (`_start`, `_take`, `_done`, `_cancel`) | `start_redrive`, `redrive`, `cancel_redrive`, `run_redrive`, `watch_redrives` |
//! | `put` | stores messages moved in with their ids (dead letters, alert messages) |
//! | `alerts` (`_take`, `_done`; the check is `check_alerts` in `prelude.lua`) | `send_alerts` (called by every op that changes a queue's size) |

pub mod alerts;
pub mod apply;
pub mod clear;
pub mod dead_letter;
pub mod delete;
pub mod delete_batch;
pub mod delete_queue;
pub mod get;
pub mod history;
pub mod info;
pub mod peek;
pub mod post;
pub mod push_ack;
pub mod push_claim;
pub mod push_gate;
pub mod push_report;
pub mod put;
pub mod redrive;
pub mod release;
pub mod reserve;
pub mod touch;
