//! Retries, attempt timeouts and circuit breakers (cano 0.12 §1.3, §4.1; checklist items 1
//! and 2), all on the fake clock.

mod workflow_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cano_core::random::{RandomSource, SplitMix64};
use cano_core::testing::Simulation;
use cano_core::{
    CanoError, CircuitBreaker, CircuitPolicy, CircuitState, Clock, Instant, RetryMode, TaskConfig,
    Workflow, run_with_retries,
};
use workflow_support::{Job, Outcome, Recorder, St, run, run_in, single as single_with_calls};

fn single_wf(job: Job) -> Workflow<St> {
    single_with_calls(job).0
}

#[test]
fn the_default_config_retries_three_times_exponentially_with_ten_percent_jitter() {
    let config = TaskConfig::default();
    assert_eq!(config.retry_mode.max_attempts(), 4);
    let sim = Simulation::new();
    let clock = sim.clock();
    let job = Job::flaky(3, St::Done).sleeping(&clock, Duration::ZERO);
    let job = Job { config, ..job };
    let started = job.started_at.clone();
    let wf = single_wf(job);
    assert_eq!(run_in(&sim, &wf, St::A).0, Ok(St::Done));
    let at: Vec<u64> = started
        .lock()
        .unwrap()
        .iter()
        .map(|i| i.as_millis())
        .collect();
    let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, base) in gaps.iter().zip([100u64, 200, 400]) {
        let (low, high) = (base * 9 / 10, base * 11 / 10);
        assert!(
            (low..=high).contains(gap),
            "gap {gap} ms outside ±10 % of {base} ms"
        );
    }
    assert_eq!(gaps.len(), 3);
}

#[test]
fn retry_exhausted_only_when_more_than_one_attempt_and_keeps_its_cause() {
    let wf = single_wf(Job::fail("nope").with_config(TaskConfig::minimal()));
    assert_eq!(run(&wf, St::A).0, Err(CanoError::task_execution("nope")));

    let wf = single_wf(
        Job::fail("nope").with_config(TaskConfig::new().with_fixed_retry(2, Duration::ZERO)),
    );
    let err = run(&wf, St::A).0.unwrap_err();
    assert_eq!(
        err,
        CanoError::retry_exhausted(3, CanoError::task_execution("nope"))
    );
    let source = std::error::Error::source(&err).expect("the cause is a source");
    assert_eq!(source.to_string(), "Task execution error: nope");
}

#[test]
fn fixed_retries_wait_exactly_their_delay() {
    let job = Job::flaky(2, St::Done)
        .with_config(TaskConfig::new().with_fixed_retry(2, Duration::from_millis(250)));
    let calls = job.calls();
    let (result, took) = run(&single_wf(job), St::A);
    assert_eq!(result, Ok(St::Done));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(took, Duration::from_millis(500));
}

#[test]
fn exponential_delays_double_and_cap() {
    let mode = RetryMode::exponential_custom(
        6,
        Duration::from_millis(100),
        2.0,
        Duration::from_millis(500),
        0.0,
    );
    let rng = SplitMix64::new(9);
    let delays: Vec<Option<u128>> = (0..7)
        .map(|i| mode.delay_for_attempt(i, &rng).map(|d| d.as_millis()))
        .collect();
    assert_eq!(
        delays,
        [
            Some(100),
            Some(200),
            Some(400),
            Some(500),
            Some(500),
            Some(500),
            None
        ]
    );
    assert_eq!(RetryMode::None.delay_for_attempt(0, &rng), None);
    assert_eq!(
        RetryMode::fixed(1, Duration::from_secs(1)).delay_for_attempt(1, &rng),
        None
    );
}

