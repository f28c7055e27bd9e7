//! [`FlowInfo`]: a snapshot of one flow, as `status` and `list` report it.

use alloc::string::String;

use jiff::Timestamp;

use crate::scheduler::flow::Status;

/// A snapshot of one flow (cano 0.12's fields, in jiff types, plus the next fire and
/// counters of missed and skipped fires, and of what a fleet did with its fires).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowInfo {
    /// The flow's id.
    pub id: String,
    /// What it is doing.
    pub status: Status,
    /// Runs started since `start()` (stamped when a run starts, as in cano 0.12).
    pub run_count: u64,
    /// When the last run started.
    pub last_run: Option<Timestamp>,
    /// Consecutive failures.
    pub failure_streak: u32,
    /// The end of the open backoff window, if any.
    pub next_eligible: Option<Timestamp>,
    /// The next scheduled fire (before jitter), if the flow is waiting for one: `None` for
    /// manual, paused, tripped or stopped flows, for a fixed-delay flow with a run in flight,
    /// and for a cron expression with no further match.
    pub next_fire: Option<Timestamp>,
    /// Fires dropped by the missed-fire policy.
    pub missed_fires: u64,
    /// Fires that came due inside a backoff window and were suppressed.
    pub skipped_fires: u64,
    /// Fleet mode: fires this node did not run because another node claimed or ran them,
    /// the ledger refused them (at or below the flow's high-water mark), the flow was at
    /// its overlap limit across the fleet, or (fixed-delay and fixed-rate flows) another
    /// node owns the flow. Always 0 outside a fleet.
    pub fires_elsewhere: u64,
    /// Fleet mode: fires this node found given up after too many takeovers.
    pub fires_abandoned: u64,
    /// Fleet mode: fires this node took over from a node whose lease expired.
    pub takeovers: u64,
    /// Fleet mode: leases (claims or the flow's ownership lease) this node stopped trusting
    /// before its run ended (a renewal failed or came back too late); such a run is
    /// cancelled and nothing of its outcome is written.
    pub lease_losses: u64,
}
