//! `BackoffPolicy` math, pinned and as properties: total over the whole `u32` streak range
//! and over extreme policies (zero or `Duration::MAX` delays, multiplier 1 or huge or NaN,
//! any jitter, any random source), and a failing flow with a zero backoff keeps its
//! interval for a whole day (issue 10, item 3).

mod scheduler_support;

use std::time::Duration;

use cano_core::backoff::BackoffPolicy;
use cano_core::random::{RandomSource, SplitMix64};
use cano_core::scheduler::Scheduler;
use cano_core::testing::Simulation;
use proptest::prelude::*;
use scheduler_support::{Behaviour, Recorder, secs, start};

/// A random source that returns whatever a test wants, including values outside `[-1, 1)`.
struct Fixed(f64);

impl RandomSource for Fixed {
    fn next_u64(&self) -> u64 {
        0
    }
    fn next_symmetric(&self) -> f64 {
        self.0
    }
}

fn zero_initial() -> BackoffPolicy {
    BackoffPolicy {
        initial: Duration::ZERO,
        jitter: 0.0,
        ..BackoffPolicy::default()
    }
}

#[test]
fn a_zero_initial_delay_stays_zero_after_any_streak() {
    let policy = zero_initial();
    let rng = SplitMix64::new(1);
    // 0 × 2^1024 was 0 × ∞ = NaN, read as max_delay.
    for streak in [0, 1, 2, 1_023, 1_024, 1_025, 100_000, u32::MAX] {
        assert_eq!(
            policy.delay_without_jitter(streak),
            Duration::ZERO,
            "{streak}"
        );
        assert_eq!(
            policy.compute_delay(streak, &rng),
            Duration::ZERO,
            "{streak}"
        );
    }
    let jittered = BackoffPolicy {
        jitter: 1.0,
        multiplier: f64::MAX,
        ..zero_initial()
    };
    assert_eq!(jittered.compute_delay(u32::MAX, &rng), Duration::ZERO);
}

/// A flow that fails every run, every 60 s, with a zero backoff: it runs at every tick of a
/// day, as often as one that succeeds (1 111 times instead of 1 441 before the fix).
#[test]
fn a_failing_flow_with_zero_backoff_keeps_its_interval_for_a_day() {
    let sim = Simulation::new();
    let recorder = Recorder::new(sim.clock());
    let mut scheduler = Scheduler::new();
    scheduler
        .every_seconds("failing", recorder.job(Behaviour::failing()), (), 60)
        .unwrap();
    scheduler
        .every_seconds("passing", recorder.job(Behaviour::INSTANT_OK), (), 60)
        .unwrap();
    scheduler.set_backoff("failing", zero_initial()).unwrap();
    let running = start(&sim, scheduler);
    sim.run_for(secs(86_400));
    let passing = recorder.count("passing");
    assert!(passing >= 1_440, "{passing}");
    assert_eq!(recorder.count("failing"), passing);
    sim.block_on(running.stop()).unwrap();
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::MAX),
        Just(Duration::from_secs(u64::MAX)),
        (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..10_000_000).prop_map(Duration::from_millis),
    ]
}

fn multiplier() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1.0),
        Just(2.0),
        Just(f64::MAX),
        Just(f64::INFINITY),
        Just(f64::NAN),
        Just(0.0),
        Just(-2.0),
        Just(f64::NEG_INFINITY),
        Just(1.0 + f64::EPSILON),
        1.0f64..1e6,
        any::<f64>(),
    ]
}

fn jitter() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        0.0f64..=1.0,
        any::<f64>(),
    ]
}

fn streak() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(1_024),
        Just(1_025),
        Just(u32::MAX),
        0u32..64,
        any::<u32>(),
    ]
}

fn draw() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1.0f64..1.0,
        Just(-1.0),
        Just(1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        any::<f64>(),
    ]
}

