//! The status every script answers with first. Declared once, in `statuses!` below: the Rust
//! enum and the Lua constants (bound by the header every script is loaded with, see
//! `script.rs`) both come from that one list.

use super::{Result, StoreError};

/// Declares the script statuses: `LUA_NAME Variant = code`, each with its documentation.
/// Adding a status is one line here.
macro_rules! statuses {
    ($($(#[doc = $doc:literal])* $lua:ident $variant:ident = $code:literal,)*) => {
        /// What a script answers with first.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Status {
            $($(#[doc = $doc])* $variant = $code,)*
        }

        impl Status {
            /// Every status, for the Lua side's constants.
            pub const ALL: &[Status] = &[$(Status::$variant),*];

            /// The status's name in the scripts.
            pub fn lua_name(self) -> &'static str {
                match self { $(Status::$variant => stringify!($lua),)* }
            }

            /// The status a script answered with, if it is one.
            pub fn from_code(code: i64) -> Option<Status> {
                match code { $($code => Some(Status::$variant),)* _ => None }
            }
        }
    };
}

statuses! {
    /// Done as asked.
    OK Ok = 0,
    /// The queue does not exist.
    NO_QUEUE NoQueue = 1,
    /// The message does not exist (or has expired).
    NO_MESSAGE NoMessage = 2,
    /// The message is reserved: its reservation id is required.
    RESERVATION_REQUIRED ReservationRequired = 3,
    /// The reservation id is not the message's current one.
    WRONG_RESERVATION WrongReservation = 4,
    /// A message would expire before its delay is over (post).
    DELAY_TOO_LONG DelayTooLong = 5,
    /// The settings changed since the caller read them (apply, push_report).
    CONFLICT Conflict = 6,
    /// No such subscriber awaits an acknowledgement (push_ack).
    NO_SUBSCRIBER NoSubscriber = 7,
    /// Another resource manages the queue (delete_queue).
    MANAGED Managed = 8,
    /// A body is larger than the queue's max_message_size (post).
    TOO_LARGE TooLarge = 9,
    /// The queue has no number yet and none was given (post).
    NEEDS_NUMBER NeedsNumber = 10,
    /// An Idempotency-Key is in use by a different post (post).
    KEY_REUSED KeyReused = 11,
}

impl Status {
    /// The statuses that mean the same for every operation, as errors; `id` names the message
    /// the operation was about. The statuses particular to one operation are its own to read.
    pub fn check(self, id: &str) -> Result<()> {
        let id = id.to_string();
        match self {
            Status::Ok => Ok(()),
            Status::NoQueue => Err(StoreError::QueueNotFound),
            Status::NoMessage => Err(StoreError::MessageNotFound { id }),
            Status::ReservationRequired => Err(StoreError::ReservationRequired { id }),
            Status::WrongReservation => Err(StoreError::WrongReservation { id }),
            Status::NoSubscriber => Err(StoreError::SubscriberNotFound),
            other => Err(StoreError::BadReply(format!(
                "status {other:?} where it was not expected"
            ))),
        }
    }

    /// The Lua constants, as one line of the script header: `local OK, NO_QUEUE = 0, 1`.
    pub(super) fn lua_constants() -> String {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.lua_name()).collect();
        let codes: Vec<String> = Status::ALL
            .iter()
            .map(|s| (*s as i64).to_string())
            .collect();
        format!("local {} = {}", names.join(", "), codes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_code() {
        for status in Status::ALL {
            assert_eq!(Status::from_code(*status as i64), Some(*status));
        }
        assert_eq!(Status::from_code(99), None);
    }
}
