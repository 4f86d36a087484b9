//! One file per store operation, each beside its script: what the script is given, what it
//! answers, and what its statuses mean.

pub mod apply;
pub mod clear;
pub mod delete;
pub mod delete_batch;
pub mod delete_queue;
pub mod get;
pub mod info;
pub mod peek;
pub mod post;
pub mod push_ack;
pub mod push_claim;
pub mod push_report;
pub mod push_state;
pub mod release;
pub mod reserve;
pub mod touch;