/// Policies that `validate` accepts: a finite multiplier of at least 1, a finite jitter.
fn valid_policy() -> impl Strategy<Value = BackoffPolicy> {
    let multiplier = prop_oneof![
        Just(1.0),
        Just(2.0),
        Just(f64::MAX),
        Just(1.0 + f64::EPSILON),
        1.0f64..1e6,
        1.0f64..f64::MAX,
    ];
    let jitter = prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0, -1e300f64..1e300];
    (duration(), multiplier, duration(), jitter).prop_map(
        |(initial, multiplier, max_delay, jitter)| BackoffPolicy {
            initial,
            multiplier,
            max_delay,
            jitter,
            streak_limit: None,
        },
    )
}

fn policy() -> impl Strategy<Value = BackoffPolicy> {
    (duration(), multiplier(), duration(), jitter()).prop_map(
        |(initial, multiplier, max_delay, jitter)| BackoffPolicy {
            initial,
            multiplier,
            max_delay,
            jitter,
            streak_limit: None,
        },
    )
}

/// `min(initial · multiplier^(streak − 1), max_delay)` in seconds, with `f64::powf` (std),
/// independently of the engine's own power function.
fn expected_seconds(policy: &BackoffPolicy, streak: u32) -> f64 {
    let exponent = f64::from(streak.max(1) - 1);
    (policy.initial.as_secs_f64() * policy.multiplier.powf(exponent))
        .min(policy.max_delay.as_secs_f64())
}

/// Within a nanosecond plus the rounding of a power by squaring, whose relative error grows
/// with the exponent (about `exponent · ε` for a multiplier just above 1).
fn close_at(actual: Duration, expected_secs: f64, streak: u32) -> bool {
    let actual = actual.as_secs_f64();
    let relative = 4.0 * f64::EPSILON * f64::from(streak.max(2));
    (actual - expected_secs).abs() <= 1e-9 + expected_secs * relative
}

fn close(actual: Duration, expected_secs: f64) -> bool {
    close_at(actual, expected_secs, 1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    /// Whatever the policy, streak and random source: no panic, never above `max_delay`,
    /// zero stays zero.
    #[test]
    fn every_delay_is_total_and_bounded(
        policy in policy(),
        streak in streak(),
        draw in draw(),
    ) {
        let without = policy.delay_without_jitter(streak);
        let with = policy.compute_delay(streak, &Fixed(draw));
        prop_assert!(without <= policy.max_delay);
        prop_assert!(with <= policy.max_delay);
        if policy.initial.is_zero() || policy.max_delay.is_zero() {
            prop_assert_eq!(without, Duration::ZERO);
            prop_assert_eq!(with, Duration::ZERO);
        }
        if policy.multiplier == 1.0 {
            prop_assert!(close(without, policy.initial.min(policy.max_delay).as_secs_f64()));
        }
    }

    /// A valid policy (finite multiplier >= 1): the delay is the written formula, grows
    /// with the streak, and jitter keeps it within `[1 − j, 1 + j]` of it.
    #[test]
    fn a_valid_policy_follows_the_formula(
        policy in valid_policy(),
        streak in streak(),
        draw in -1.0f64..1.0,
    ) {
        prop_assert!(policy.validate().is_ok());
        let without = policy.delay_without_jitter(streak);
        let expected = if policy.initial.is_zero() { 0.0 } else { expected_seconds(&policy, streak) };
        prop_assert!(close_at(without, expected, streak), "{:?} vs {}", without, expected);
        let next = policy.delay_without_jitter(streak.saturating_add(1));
        prop_assert!(next >= without, "{:?} then {:?}", without, next);
        let jitter = if policy.jitter.is_nan() { 0.0 } else { policy.jitter.clamp(0.0, 1.0) };
        let with = policy.compute_delay(streak, &Fixed(draw)).as_secs_f64();
        let base = without.as_secs_f64();
        let slack = 1e-9 + base * 1e-12;
        prop_assert!(with >= base * (1.0 - jitter) - slack, "{} < {}", with, base);
        prop_assert!(with <= (base * (1.0 + jitter)).min(policy.max_delay.as_secs_f64()) + slack);
    }
}
