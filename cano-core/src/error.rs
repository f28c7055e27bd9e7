//! [`CanoError`] and [`CanoResult`]: one error type for tasks, workflows and the scheduler.
//!
//! The variants keep the names and meanings of cano 0.12, so its users feel at home, with two
//! fixes: causes are kept as real [`core::error::Error::source`] chains instead of being
//! flattened into strings ([`CanoError::RetryExhausted`], [`CanoError::External`],
//! [`CanoError::CompensationFailed`]), and messages are `Cow<'static, str>` so the common,
//! static messages allocate nothing (useful on a microcontroller).

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::error::Error;
use core::fmt;

use crate::checkpoint::CheckpointError;
use crate::cron::CronError;
use crate::runtime::SpawnError;
use crate::scheduler::SchedulerError;

/// A message carried by an error variant.
pub type Message = Cow<'static, str>;

/// `Result<T, CanoError>`.
pub type CanoResult<T> = Result<T, CanoError>;

/// Everything that can go wrong in cano.
///
/// ```
/// use cano_core::CanoError;
/// use core::error::Error;
///
/// let cause = CanoError::task_execution("connection refused");
/// let err = CanoError::retry_exhausted(3, cause.clone());
/// assert_eq!(err.category(), "retry_exhausted");
/// assert_eq!(err.to_string(), "Retry exhausted: task failed after 3 attempt(s): Task execution error: connection refused");
/// // The cause is a real source, not a flattened string.
/// assert_eq!(err.source().unwrap().to_string(), cause.to_string());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CanoError {
    /// A task's own work failed.
    TaskExecution(Message),
    /// A store (such as `MemoryStore`) operation failed.
    Store(Message),
    /// The workflow could not proceed (no task for a state, a join not satisfied, …).
    Workflow(Message),
    /// Invalid configuration, detected at registration, validation or start.
    Configuration(Message),
    /// Every attempt of a retried task failed; `source` is the last attempt's error.
    RetryExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        source: Box<CanoError>,
    },
    /// Something took longer than its limit.
    Timeout(Message),
    /// A circuit breaker rejected the call without running it.
    CircuitOpen(Message),
    /// A checkpoint store operation failed; the typed cause says how (conflict, fenced, …).
    CheckpointStore(CheckpointError),
    /// A resumed log was written by another version of the workflow
    /// (`Workflow::with_workflow_version`).
    WorkflowVersionMismatch {
        /// The version in the log.
        stored: u32,
        /// This workflow's version.
        expected: u32,
    },
    /// A rollback failed; `errors[0]` is the original failure, the rest are compensation
    /// failures in the order they happened.
    CompensationFailed {
        /// The original error followed by each compensation error.
        errors: Vec<CanoError>,
    },
    /// An error with no better category.
    Generic(Message),
    /// An error from outside cano, kept whole as the source.
    External {
        /// What cano was doing when it happened.
        context: Message,
        /// The foreign error.
        source: Arc<dyn Error + Send + Sync>,
    },
    /// No resource under the requested key.
    ResourceNotFound(Message),
    /// A resource exists under the key but has another type.
    ResourceTypeMismatch(Message),
    /// A resource key was inserted twice.
    ResourceDuplicateKey(Message),
    /// The run was cancelled cooperatively (a cancellation token, or a scheduler stop).
    Cancelled(Message),
    /// A run could not be spawned on the runtime.
    Spawn(SpawnError),
    /// A rate limiter refused: `tier` names the limit that was reached (a
    /// [`MultiRateLimiter`](crate::rate_limit::MultiRateLimiter) tier, or a limiter's name) and
    /// `retry_after` is how long until it admits again.
    RateLimited {
        /// The limit that refused.
        tier: Message,
        /// How long until it admits again.
        retry_after: core::time::Duration,
    },
    /// A cron expression could not be parsed. Its [`category`](CanoError::category) is
    /// `"configuration"`; the [`CronError`] (field, token, span, what is allowed) is kept
    /// whole as the source.
    InvalidCron(CronError),
    /// The scheduler was misused (not running, unknown flow, duplicate id, …). Its
    /// [`category`](CanoError::category) and text are those of the `Workflow` or
    /// `Configuration` error cano 0.12 gave; the [`SchedulerError`] says which case it is.
    Scheduler(SchedulerError),
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $fn:ident => $variant:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $fn(message: impl Into<Message>) -> Self {
                CanoError::$variant(message.into())
            }
        )*
    };
}

