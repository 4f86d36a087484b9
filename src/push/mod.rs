//! Push queues: delivering messages to subscribers (HTTP endpoints or other queues), with
//! retries, acknowledgement of 202 answers, and an error queue for what cannot be delivered.
//!
//! * `state`: per-message, per-subscriber delivery state, and what a round does with it.
//! * `auth`: bearer tokens for subscribers with `jwt` (signed, or from a token file).
//! * `deliver`: one delivery attempt (the HTTP request or the post to another queue).
//! * `guard`: the networks push workers may not connect to.
//! * `gate`: holding deliveries back: flow control, circuit breaker, Retry-After.
//! * `round`: one delivery round of a claimed message, from its state to its report.
//! * `worker`: the workers that claim messages of push queues and run delivery rounds.
//! * `reports`: recording the rounds' outcomes, those that end together in one call.

pub mod auth;
pub mod deliver;
pub mod gate;
pub mod guard;
pub mod reports;
pub mod round;
pub mod state;
pub mod worker;