#[test]
fn jitter_is_clamped_even_when_the_enum_is_built_directly() {
    let rng = SplitMix64::new(3);
    let wild = RetryMode::ExponentialBackoff {
        max_retries: 1,
        base_delay: Duration::from_millis(1_000),
        multiplier: 2.0,
        max_delay: Duration::from_secs(10),
        jitter: 7.5,
    };
    for _ in 0..1_000 {
        let d = wild.delay_for_attempt(0, &rng).unwrap().as_millis();
        assert!(d <= 2_000, "{d}");
    }
    assert_eq!(
        RetryMode::exponential_custom(
            1,
            Duration::from_secs(1),
            2.0,
            Duration::from_secs(1),
            f64::NAN
        ),
        RetryMode::exponential_custom(1, Duration::from_secs(1), 2.0, Duration::from_secs(1), 0.0)
    );
    // Absurd parameters saturate instead of panicking.
    let huge = RetryMode::exponential_custom(100, Duration::MAX, f64::MAX, Duration::MAX, 1.0);
    assert!(huge.delay_for_attempt(99, &rng).is_some());
}

#[test]
fn jitter_is_reproducible_with_a_seeded_source() {
    let run_with_seed = |seed| {
        let sim = Simulation::new();
        let clock = sim.clock();
        let job = Job::flaky(3, St::Done)
            .sleeping(&clock, Duration::ZERO)
            .with_config(TaskConfig::new().with_retry(RetryMode::exponential_custom(
                3,
                Duration::from_millis(1_000),
                2.0,
                Duration::from_secs(60),
                0.5,
            )));
        let started = job.started_at.clone();
        let wf = single_wf(job).with_random_source(Arc::new(SplitMix64::new(seed)));
        run_in(&sim, &wf, St::A).0.unwrap();
        started.lock().unwrap().clone()
    };
    assert_eq!(run_with_seed(42), run_with_seed(42));
    assert_ne!(run_with_seed(42), run_with_seed(43));
}

#[test]
fn each_attempt_gets_a_fresh_timeout_and_timeouts_are_retried() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let job = Job::ok(St::Done)
        .sleeping(&clock, Duration::from_secs(10))
        .with_config(
            TaskConfig::new()
                .with_fixed_retry(2, Duration::from_secs(1))
                .with_attempt_timeout(Duration::from_secs(2)),
        );
    let calls = job.calls();
    let (result, took) = run_in(&sim, &single_wf(job), St::A);
    let err = result.unwrap_err();
    let CanoError::RetryExhausted {
        attempts: 3,
        source,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(source.category(), "timeout");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // 3 attempts of 2 s plus 2 pauses of 1 s.
    assert_eq!(took, Duration::from_secs(8));
}

