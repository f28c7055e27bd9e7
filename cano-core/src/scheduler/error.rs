//! [`SchedulerError`]: every way of misusing a scheduler, as a type.
//!
//! The scheduler's methods return [`CanoError`]; a misuse is its
//! [`CanoError::Scheduler`] variant, whose text and [`category`](CanoError::category) are
//! those of cano 0.12's `Workflow` ("Workflow error: …") or `Configuration`
//! ("Configuration error: …") errors. Match on the variant or use the predicates instead of
//! comparing strings:
//!
//! ```
//! use cano_core::scheduler::{job_fn, Scheduler, SchedulerError};
//!
//! let mut s = Scheduler::new();
//! s.manual("report", job_fn(|(), _| async { Ok(()) }), ()).unwrap();
//! let err = s.manual("report", job_fn(|(), _| async { Ok(()) }), ()).unwrap_err();
//! assert!(err.as_scheduler_error().is_some_and(SchedulerError::is_duplicate_flow));
//! assert_eq!(err.to_string(), "Configuration error: Flow 'report' already exists");
//! assert_eq!(err.category(), "configuration");
//! ```

use alloc::borrow::Cow;
use alloc::boxed::Box;
use core::fmt;

use crate::error::CanoError;

/// A misuse of the scheduler (or of its core): what was asked, and why it cannot be done.
///
/// Registration mistakes ([`is_configuration`](Self::is_configuration)) convert into
/// errors of category `"configuration"`, the rest into `"workflow"`, with cano 0.12's
/// messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedulerError {
    /// A command before `start()` (only possible on a bare [`SchedulerCore`](super::SchedulerCore)).
    NotStarted,
    /// A command after `stop()` began (during its grace period too).
    Stopped,
    /// No flow has this id.
    UnknownFlow {
        /// The id asked for.
        id: Box<str>,
    },
    /// The flow is tripped: only `reset_flow` lets it run again.
    Tripped {
        /// The flow.
        id: Box<str>,
    },
    /// The flow has as many runs in flight as its overlap policy allows (and cannot buffer
    /// another).
    AlreadyRunning {
        /// The flow.
        id: Box<str>,
    },
    /// A flow with this id is already registered.
    DuplicateFlow {
        /// The id.
        id: Box<str>,
    },
    /// A flow id is empty.
    EmptyFlowId,
    /// An `every` interval of zero.
    ZeroInterval {
        /// The flow.
        id: Box<str>,
    },
    /// More flows than a scheduler can hold (`u32::MAX`).
    TooManyFlows,
    /// A setter named a flow that is not registered.
    UnknownFlowInSetter {
        /// The id asked for.
        id: Box<str>,
        /// What was being set ("backoff", "schedule policy").
        setting: &'static str,
    },
    /// A flow was added after `start()`.
    AddAfterStart,
    /// A setting was changed after `start()`.
    SetAfterStart {
        /// What was being set.
        setting: &'static str,
    },
    /// A policy failed its validation (`BackoffPolicy::validate`,
    /// `SchedulePolicy::validate`); the text says what is wrong.
    InvalidPolicy {
        /// What is wrong.
        reason: Cow<'static, str>,
    },
    /// A run outcome for a run the core does not know (a driver bug: reported twice, or
    /// from another core).
    UnknownRun,
    /// The scheduler's loop was dropped before it finished (its runtime shut down).
    DriverGone,
}

impl SchedulerError {
    /// Whether the scheduler does not accept commands: not started, or stopped.
    pub fn is_not_running(&self) -> bool {
        matches!(self, SchedulerError::NotStarted | SchedulerError::Stopped)
    }

    /// Whether the scheduler was stopped (or is stopping).
    pub fn is_stopped(&self) -> bool {
        matches!(self, SchedulerError::Stopped)
    }

    /// Whether no flow has the id (in a command or a setter).
    pub fn is_unknown_flow(&self) -> bool {
        matches!(
            self,
            SchedulerError::UnknownFlow { .. } | SchedulerError::UnknownFlowInSetter { .. }
        )
    }

    /// Whether the flow is tripped.
    pub fn is_tripped(&self) -> bool {
        matches!(self, SchedulerError::Tripped { .. })
    }

    /// Whether the flow is already running at its overlap limit.
    pub fn is_already_running(&self) -> bool {
        matches!(self, SchedulerError::AlreadyRunning { .. })
    }

    /// Whether a flow with the id already exists.
    pub fn is_duplicate_flow(&self) -> bool {
        matches!(self, SchedulerError::DuplicateFlow { .. })
    }