impl CanoError {
    constructors! {
        /// A [`CanoError::TaskExecution`].
        task_execution => TaskExecution,
        /// A [`CanoError::Store`].
        store => Store,
        /// A [`CanoError::Workflow`].
        workflow => Workflow,
        /// A [`CanoError::Configuration`].
        configuration => Configuration,
        /// A [`CanoError::Timeout`].
        timeout => Timeout,
        /// A [`CanoError::CircuitOpen`].
        circuit_open => CircuitOpen,
        /// A [`CanoError::Generic`].
        generic => Generic,
        /// A [`CanoError::ResourceNotFound`].
        resource_not_found => ResourceNotFound,
        /// A [`CanoError::ResourceTypeMismatch`].
        resource_type_mismatch => ResourceTypeMismatch,
        /// A [`CanoError::ResourceDuplicateKey`].
        resource_duplicate_key => ResourceDuplicateKey,
        /// A [`CanoError::Cancelled`].
        cancelled => Cancelled,
    }

    /// A [`CanoError::RetryExhausted`] after `attempts` attempts, the last failing with `last`.
    pub fn retry_exhausted(attempts: u32, last: CanoError) -> Self {
        CanoError::RetryExhausted {
            attempts,
            source: Box::new(last),
        }
    }

    /// A [`CanoError::RateLimited`].
    pub fn rate_limited(tier: impl Into<Message>, retry_after: core::time::Duration) -> Self {
        CanoError::RateLimited {
            tier: tier.into(),
            retry_after,
        }
    }

    /// A [`CanoError::CheckpointStore`] with a [`CheckpointError::Backend`] message.
    pub fn checkpoint_store(message: impl Into<Message>) -> Self {
        CanoError::CheckpointStore(CheckpointError::Backend(message.into()))
    }

    /// A [`CanoError::CompensationFailed`].
    pub fn compensation_failed(errors: Vec<CanoError>) -> Self {
        CanoError::CompensationFailed { errors }
    }

    /// A [`CanoError::External`] wrapping a foreign error with context.
    ///
    /// ```
    /// use cano_core::CanoError;
    /// use core::error::Error;
    ///
    /// #[derive(Debug)]
    /// struct Refused;
    /// impl core::fmt::Display for Refused {
    ///     fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { f.write_str("refused") }
    /// }
    /// impl Error for Refused {}
    ///
    /// let err = CanoError::external("connecting to db", Refused);
    /// assert_eq!(err.to_string(), "connecting to db: refused");
    /// assert!(err.source().unwrap().is::<Refused>());
    /// ```
    pub fn external(
        context: impl Into<Message>,
        source: impl Error + Send + Sync + 'static,
    ) -> Self {
        CanoError::External {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The error's message without its category prefix. For
    /// [`CanoError::CompensationFailed`] this is the original error's message; for
    /// [`CanoError::RetryExhausted`] the last attempt's.
    pub fn message(&self) -> Cow<'_, str> {
        match self {
            CanoError::TaskExecution(m)
            | CanoError::Store(m)
            | CanoError::Workflow(m)
            | CanoError::Configuration(m)
            | CanoError::Timeout(m)
            | CanoError::CircuitOpen(m)
            | CanoError::Generic(m)
            | CanoError::ResourceNotFound(m)
            | CanoError::ResourceTypeMismatch(m)
            | CanoError::ResourceDuplicateKey(m)
            | CanoError::Cancelled(m) => Cow::Borrowed(m.as_ref()),
            CanoError::RetryExhausted { source, .. } => source.message(),
            CanoError::CompensationFailed { errors } => match errors.first() {
                Some(first) => first.message(),
                None => Cow::Borrowed("compensation failed"),
            },
            CanoError::External { context, source } => {
                Cow::Owned(alloc::format!("{context}: {source}"))
            }
            CanoError::Spawn(e) => Cow::Owned(e.to_string()),
            CanoError::InvalidCron(e) => Cow::Owned(e.to_string()),
            CanoError::RateLimited { tier, retry_after } => Cow::Owned(alloc::format!(
                "tier {tier} is at its limit; retry after {} µs",
                // As a `u64` (saturating past 584 000 years): printing a `u128` would link
                // its own formatting code into firmware, 1.5 KB.
                u64::try_from(retry_after.as_micros()).unwrap_or(u64::MAX)
            )),
            CanoError::CheckpointStore(e) => Cow::Owned(e.to_string()),
            CanoError::WorkflowVersionMismatch { stored, expected } => Cow::Owned(alloc::format!(
                "the checkpoint log was written by workflow version {stored}, this workflow is version {expected}"
            )),
            CanoError::Scheduler(e) => Cow::Owned(e.to_string()),
        }
    }

    /// The scheduler misuse this error reports, if it is one.
    pub fn as_scheduler_error(&self) -> Option<&SchedulerError> {
        match self {
            CanoError::Scheduler(e) => Some(e),
            _ => None,
        }
    }

    /// A stable, machine-readable category name (cano 0.12's names, plus `external`,
    /// `cancelled` and `spawn`).
    pub fn category(&self) -> &'static str {
        match self {
            CanoError::TaskExecution(_) => "task_execution",
            CanoError::Store(_) => "store",
            CanoError::Workflow(_) => "workflow",
            CanoError::Configuration(_) => "configuration",
            CanoError::RetryExhausted { .. } => "retry_exhausted",
            CanoError::Timeout(_) => "timeout",
            CanoError::CircuitOpen(_) => "circuit_open",
            CanoError::WorkflowVersionMismatch { .. } => "workflow_version_mismatch",
            CanoError::CheckpointStore(_) => "checkpoint_store",
            CanoError::CompensationFailed { .. } => "compensation_failed",
            CanoError::Generic(_) => "generic",
            CanoError::External { .. } => "external",
            CanoError::ResourceNotFound(_) => "resource_not_found",
            CanoError::ResourceTypeMismatch(_) => "resource_type_mismatch",
            CanoError::ResourceDuplicateKey(_) => "resource_duplicate_key",
            CanoError::Cancelled(_) => "cancelled",
            CanoError::Spawn(_) => "spawn",
            CanoError::InvalidCron(_) => "configuration",
            CanoError::RateLimited { .. } => "rate_limited",
            CanoError::Scheduler(e) => e.category(),
        }
    }
}