#[test]
fn a_panic_is_an_error_of_its_state_and_is_never_retried() {
    let job = Job::new([Outcome::Panic])
        .with_config(TaskConfig::new().with_fixed_retry(5, Duration::ZERO));
    let calls = job.calls();
    let err = run(&single_wf(job), St::A).0.unwrap_err();
    assert_eq!(err.category(), "task_execution");
    assert!(err.message().contains("panic: job job exploded"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

fn breaker(threshold: u32, reset: Duration, half_open: u32) -> Arc<CircuitBreaker> {
    Arc::new(
        CircuitBreaker::new(CircuitPolicy {
            failure_threshold: threshold,
            reset_timeout: reset,
            half_open_max_calls: half_open,
        })
        .unwrap(),
    )
}

#[test]
fn an_open_breaker_short_circuits_without_running_or_consuming_retries() {
    let b = breaker(1, Duration::from_secs(30), 1);
    b.try_acquire(Instant::ZERO)
        .unwrap()
        .record_failure(Instant::ZERO);
    let job = Job::ok(St::Done).with_config(
        TaskConfig::new()
            .with_fixed_retry(3, Duration::from_secs(1))
            .with_circuit_breaker(b.clone()),
    );
    let calls = job.calls();
    let recorder = Arc::new(Recorder::default());
    let wf = single_wf(job).with_observer(recorder.clone());
    let (result, took) = run(&wf, St::A);
    let err = result.unwrap_err();
    assert_eq!(err.category(), "circuit_open"); // never wrapped in RetryExhausted
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(took, Duration::ZERO);
    assert_eq!(
        recorder.events(),
        [
            "enter A",
            "start job",
            "circuit-open job",
            "failure job: circuit_open"
        ]
    );
}

#[test]
fn a_breaker_that_trips_mid_loop_ends_the_retries() {
    let b = breaker(2, Duration::from_secs(30), 1);
    let job = Job::fail("down").with_config(
        TaskConfig::new()
            .with_fixed_retry(5, Duration::from_secs(1))
            .with_circuit_breaker(b.clone()),
    );
    let calls = job.calls();
    let err = run(&single_wf(job), St::A).0.unwrap_err();
    assert_eq!(err.category(), "circuit_open");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn attempt_timeouts_count_as_breaker_failures() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let b = breaker(1, Duration::from_secs(30), 1);
    let job = Job::ok(St::Done)
        .sleeping(&clock, Duration::from_secs(5))
        .with_config(
            TaskConfig::minimal()
                .with_attempt_timeout(Duration::from_secs(1))
                .with_circuit_breaker(b.clone()),
        );
    assert_eq!(
        run_in(&sim, &single_wf(job), St::A)
            .0
            .unwrap_err()
            .category(),
        "timeout"
    );
    assert_eq!(
        b.state(clock.now()),
        CircuitState::Open {
            until: Instant::from_secs(31)
        }
    );
}

#[test]
fn a_half_open_breaker_recovers_after_its_reset_timeout_on_the_fake_clock() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let b = breaker(1, Duration::from_secs(30), 1);
    b.try_acquire(clock.now())
        .unwrap()
        .record_failure(clock.now());
    let job = Job::ok(St::Done).with_config(TaskConfig::minimal().with_circuit_breaker(b.clone()));
    let wf = single_wf(job);
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&clock, St::A))
            .unwrap_err()
            .category(),
        "circuit_open"
    );
    sim.run_for(Duration::from_secs(30));
    assert_eq!(b.state(clock.now()), CircuitState::HalfOpen);
    assert_eq!(sim.block_on(wf.orchestrate_on(&clock, St::A)), Ok(St::Done));
    assert_eq!(b.state(clock.now()), CircuitState::Closed);
}

#[test]
fn run_with_retries_is_usable_on_its_own() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let config = TaskConfig::new().with_fixed_retry(1, Duration::from_secs(2));
    let tries = AtomicU32::new(0);
    let result: Result<u32, CanoError> = sim.block_on(run_with_retries(
        &config,
        &clock,
        &SplitMix64::new(1),
        || {
            let n = tries.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(CanoError::generic("first"))
                } else {
                    Ok(n)
                }
            }
        },
    ));
    assert_eq!(result, Ok(1));
    assert_eq!(clock.now(), Instant::from_secs(2));
}

#[test]
fn circuit_policy_errors_instead_of_panicking() {
    let bad = [
        CircuitPolicy {
            failure_threshold: 0,
            ..CircuitPolicy::default()
        },
        CircuitPolicy {
            half_open_max_calls: 0,
            ..CircuitPolicy::default()
        },
        CircuitPolicy {
            half_open_max_calls: u32::MAX / 2 + 1,
            ..CircuitPolicy::default()
        },
    ];
    for policy in bad {
        let err = CircuitBreaker::new(policy.clone()).unwrap_err();
        assert_eq!(err.category(), "configuration", "{policy:?}");
    }
    assert!(CircuitBreaker::new(CircuitPolicy::default()).is_ok());
}

