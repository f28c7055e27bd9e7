//! Property tests: a join is satisfied exactly when its strategy says, and retries make
//! exactly the attempts, with exactly the pauses, that their RetryMode prescribes.

mod workflow_support;

use std::sync::Arc;
use std::time::Duration;

use cano_core::random::SplitMix64;
use cano_core::testing::Simulation;
use cano_core::{
    JoinConfig, JoinDecision, JoinStrategy, JoinTracker, RetryMode, TaskConfig, Workflow,
};
use proptest::prelude::*;
use workflow_support::{Job, Outcome, St, run_in};

fn strategy() -> impl Strategy<Value = JoinStrategy> {
    prop_oneof![
        Just(JoinStrategy::All),
        Just(JoinStrategy::Any),
        (0usize..10).prop_map(JoinStrategy::Quorum),
        (1u32..=100).prop_map(|p| JoinStrategy::Percentage(f64::from(p) / 100.0)),
        (0usize..10).prop_map(JoinStrategy::PartialResults),
    ]
}

proptest! {
    /// Feeding outcomes one by one, the first decided verdict equals the strategy's verdict
    /// on the complete list: deciding early never changes the answer.
    #[test]
    fn the_first_decision_is_the_final_one(
        strategy in strategy(),
        outcomes in prop::collection::vec(any::<bool>(), 0..12),
    ) {
        let total = outcomes.len();
        let successes = outcomes.iter().filter(|ok| **ok).count();
        let expected = strategy.is_satisfied(successes, total);
        let mut tracker = JoinTracker::new(strategy, total);
        let mut decision = if total == 0 { tracker.decision() } else { JoinDecision::Pending };
        for ok in &outcomes {
            if decision != JoinDecision::Pending {
                break;
            }
            decision = tracker.record(*ok);
        }
        prop_assert_ne!(decision, JoinDecision::Pending, "every branch reported: decided");
        prop_assert_eq!(decision == JoinDecision::Satisfied, expected);
    }

    /// PartialTimeout is satisfied at the timeout exactly when some branch completed, and
    /// when every branch completes, exactly when there was at least one.
    #[test]
    fn partial_timeout_needs_one_completion(completed in 0usize..8, extra in 0usize..8) {
        let total = completed + extra;
        let mut tracker = JoinTracker::new(JoinStrategy::PartialTimeout, total);
        for i in 0..completed {
            let decision = tracker.record(i % 2 == 0);
            prop_assert_eq!(
                decision,
                if i + 1 == total { JoinDecision::Satisfied } else { JoinDecision::Pending }
            );
        }
        let at_timeout = tracker.on_timeout();
        prop_assert_eq!(at_timeout == JoinDecision::Satisfied, completed > 0);
    }

    /// The same property end to end: a split of branches that succeed or fail, completing at
    /// distinct times, reaches its join state exactly when the strategy is satisfied by the
    /// full outcome list.
    #[test]
    fn a_split_joins_exactly_when_its_strategy_is_satisfied(
        strategy in strategy(),
        outcomes in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let total = outcomes.len();
        prop_assume!(strategy.required(total) <= total); // validation rejects the others
        let successes = outcomes.iter().filter(|ok| **ok).count();
        let sim = Simulation::new();
        let clock = sim.clock();
        let jobs: Vec<Job> = outcomes
            .iter()
            .enumerate()
            .map(|(i, ok)| {
                let job = if *ok { Job::ok(St::A) } else { Job::fail("no") };
                job.sleeping(&clock, Duration::from_secs(i as u64 + 1))
            })
            .collect();
        let wf = Workflow::bare()
            .register_split(St::Fan, jobs, JoinConfig::new(strategy, St::Done))
            .add_exit_state(St::Done);
        let (result, _) = run_in(&sim, &wf, St::Fan);
        prop_assert_eq!(result.is_ok(), strategy.is_satisfied(successes, total), "{:?}", result);
    }

    /// A task failing `failures` times under `mode` is attempted min(failures + 1,
    /// max_attempts) times, and the pauses between attempts are exactly the mode's delays
    /// drawn from an identically seeded source.
    #[test]
    fn retries_make_the_prescribed_attempts_with_the_prescribed_pauses(
        failures in 0usize..6,
        retries in 0usize..5,
        base_ms in 0u64..2_000,
        multiplier in 0.5f64..4.0,
        max_ms in 0u64..10_000,
        jitter in 0.0f64..1.0,
        fixed in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mode = if fixed {
            RetryMode::fixed(retries, Duration::from_millis(base_ms))
        } else {
            RetryMode::exponential_custom(
                retries,
                Duration::from_millis(base_ms),
                multiplier,
                Duration::from_millis(max_ms),
                jitter,
            )
        };
        let sim = Simulation::new();
        let clock = sim.clock();
        let mut script: Vec<Outcome> = (0..failures).map(|_| Outcome::Fail("x")).collect();
        script.push(Outcome::Next(St::Done));
        let job = Job::new(script)
            .sleeping(&clock, Duration::ZERO)
            .with_config(TaskConfig::minimal().with_retry(mode.clone()));
        let started = job.started_at.clone();
        let wf = Workflow::bare()
            .register(St::A, job)
            .add_exit_state(St::Done)
            .with_random_source(Arc::new(SplitMix64::new(seed)));
        let (result, _) = run_in(&sim, &wf, St::A);

        let attempts = (failures + 1).min(mode.max_attempts());
        let started = started.lock().unwrap().clone();
        prop_assert_eq!(started.len(), attempts);
        prop_assert_eq!(result.is_ok(), failures < mode.max_attempts());

        let oracle = SplitMix64::new(seed);
        for (i, pair) in started.windows(2).enumerate() {
            let expected = mode.delay_for_attempt(i as u32, &oracle).expect("a retry has a delay");
            prop_assert_eq!(pair[1] - pair[0], expected, "pause before retry {}", i);
        }
    }
}