impl fmt::Display for CanoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanoError::TaskExecution(m) => write!(f, "Task execution error: {m}"),
            CanoError::Store(m) => write!(f, "Store error: {m}"),
            CanoError::Workflow(m) => write!(f, "Workflow error: {m}"),
            CanoError::Configuration(m) => write!(f, "Configuration error: {m}"),
            CanoError::RetryExhausted { attempts, source } => {
                write!(
                    f,
                    "Retry exhausted: task failed after {attempts} attempt(s): {source}"
                )
            }
            CanoError::Timeout(m) => write!(f, "Timeout error: {m}"),
            CanoError::CircuitOpen(m) => write!(f, "Circuit open: {m}"),
            CanoError::CheckpointStore(e) => write!(f, "Checkpoint store error: {e}"),
            CanoError::WorkflowVersionMismatch { .. } => {
                write!(f, "Workflow version mismatch: {}", self.message())
            }
            CanoError::CompensationFailed { errors } => {
                write!(
                    f,
                    "Compensation failed ({} error(s))",
                    errors.len().saturating_sub(1)
                )?;
                let mut rest = errors.iter();
                if let Some(original) = rest.next() {
                    write!(f, "; original: {original}")?;
                }
                for (i, e) in rest.enumerate() {
                    write!(f, "; compensation #{}: {e}", i + 1)?;
                }
                Ok(())
            }
            CanoError::Generic(m) => write!(f, "Error: {m}"),
            CanoError::External { context, source } => write!(f, "{context}: {source}"),
            CanoError::ResourceNotFound(m) => write!(f, "Resource not found: {m}"),
            CanoError::ResourceTypeMismatch(m) => write!(f, "Resource type mismatch: {m}"),
            CanoError::ResourceDuplicateKey(m) => write!(f, "Resource duplicate key: {m}"),
            CanoError::Cancelled(m) => write!(f, "Cancelled: {m}"),
            CanoError::Spawn(e) => write!(f, "Spawn error: {e}"),
            CanoError::InvalidCron(e) => write!(f, "Configuration error: {e}"),
            CanoError::RateLimited { .. } => write!(f, "Rate limited: {}", self.message()),
            CanoError::Scheduler(e) if e.is_configuration() => {
                write!(f, "Configuration error: {e}")
            }
            CanoError::Scheduler(e) => write!(f, "Workflow error: {e}"),
        }
    }
}

impl Error for CanoError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CanoError::RetryExhausted { source, .. } => Some(source.as_ref()),
            CanoError::External { source, .. } => Some(source.as_ref()),
            CanoError::CompensationFailed { errors } => errors.first().map(|e| e as &dyn Error),
            CanoError::Spawn(e) => Some(e),
            CanoError::InvalidCron(e) => Some(e),
            CanoError::CheckpointStore(e) => Some(e),
            _ => None,
        }
    }
}

/// Equality by category and message; sources compare by their own equality where cano owns
/// them, and by message where they are foreign.
impl PartialEq for CanoError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                CanoError::RetryExhausted {
                    attempts: a,
                    source: s,
                },
                CanoError::RetryExhausted {
                    attempts: b,
                    source: t,
                },
            ) => a == b && s == t,
            (
                CanoError::CompensationFailed { errors: a },
                CanoError::CompensationFailed { errors: b },
            ) => a == b,
            (CanoError::Spawn(a), CanoError::Spawn(b)) => a == b,
            (CanoError::InvalidCron(a), CanoError::InvalidCron(b)) => a == b,
            (
                CanoError::RateLimited {
                    tier: a,
                    retry_after: x,
                },
                CanoError::RateLimited {
                    tier: b,
                    retry_after: y,
                },
            ) => a == b && x == y,
            (CanoError::CheckpointStore(a), CanoError::CheckpointStore(b)) => a == b,
            _ => self.category() == other.category() && self.message() == other.message(),
        }
    }
}

