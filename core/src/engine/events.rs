//! Progress events: the engine's log. Every text in them has known secrets scrubbed.

use super::plan::Action;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// Something the engine did.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Reading a live resource.
    Refreshing {
        /// Address.
        address: String,
    },
    /// The live resource differs from the state, or is gone.
    Drifted {
        /// Address.
        address: String,
        /// Gone entirely.
        gone: bool,
    },
    /// Starting a change.
    Applying {
        /// Address.
        address: String,
        /// The step (`create`, `update`, `delete`; a replace is a delete then a create).
        action: Action,
    },
    /// A change is done.
    Applied {
        /// Address.
        address: String,
        /// The step.
        action: Action,
        /// Time taken.
        elapsed: Duration,
    },
    /// A retryable error; trying again after a pause.
    Retrying {
        /// What was being done (`create function.api`).
        what: String,
        /// The try that failed (1-based).
        attempt: u32,
        /// The pause.
        delay: Duration,
        /// The error, secrets scrubbed.
        error: String,
    },
    /// A change failed.
    Failed {
        /// Address.
        address: String,
        /// The step.
        action: Action,
        /// The error, secrets scrubbed.
        error: String,
    },
    /// The state was saved.
    StateWritten {
        /// Its new serial.
        serial: u64,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Refreshing { address } => write!(f, "{address}: refreshing"),
            Event::Drifted { address, gone } => {
                if *gone {
                    write!(f, "{address}: deleted outside ferry")
                } else {
                    write!(f, "{address}: changed outside ferry")
                }
            }
            Event::Applying { address, action } => write!(f, "{address}: {}...", verb(*action)),
            Event::Applied {
                address,
                action,
                elapsed,
            } => write!(
                f,
                "{address}: {} done ({:.1}s)",
                action.as_str(),
                elapsed.as_secs_f64()
            ),
            Event::Retrying {
                what,
                attempt,
                delay,
                error,
            } => write!(
                f,
                "{what}: try {attempt} failed ({error}); retrying in {:.1}s",
                delay.as_secs_f64()
            ),
            Event::Failed {
                address,
                action,
                error,
            } => write!(f, "{address}: {} failed: {error}", action.as_str()),
            Event::StateWritten { serial } => write!(f, "state saved (serial {serial})"),
        }
    }
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "deleting",
        Action::NoOp => "checking",
    }
}

/// Where events go: the CLI prints them, tests collect them.
pub trait EventSink: Send + Sync {
    /// Receives one event.
    fn event(&self, event: &Event);
}

/// Discards events.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _: &Event) {}
}

/// Keeps every event as its text line.
#[derive(Debug, Default)]
pub struct CollectEvents(pub Mutex<Vec<String>>);

impl CollectEvents {
    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl EventSink for CollectEvents {
    fn event(&self, event: &Event) {
        if let Ok(mut l) = self.0.lock() {
            l.push(event.to_string());
        }
    }
}
