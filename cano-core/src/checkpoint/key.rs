//! Stable names for states ([`StateKey`]) and the [`IdempotencyKey`] a task reads.

use alloc::borrow::Cow;
use core::fmt;

use super::RunId;

/// A state's stable name in checkpoint logs.
///
/// A checkpointed workflow's states implement it; the key is what a log row records, so
/// renaming a variant, changing its `Debug` output or reordering an enum does not break
/// resuming old logs, as long as the key stays. Keys must be unique among a workflow's
/// states (validation checks it); a log naming a key the workflow no longer has fails
/// [`resume_from_with`](crate::Workflow::resume_from_with) with an error naming the key.
///
/// ```
/// use cano_core::checkpoint::StateKey;
/// use std::borrow::Cow;
///
/// #[derive(Debug, Clone, PartialEq, Eq, Hash)]
/// enum Order { Reserve, Charge, Ship(u8), Done }
///
/// impl StateKey for Order {
///     fn state_key(&self) -> Cow<'static, str> {
///         match self {
///             Order::Reserve => "reserve".into(),
///             Order::Charge => "charge".into(),
///             // A state with data names its data too.
///             Order::Ship(dock) => format!("ship-{dock}").into(),
///             Order::Done => "done".into(),
///         }
///     }
/// }
/// assert_eq!(Order::Ship(3).state_key(), "ship-3");
/// ```
pub trait StateKey {
    /// The stable key of this state.
    fn state_key(&self) -> Cow<'static, str>;
}

/// The key under which a task makes its side effects effectively-once: the run, the visit
/// (the sequence of the log row the attempt's work follows: the state's entry row, or for a
/// stepped task's later steps its newest cursor row), the state's key and the attempt
/// (1-based).
///
/// A resumed run re-enters the state that was in flight under its original entry row, so the
/// re-run's first attempt has the same key as the crashed run's first attempt. Displays as
/// `run/visit/state/attempt`; use [`visit_key`](Self::visit_key) for a key shared by all
/// attempts of one visit.
///
/// ```
/// use cano_core::checkpoint::{IdempotencyKey, RunId};
///
/// let run = RunId::new("order-42");
/// let key = IdempotencyKey::new(&run, 3, "charge", 2);
/// assert_eq!(key.to_string(), "order-42/3/charge/2");
/// assert_eq!(key.visit_key().to_string(), "order-42/3/charge");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdempotencyKey<'a> {
    run: &'a RunId,
    visit: u64,
    state: &'a str,
    attempt: u32,
}

impl<'a> IdempotencyKey<'a> {
    /// A key.
    pub fn new(run: &'a RunId, visit: u64, state: &'a str, attempt: u32) -> Self {
        IdempotencyKey {
            run,
            visit,
            state,
            attempt,
        }
    }

    /// The run.
    pub fn run(&self) -> &'a RunId {
        self.run
    }

    /// The sequence of the log row this work follows (see the type's docs).
    pub fn visit(&self) -> u64 {
        self.visit
    }

    /// The state's stable key.
    pub fn state(&self) -> &'a str {
        self.state
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The key without the attempt: the same for every retry of one visit.
    pub fn visit_key(&self) -> VisitKey<'a> {
        VisitKey(*self)
    }
}

impl fmt::Display for IdempotencyKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.run, self.visit, self.state, self.attempt
        )
    }
}

/// [`IdempotencyKey::visit_key`]: displays as `run/visit/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VisitKey<'a>(IdempotencyKey<'a>);

impl fmt::Display for VisitKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.0.run, self.0.visit, self.0.state)
    }
}