#[test]
fn circuit_transitions_follow_the_reference() {
    let b = breaker(3, Duration::from_secs(10), 2);
    let t = Instant::from_secs;
    // Successes reset the consecutive-failure count.
    b.try_acquire(t(0)).unwrap().record_failure(t(0));
    b.try_acquire(t(0)).unwrap().record_failure(t(0));
    b.try_acquire(t(0)).unwrap().record_success(t(0));
    b.try_acquire(t(0)).unwrap().record_failure(t(0));
    assert_eq!(b.state(t(0)), CircuitState::Closed);
    b.try_acquire(t(1)).unwrap().record_failure(t(1));
    b.try_acquire(t(1)).unwrap().record_failure(t(1));
    assert_eq!(b.state(t(1)), CircuitState::Open { until: t(11) });
    assert_eq!(b.try_acquire(t(5)).unwrap_err().category(), "circuit_open");
    // Half-open: two trial slots, a third caller is rejected.
    let p1 = b.try_acquire(t(11)).unwrap();
    let p2 = b.try_acquire(t(11)).unwrap();
    assert!(
        b.try_acquire(t(11))
            .unwrap_err()
            .message()
            .contains("trial slot")
    );
    p1.record_success(t(12));
    assert_eq!(b.state(t(12)), CircuitState::HalfOpen);
    p2.record_success(t(12));
    assert_eq!(b.state(t(12)), CircuitState::Closed);
    // A trial failure reopens at once with a fresh deadline.
    for _ in 0..3 {
        b.try_acquire(t(20)).unwrap().record_failure(t(20));
    }
    let trial = b.try_acquire(t(30)).unwrap();
    trial.record_failure(t(31));
    assert_eq!(b.state(t(31)), CircuitState::Open { until: t(41) });
}

#[test]
fn a_stale_permit_cannot_corrupt_the_next_session() {
    let b = breaker(1, Duration::from_secs(10), 1);
    let t = Instant::from_secs;
    let slow = b.try_acquire(t(0)).unwrap();
    b.try_acquire(t(0)).unwrap().record_failure(t(0)); // opens
    let trial = b.try_acquire(t(10)).unwrap();
    trial.record_success(t(10)); // closes: a new epoch
    assert_eq!(b.state(t(10)), CircuitState::Closed);
    slow.record_failure(t(11)); // from the first Closed epoch: ignored
    assert_eq!(b.state(t(11)), CircuitState::Closed);
}

#[test]
fn a_dropped_permit_counts_as_a_failure() {
    let b = breaker(2, Duration::from_secs(10), 1);
    let t = Instant::from_secs;
    drop(b.try_acquire(t(3)).unwrap());
    drop(b.try_acquire(t(4)).unwrap());
    assert_eq!(b.state(t(4)), CircuitState::Open { until: t(14) });
}

#[test]
fn the_seeded_source_is_shared_safely() {
    let rng = Arc::new(SplitMix64::new(5));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let rng = rng.clone();
            std::thread::spawn(move || (0..1000).map(|_| rng.next_u64()).collect::<Vec<_>>())
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        4000,
        "every draw is distinct: no value handed out twice"
    );
}

/// A random source returning one value, in range or not.
struct FixedDraw(f64);

impl RandomSource for FixedDraw {
    fn next_u64(&self) -> u64 {
        0
    }
    fn next_symmetric(&self) -> f64 {
        self.0
    }
}

