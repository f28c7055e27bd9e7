//! Which of a pass's runs the driver polls on its own task before it spawns them
//! ([`RunStart::Inline`](crate::schedule::RunStart::Inline)): the time a pass may spend
//! on such polls, and which poll was slow enough to move its flow to spawned runs.

use crate::schedule::INLINE_START_BUDGET;
use crate::time::Instant;

use super::Dispatch;

/// One pass of the driver's loop over the runs the core dispatched. Pure: the driver reads
/// the clock around each inline poll and hands the readings in.
#[derive(Debug, Default)]
pub(crate) struct InlinePass {
    /// Time spent on this pass's inline polls so far, in µs.
    spent: u64,
}

/// What one inline poll's duration means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    /// Within the budget.
    Quick,
    /// Over it: the flow's later runs are spawned
    /// ([`SchedulerCore::spawn_later_runs`](super::SchedulerCore::spawn_later_runs)).
    Slow,
}

impl InlinePass {
    /// Whether the driver polls `dispatch`'s run itself first: its flow starts runs inline
    /// and this pass has not spent its budget on inline polls yet.
    pub(crate) fn polls_first(&self, dispatch: &Dispatch) -> bool {
        dispatch.inline && self.spent <= budget_micros()
    }

    /// An inline poll ran from `began` to `ended`.
    pub(crate) fn polled(&mut self, began: Instant, ended: Instant) -> Polled {
        let took = ended.saturating_duration_since(began).as_micros();
        let took = u64::try_from(took).unwrap_or(u64::MAX);
        self.spent = self.spent.saturating_add(took);
        if took > budget_micros() {
            Polled::Slow
        } else {
            Polled::Quick
        }
    }
}

fn budget_micros() -> u64 {
    INLINE_START_BUDGET.as_micros() as u64
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::persist::Fence;
    use crate::scheduler::core::FlowIndex;
    use crate::scheduler::job::FireId;
    use crate::scheduler::runs::RunTable;

    fn dispatch(inline: bool) -> Dispatch {
        let run = RunTable::default().insert(0, 0, Instant::ZERO);
        Dispatch {
            run,
            flow: FlowIndex(0),
            fire: FireId::new("flow", jiff::Timestamp::UNIX_EPOCH),
            fence: Fence::ZERO,
            takeover: false,
            inline,
        }
    }

    fn at(micros: u64) -> Instant {
        Instant::ZERO + Duration::from_micros(micros)
    }

    #[test]
    fn a_poll_over_the_budget_is_slow_and_one_within_it_is_not() {
        let mut pass = InlinePass::default();
        assert_eq!(pass.polled(at(0), at(50)), Polled::Quick);
        assert_eq!(pass.polled(at(50), at(101)), Polled::Slow);
    }

    #[test]
    fn a_pass_polls_inline_until_its_polls_spent_the_budget() {
        let mut pass = InlinePass::default();
        assert!(pass.polls_first(&dispatch(true)));
        assert!(
            !pass.polls_first(&dispatch(false)),
            "a Spawned flow is spawned"
        );
        for i in 0..5 {
            assert_eq!(pass.polled(at(i * 10), at(i * 10 + 10)), Polled::Quick);
            assert!(
                pass.polls_first(&dispatch(true)),
                "{} µs spent",
                i * 10 + 10
            );
        }
        assert_eq!(pass.polled(at(50), at(51)), Polled::Quick);
        assert!(
            !pass.polls_first(&dispatch(true)),
            "51 µs spent: the rest of the pass is spawned"
        );
    }

    #[test]
    fn a_clock_that_went_back_counts_nothing() {
        let mut pass = InlinePass::default();
        assert_eq!(pass.polled(at(100), at(0)), Polled::Quick);
        assert!(pass.polls_first(&dispatch(true)));
    }
}