impl Eq for CanoError {}

/// An `f64` in an error message, printed with integer arithmetic (three decimals): reporting
/// a bad value must not link the float printer into firmware (about 12 KB of flash on
/// thumbv7m).
pub(crate) struct Decimal(pub(crate) f64);

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x.is_infinite() {
            return f.write_str(if x > 0.0 { "inf" } else { "-inf" });
        }
        let (sign, magnitude) = if x < 0.0 { ("-", -x) } else { ("", x) };
        // Saturating cast: values beyond u64 print as the largest thousandths value.
        let thousandths = (magnitude * 1000.0 + 0.5) as u64;
        write!(f, "{sign}{}.{:03}", thousandths / 1000, thousandths % 1000)
    }
}

impl From<SpawnError> for CanoError {
    fn from(e: SpawnError) -> Self {
        CanoError::Spawn(e)
    }
}

/// A [`CanoError::InvalidCron`]: a configuration error with the [`CronError`] as its source.
///
/// ```
/// use cano_core::{CanoError, cron::{Cron, CronError}};
/// use core::error::Error;
///
/// let err: CanoError = Cron::parse("61 * * * *").unwrap_err().into();
/// assert_eq!(err.category(), "configuration");
/// assert!(err.to_string().starts_with("Configuration error: invalid cron expression: minute `61`"));
/// assert!(err.source().unwrap().is::<CronError>());
/// ```
impl From<CronError> for CanoError {
    fn from(e: CronError) -> Self {
        CanoError::InvalidCron(e)
    }
}

impl From<&'static str> for CanoError {
    fn from(m: &'static str) -> Self {
        CanoError::Generic(Cow::Borrowed(m))
    }
}

impl From<String> for CanoError {
    fn from(m: String) -> Self {
        CanoError::Generic(Cow::Owned(m))
    }
}

impl From<Box<dyn Error + Send + Sync>> for CanoError {
    fn from(e: Box<dyn Error + Send + Sync>) -> Self {
        CanoError::External {
            context: Cow::Borrowed("error"),
            source: Arc::from(e),
        }
    }
}

#[cfg(feature = "std")]
impl From<std::io::Error> for CanoError {
    fn from(e: std::io::Error) -> Self {
        CanoError::external("IO error", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn decimals_print_without_the_float_printer() {
        assert_eq!(Decimal(0.5).to_string(), "0.500");
        assert_eq!(Decimal(-2.25).to_string(), "-2.250");
        assert_eq!(Decimal(1.0005).to_string(), "1.001");
        assert_eq!(Decimal(f64::NAN).to_string(), "NaN");
        assert_eq!(Decimal(f64::NEG_INFINITY).to_string(), "-inf");
    }

    #[test]
    fn display_uses_the_reference_prefixes() {
        assert_eq!(CanoError::workflow("x").to_string(), "Workflow error: x");
        assert_eq!(
            CanoError::configuration("x").to_string(),
            "Configuration error: x"
        );
        assert_eq!(CanoError::generic("x").to_string(), "Error: x");
        assert_eq!(CanoError::Spawn(SpawnError::PoolFull).category(), "spawn");
    }

    #[test]
    fn compensation_failed_chains_to_the_original_error() {
        let original = CanoError::task_execution("boom");
        let err = CanoError::compensation_failed(vec![
            original.clone(),
            CanoError::timeout("undo took too long"),
        ]);
        assert_eq!(err.message(), "boom");
        assert_eq!(err.source().unwrap().to_string(), original.to_string());
        assert_eq!(
            err.to_string(),
            "Compensation failed (1 error(s)); original: Task execution error: boom; \
             compensation #1: Timeout error: undo took too long"
        );
    }

    #[test]
    fn equality_is_by_category_and_message() {
        assert_eq!(
            CanoError::timeout("a"),
            CanoError::timeout(String::from("a"))
        );
        assert_ne!(CanoError::timeout("a"), CanoError::workflow("a"));
        assert_ne!(
            CanoError::retry_exhausted(2, CanoError::timeout("a")),
            CanoError::retry_exhausted(3, CanoError::timeout("a"))
        );
    }

    #[test]
    fn boxed_foreign_errors_stay_sources() {
        let boxed: Box<dyn Error + Send + Sync> = Box::new(SpawnError::Shutdown);
        let err = CanoError::from(boxed);
        assert!(err.source().unwrap().is::<SpawnError>());
    }
}