    /// Whether this is a registration mistake (category `"configuration"`).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            SchedulerError::DuplicateFlow { .. }
                | SchedulerError::EmptyFlowId
                | SchedulerError::ZeroInterval { .. }
                | SchedulerError::TooManyFlows
                | SchedulerError::UnknownFlowInSetter { .. }
                | SchedulerError::AddAfterStart
                | SchedulerError::SetAfterStart { .. }
                | SchedulerError::InvalidPolicy { .. }
        )
    }

    /// The category of the [`CanoError`] this converts into: `"configuration"` or
    /// `"workflow"`.
    pub fn category(&self) -> &'static str {
        if self.is_configuration() {
            "configuration"
        } else {
            "workflow"
        }
    }

    pub(crate) fn unknown_flow(id: &str) -> Self {
        SchedulerError::UnknownFlow { id: id.into() }
    }

    /// Keeps a policy's validation message (a [`CanoError::Configuration`]).
    pub(crate) fn invalid_policy(error: CanoError) -> Self {
        let reason = match error {
            CanoError::Configuration(message) => message,
            other => Cow::Owned(alloc::string::ToString::to_string(&other.message())),
        };
        SchedulerError::InvalidPolicy { reason }
    }
}

/// The message, without the category prefix the [`CanoError`] adds.
impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedulerError::NotStarted => f.write_str("Scheduler not running — call start() first"),
            SchedulerError::Stopped => f.write_str("Scheduler not running — it was stopped"),
            SchedulerError::UnknownFlow { id } => {
                write!(f, "No workflow registered with id '{id}'")
            }
            SchedulerError::Tripped { id } => {
                write!(
                    f,
                    "Flow '{id}' is tripped — call reset_flow before triggering"
                )
            }
            SchedulerError::AlreadyRunning { id } => write!(f, "Flow '{id}' is already running"),
            SchedulerError::DuplicateFlow { id } => write!(f, "Flow '{id}' already exists"),
            SchedulerError::EmptyFlowId => f.write_str("a flow id must not be empty"),
            SchedulerError::ZeroInterval { id } => {
                write!(f, "Flow '{id}': interval must be greater than zero")
            }
            SchedulerError::TooManyFlows => f.write_str("too many flows"),
            SchedulerError::UnknownFlowInSetter { id, setting } => {
                write!(f, "Flow '{id}' not found — cannot set {setting}")
            }
            SchedulerError::AddAfterStart => f.write_str("flows can only be added before start()"),
            SchedulerError::SetAfterStart { setting } => {
                write!(f, "cannot set {setting} after start()")
            }
            SchedulerError::InvalidPolicy { reason } => f.write_str(reason),
            SchedulerError::UnknownRun => {
                f.write_str("a run ended for a flow with no run in flight")
            }
            SchedulerError::DriverGone => f.write_str(
                "Scheduler driver task terminated unexpectedly without publishing a result",
            ),
        }
    }
}

impl core::error::Error for SchedulerError {}

impl From<SchedulerError> for CanoError {
    fn from(error: SchedulerError) -> Self {
        CanoError::Scheduler(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// Every variant keeps cano 0.12's category and text through the conversion.
    #[test]
    fn conversion_keeps_category_and_message() {
        let id = || Box::<str>::from("f");
        let cases = [
            (
                SchedulerError::NotStarted,
                "Workflow error: Scheduler not running — call start() first",
            ),
            (
                SchedulerError::Stopped,
                "Workflow error: Scheduler not running — it was stopped",
            ),
            (
                SchedulerError::UnknownFlow { id: id() },
                "Workflow error: No workflow registered with id 'f'",
            ),
            (
                SchedulerError::Tripped { id: id() },
                "Workflow error: Flow 'f' is tripped — call reset_flow before triggering",
            ),
            (
                SchedulerError::AlreadyRunning { id: id() },
                "Workflow error: Flow 'f' is already running",
            ),
            (
                SchedulerError::DuplicateFlow { id: id() },
                "Configuration error: Flow 'f' already exists",
            ),
            (
                SchedulerError::EmptyFlowId,
                "Configuration error: a flow id must not be empty",
            ),
            (
                SchedulerError::ZeroInterval { id: id() },
                "Configuration error: Flow 'f': interval must be greater than zero",
            ),
            (
                SchedulerError::UnknownFlowInSetter {
                    id: id(),
                    setting: "backoff",
                },
                "Configuration error: Flow 'f' not found — cannot set backoff",
            ),
            (
                SchedulerError::AddAfterStart,
                "Configuration error: flows can only be added before start()",
            ),
            (
                SchedulerError::SetAfterStart { setting: "backoff" },
                "Configuration error: cannot set backoff after start()",
            ),
            (
                SchedulerError::UnknownRun,
                "Workflow error: a run ended for a flow with no run in flight",
            ),
        ];
        for (error, text) in cases {
            let category = error.category();
            let converted = CanoError::from(error.clone());
            assert_eq!(converted.to_string(), text);
            assert_eq!(converted.category(), category);
            assert_eq!(converted.as_scheduler_error(), Some(&error));
            // Equal to the plain error cano 0.12 would have built.
            let (_, message) = text.split_once(": ").unwrap();
            let plain = if category == "configuration" {
                CanoError::configuration(message.to_string())
            } else {
                CanoError::workflow(message.to_string())
            };
            assert_eq!(converted, plain);
        }
        let policy = SchedulerError::invalid_policy(CanoError::configuration("needs n >= 1"));
        assert_eq!(
            CanoError::from(policy).to_string(),
            "Configuration error: needs n >= 1"
        );
    }
}