/// The same class as issue 10, item 3 (`0 × ∞`): a zero base stays zero past the overflow
/// of the growth, and a custom random source outside `[-1, 1]` cannot stretch a delay past
/// twice its cap (it used to scale it by `1 + jitter · draw` unclamped).
#[test]
fn retry_delays_stay_bounded_past_the_overflow_of_the_growth_and_with_any_random_source() {
    let zero = RetryMode::exponential_custom(usize::MAX, Duration::ZERO, 2.0, secs(30), 1.0);
    for retry in [0, 1_023, 1_024, 1_025, u32::MAX] {
        assert_eq!(
            zero.delay_for_attempt(retry, &SplitMix64::new(1)),
            Some(Duration::ZERO),
            "{retry}"
        );
    }
    let mode = RetryMode::exponential_custom(10, Duration::from_millis(100), 2.0, secs(30), 1.0);
    for (draw, expected) in [
        (5.0, 200),
        (f64::INFINITY, 200),
        (-7.0, 0),
        (f64::NEG_INFINITY, 0),
        (f64::NAN, 100),
    ] {
        assert_eq!(
            mode.delay_for_attempt(0, &FixedDraw(draw)),
            Some(Duration::from_millis(expected)),
            "draw {draw}"
        );
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

mod retry_math {
    use super::*;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::from_micros(500)),
            Just(Duration::MAX),
            (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (0u64..10_000_000).prop_map(Duration::from_millis),
        ]
    }

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(1.0),
            Just(2.0),
            Just(0.0),
            Just(-2.0),
            Just(f64::MAX),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(1.0 + f64::EPSILON),
            1.0f64..1e6,
            any::<f64>(),
        ]
    }

    fn retry() -> impl Strategy<Value = u32> {
        prop_oneof![Just(0), Just(1_024), Just(u32::MAX), 0u32..64, any::<u32>()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        /// Every mode, retry index and random source: no panic, `None` exactly past the last
        /// retry, zero stays zero, and never more than twice the cap (jitter at most doubles).
        #[test]
        fn every_retry_delay_is_total_and_bounded(
            base in duration(),
            multiplier in float(),
            max in duration(),
            jitter in float(),
            retries in prop_oneof![Just(usize::MAX), 0usize..8],
            retry in retry(),
            draw in float(),
        ) {
            let built = RetryMode::ExponentialBackoff {
                max_retries: retries,
                base_delay: base,
                multiplier,
                max_delay: max,
                jitter,
            };
            let delay = built.delay_for_attempt(retry, &FixedDraw(draw));
            let exists = usize::try_from(retry).is_ok_and(|r| r < retries);
            prop_assert_eq!(delay.is_some(), exists);
            let Some(delay) = delay else { return Ok(()) };
            let cap_ms = max.as_millis() as f64;
            prop_assert!(delay.as_millis() as f64 <= 2.0 * cap_ms, "{:?} over {:?}", delay, max);
            if base.as_millis() == 0 || max.as_millis() == 0 {
                prop_assert_eq!(delay, Duration::ZERO);
            }
            let fixed = RetryMode::fixed(retries, base).delay_for_attempt(retry, &FixedDraw(draw));
            prop_assert_eq!(fixed, exists.then_some(base));
        }

        /// Without jitter and with a finite multiplier >= 1 the pause is the written formula
        /// in whole milliseconds, and it never shrinks from one retry to the next.
        #[test]
        fn a_valid_exponential_mode_follows_the_formula(
            base in (0u64..1_000_000).prop_map(Duration::from_millis),
            multiplier in prop_oneof![Just(1.0), Just(2.0), 1.0f64..10.0, 1.0f64..f64::MAX],
            max in duration(),
            retry in retry(),
        ) {
            let mode = RetryMode::exponential_custom(usize::MAX, base, multiplier, max, 0.0);
            let rng = SplitMix64::new(0);
            let delay = mode.delay_for_attempt(retry, &rng).unwrap().as_millis() as f64;
            // Whole milliseconds of `min(base · multiplier^retry, max)`, saturating at
            // `u64::MAX` ms; a zero base stays zero (`0 · ∞` is not the cap).
            let grown = base.as_millis() as f64 * multiplier.powf(f64::from(retry));
            let expected = if base.is_zero() {
                0.0
            } else {
                grown.min(max.as_millis() as f64).min(u64::MAX as f64)
            };
            let tolerance = 1.0 + expected * 4.0 * f64::EPSILON * f64::from(retry.max(2));
            prop_assert!((delay - expected.floor()).abs() <= tolerance, "{} vs {}", delay, expected);
            if let Some(next) = mode.delay_for_attempt(retry.saturating_add(1), &rng) {
                prop_assert!(next.as_millis() as f64 >= delay);
            }
        }
    }
}
