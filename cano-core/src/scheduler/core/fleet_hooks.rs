//! How the core reaches its fleet code: through a table of function pointers that
//! [`SchedulerCore::join_fleet`] installs. The rest of the core calls only the `via_fleet_*`
//! methods below, which answer "no fleet" while no table is installed, so a program that
//! never joins a fleet references none of the fleet's code and the linker drops it (about
//! 14 KB of a firmware's flash). Behaviour is the same as calling the fleet methods
//! directly: each of them answers the same "no fleet" values without a fleet.

use jiff::Timestamp;

use super::fleet::{FleetCounters, FleetDue, FleetEnd, FleetReport};
use super::{Action, RunOutcome, SchedulerCore};
use crate::persist::{Fence, FleetCommandKind, HeardClaim};
use crate::scheduler::runs::RunId;
use crate::time::Instant;

/// The fleet entry points the core calls (each one a `SchedulerCore` method in `fleet.rs`).
pub(in crate::scheduler) struct FleetHooks {
    start: fn(&mut SchedulerCore, Instant),
    poll: fn(&mut SchedulerCore, Instant, Timestamp) -> Option<Action>,
    wake: fn(&SchedulerCore) -> Option<Instant>,
    due: fn(&mut SchedulerCore, usize, i64, Instant) -> FleetDue,
    run_ended: fn(&mut SchedulerCore, RunId, &RunOutcome, bool, Instant) -> FleetEnd,
    publish: fn(&mut SchedulerCore, usize, FleetCommandKind),
    reset_flow: fn(&mut SchedulerCore, usize, Instant),
    fence: fn(&SchedulerCore, usize) -> Fence,
    counters: fn(&SchedulerCore, usize) -> FleetCounters,
    done: fn(&mut SchedulerCore, FleetReport, Instant, Timestamp),
    heard_claim: fn(&mut SchedulerCore, &HeardClaim, Instant),
}

impl core::fmt::Debug for FleetHooks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FleetHooks")
    }
}

/// The fleet's table; referenced only by [`SchedulerCore::join_fleet`].
pub(in crate::scheduler) static FLEET_HOOKS: FleetHooks = FleetHooks {
    start: SchedulerCore::fleet_start,
    poll: SchedulerCore::fleet_poll,
    wake: SchedulerCore::fleet_wake,
    due: SchedulerCore::fleet_due,
    run_ended: SchedulerCore::fleet_run_ended,
    publish: SchedulerCore::fleet_publish,
    reset_flow: SchedulerCore::fleet_reset_flow,
    fence: SchedulerCore::fleet_fence,
    counters: SchedulerCore::fleet_counters,
    done: SchedulerCore::fleet_done,
    heard_claim: SchedulerCore::fleet_hear_claim,
};

impl SchedulerCore {
    /// The ledger announced that `heard.node` won the claim of `heard.fire` (or took it
    /// over), heard at `now`: the peer counts as live for
    /// [`peer_ttl`](crate::scheduler::FleetConfig::peer_ttl), and this node drops its own
    /// claim of the fire if one is waiting (staggered or queued), counting the fire as run
    /// elsewhere. A claim heard before the fire comes due here is remembered (a few) for
    /// when it does. This node's own claims are ignored, and so is every claim before
    /// [`join_fleet`](Self::join_fleet).
    pub fn fleet_heard_claim(&mut self, heard: &HeardClaim, now: Instant) {
        if let Some(hooks) = self.fleet_hooks {
            (hooks.heard_claim)(self, heard, now);
        }
    }

    pub(super) fn via_fleet_start(&mut self, now: Instant) {
        if let Some(hooks) = self.fleet_hooks {
            (hooks.start)(self, now);
        }
    }

    pub(super) fn via_fleet_poll(&mut self, now: Instant, wall: Timestamp) -> Option<Action> {
        (self.fleet_hooks?.poll)(self, now, wall)
    }

    pub(super) fn via_fleet_wake(&self) -> Option<Instant> {
        (self.fleet_hooks?.wake)(self)
    }

    pub(super) fn via_fleet_due(&mut self, i: usize, at: i64, now: Instant) -> FleetDue {
        match self.fleet_hooks {
            Some(hooks) => (hooks.due)(self, i, at, now),
            None => FleetDue::Local(Fence::ZERO),
        }
    }

    pub(super) fn via_fleet_run_ended(
        &mut self,
        run: RunId,
        outcome: &RunOutcome,
        requested: bool,
        now: Instant,
    ) -> FleetEnd {
        match self.fleet_hooks {
            Some(hooks) => (hooks.run_ended)(self, run, outcome, requested, now),
            None => FleetEnd::Write,
        }
    }

    pub(super) fn via_fleet_publish(&mut self, i: usize, kind: FleetCommandKind) {
        if let Some(hooks) = self.fleet_hooks {
            (hooks.publish)(self, i, kind);
        }
    }

    pub(super) fn via_fleet_reset_flow(&mut self, i: usize, now: Instant) {
        if let Some(hooks) = self.fleet_hooks {
            (hooks.reset_flow)(self, i, now);
        }
    }

    pub(super) fn via_fleet_fence(&self, i: usize) -> Fence {
        self.fleet_hooks
            .map_or(Fence::ZERO, |hooks| (hooks.fence)(self, i))
    }

    pub(super) fn via_fleet_counters(&self, i: usize) -> FleetCounters {
        self.fleet_hooks
            .map_or_else(FleetCounters::default, |hooks| (hooks.counters)(self, i))
    }

    /// [`fleet_done`](Self::fleet_done) through the table: how the async driver hands a
    /// ledger call's answer over (a driver without a fleet makes no calls).
    pub(in crate::scheduler) fn via_fleet_done(
        &mut self,
        report: FleetReport,
        now: Instant,
        wall: Timestamp,
    ) {
        if let Some(hooks) = self.fleet_hooks {
            (hooks.done)(self, report, now, wall);
        }
    }
}
