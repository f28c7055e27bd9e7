//! Rate limiters on the fake clock: the token bucket's lazy refill and burst, exact waits,
//! the fixed window, the multi-tier limiter's all-or-nothing acquisition, and the limiters
//! used from a TaskConfig and as a Resource. cano 0.15's traps (a panic on a bad policy, a
//! wait that never ends for a cost above the capacity) are errors here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cano_core::rate_limit::{
    Meter, MultiRateLimiter, RateLimiter, RateLimiterPolicy, WindowPolicy, WindowedRateLimiter,
};
use cano_core::testing::Simulation;
use cano_core::{CanoError, Clock, Instant, Resources, Task, TaskConfig, TaskResult, Workflow};
use proptest::prelude::*;

fn retry_after(result: Result<(), CanoError>) -> (String, Duration) {
    match result {
        Err(CanoError::RateLimited { tier, retry_after }) => (tier.into_owned(), retry_after),
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[test]
fn a_bucket_starts_full_with_its_burst_and_refills_lazily() {
    let limiter = RateLimiter::new(
        RateLimiterPolicy::new(4, Duration::from_secs(2))
            .with_burst(2)
            .with_max_tokens(4),
    )
    .unwrap()
    .named("api");
    let t0 = Instant::from_secs(100);
    assert_eq!(limiter.tokens_available(t0), 6);
    limiter.try_acquire_n_at(t0, 6).unwrap();
    assert_eq!(
        retry_after(limiter.try_acquire_at(t0)),
        ("api".into(), Duration::from_millis(500))
    );
    // Half a second later exactly one token is back; a long idle refills to the capacity only.
    let t1 = t0 + Duration::from_millis(500);
    limiter.try_acquire_at(t1).unwrap();
    assert_eq!(limiter.tokens_available(t1 + Duration::from_secs(3600)), 6);
}

#[test]
fn acquire_sleeps_exactly_until_each_refill() {
    // Odd rates on purpose: 3 tokens per 7 s is not a whole number of microseconds per token.
    for (tokens, period_ms, burst) in [
        (1u64, 1_000u64, 0u64),
        (3, 7_000, 0),
        (5, 1_000, 2),
        (7, 3, 1),
    ] {
        let sim = Simulation::new();
        let clock = sim.clock();
        let limiter = RateLimiter::new(
            RateLimiterPolicy::new(tokens, Duration::from_millis(period_ms)).with_burst(burst),
        )
        .unwrap();
        let capacity = tokens + burst;
        let times: Vec<u64> = sim.block_on(async {
            let mut times = vec![];
            for _ in 0..(capacity + 10) {
                limiter.acquire(&clock).await.unwrap();
                times.push(clock.now().as_micros());
            }
            times
        });
        for (k, t) in times.iter().enumerate() {
            let k = k as u64 + 1;
            let owed = k.saturating_sub(capacity);
            let exact =
                (u128::from(owed) * u128::from(period_ms) * 1_000).div_ceil(u128::from(tokens));
            assert_eq!(
                u128::from(*t),
                exact,
                "policy {tokens}/{period_ms}ms+{burst}, acquire {k}"
            );
        }
    }
}

#[test]
fn a_policy_whose_time_does_not_fit_64_bits_uses_the_locked_bucket() {
    // 1 000 003 tokens per second: a token every 1/1 000 003 s, too fine for the lock-free
    // form's 64-bit time; the locked bucket is exact all the same.
    let limiter = RateLimiter::new(RateLimiterPolicy::per_second(1_000_003)).unwrap();
    assert!(format!("{limiter:?}").contains("lock_free: false"));
    limiter.try_acquire_n_at(Instant::ZERO, 1_000_003).unwrap();
    assert_eq!(
        limiter.time_until(Instant::ZERO, 2),
        Duration::from_micros(2)
    );
    assert!(
        format!(
            "{:?}",
            RateLimiter::new(RateLimiterPolicy::per_second(1_000)).unwrap()
        )
        .contains("lock_free: true")
    );
}

#[test]
fn bad_policies_and_impossible_costs_are_errors_not_panics_or_endless_waits() {
    for policy in [
        RateLimiterPolicy::per_second(0),
        RateLimiterPolicy::new(1, Duration::ZERO),
        RateLimiterPolicy::new(1, Duration::from_nanos(10)),
        RateLimiterPolicy::per_second(5).with_max_tokens(0),
    ] {
        assert_eq!(
            RateLimiter::new(policy).unwrap_err().category(),
            "configuration"
        );
    }
    assert!(WindowedRateLimiter::new(WindowPolicy::new(0, Duration::from_secs(1))).is_err());
    assert!(WindowedRateLimiter::new(WindowPolicy::new(1, Duration::ZERO)).is_err());

    let sim = Simulation::new();
    let clock = sim.clock();
    let limiter = RateLimiter::new(RateLimiterPolicy::per_second(2)).unwrap();
    let err = sim.block_on(limiter.acquire_n(&clock, 3)).unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert_eq!(clock.now(), Instant::ZERO);
    let window = WindowedRateLimiter::new(WindowPolicy::new(2, Duration::from_secs(1))).unwrap();
    assert_eq!(
        sim.block_on(window.acquire_n(&clock, 3))
            .unwrap_err()
            .category(),
        "configuration"
    );
    // A zero cost always passes.
    limiter.try_acquire_n_at(Instant::ZERO, 0).unwrap();
}

#[test]
fn a_window_admits_its_limit_then_resets_back_to_back() {
    let limiter = WindowedRateLimiter::new(WindowPolicy::new(3, Duration::from_secs(10)))
        .unwrap()
        .named("daily");
    assert_eq!(limiter.resets_at(Instant::ZERO), None);
    let start = Instant::from_secs(7);
    for _ in 0..3 {
        limiter.try_acquire_at(start).unwrap();
    }
    assert_eq!(
        retry_after(limiter.try_acquire_at(Instant::from_secs(9))),
        ("daily".into(), Duration::from_secs(8))
    );
    assert_eq!(limiter.used(Instant::from_secs(9)), 3);
    assert_eq!(limiter.remaining(Instant::from_secs(17)), 3);
    // After an idle stretch, windows stay aligned to the first one: 7, 17, 27, 37, …
    limiter.try_acquire_at(Instant::from_secs(44)).unwrap();
    assert_eq!(
        limiter.resets_at(Instant::from_secs(44)),
        Some(Instant::from_secs(47))
    );
}

#[test]
fn window_acquire_waits_for_the_reset() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let limiter = WindowedRateLimiter::new(WindowPolicy::per_hours(2, 1)).unwrap();
    let times = sim.block_on(async {
        let mut times = vec![];
        for _ in 0..5 {
            limiter.acquire(&clock).await.unwrap();
            times.push(clock.now().as_millis() / 1_000);
        }
        times
    });
    assert_eq!(times, vec![0, 0, 3_600, 3_600, 7_200]);
}

fn bucket(tokens: u64, secs: u64) -> Arc<RateLimiter> {
    Arc::new(RateLimiter::new(RateLimiterPolicy::new(tokens, Duration::from_secs(secs))).unwrap())
}

#[test]
fn a_multi_tier_refusal_takes_nothing_from_any_tier_and_names_the_longest_wait() {
    let fast = bucket(5, 1);
    let hourly = Arc::new(WindowedRateLimiter::new(WindowPolicy::per_hours(100, 1)).unwrap());
    let slow = bucket(1, 60);
    let limiter = MultiRateLimiter::new()
        .with_tier("fast", fast.clone(), 1)
        .unwrap()
        .with_tier("hourly", hourly.clone(), 10)
        .unwrap()
        .with_tier("slow", slow.clone(), 1)
        .unwrap();
    let t0 = Instant::ZERO;
    limiter.try_acquire_at(t0).unwrap();
    let (tier, wait) = retry_after(limiter.try_acquire_at(t0));
    assert_eq!((tier.as_str(), wait), ("slow", Duration::from_secs(60)));
    // The refused call cost the earlier tiers nothing.
    assert_eq!(fast.tokens_available(t0), 4);
    assert_eq!(hourly.used(t0), 10);
    // When several tiers refuse, the one that frees up last is named.
    fast.try_acquire_n_at(t0, 4).unwrap();
    let (tier, _) = retry_after(limiter.try_acquire_at(t0));
    assert_eq!(tier, "slow");
    // A subset of tiers.
    limiter
        .try_acquire_for_at(t0 + Duration::from_secs(1), &["fast", "hourly"])
        .unwrap();
    assert_eq!(hourly.used(t0), 20);
}

#[test]
fn multi_tier_acquire_waits_until_every_tier_admits_at_once() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let limiter = MultiRateLimiter::new()
        .with_tier("per_second", bucket(2, 1), 1)
        .unwrap()
        .with_tier("per_ten", bucket(3, 10), 1)
        .unwrap();
    let times = sim.block_on(async {
        let mut times = vec![];
        for _ in 0..5 {
            limiter.acquire(&clock).await.unwrap();
            times.push(clock.now().as_micros());
        }
        times
    });
    // per_second binds the third (0.5 s), per_ten the rest (one every 10/3 s).
    assert_eq!(times, vec![0, 0, 500_000, 3_333_334, 6_666_667]);
}

#[test]
fn a_tier_that_could_never_admit_or_a_duplicate_name_is_a_configuration_error() {
    let err = MultiRateLimiter::new()
        .with_tier("x", bucket(2, 1), 3)
        .unwrap_err();
    assert_eq!(err.category(), "configuration");
    let err = MultiRateLimiter::new()
        .with_tier("x", bucket(2, 1), 1)
        .unwrap()
        .with_tier("x", bucket(2, 1), 1)
        .unwrap_err();
    assert_eq!(err.category(), "configuration");
}

#[test]
fn a_window_refund_after_the_window_moved_on_does_not_inflate_the_new_window() {
    let window = WindowedRateLimiter::new(WindowPolicy::new(2, Duration::from_secs(10))).unwrap();
    let taken = window.try_take(Instant::ZERO, 2).unwrap();
    window.try_take(Instant::from_secs(10), 1).unwrap();
    window.refund(taken);
    assert_eq!(window.used(Instant::from_secs(10)), 1);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum St {
    Call,
    Done,
}

struct Call {
    clock: cano_core::testing::FakeClock,
    calls: Arc<std::sync::Mutex<Vec<Instant>>>,
    failures: AtomicU32,
    config: TaskConfig,
}

impl Task<St> for Call {
    async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
        self.calls.lock().unwrap().push(self.clock.now());
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(CanoError::task_execution("flaky"));
        }
        Ok(TaskResult::Single(St::Done))
    }
    fn config(&self) -> TaskConfig {
        self.config.clone()
    }
}

#[test]
fn a_task_config_rate_limit_makes_every_attempt_wait_for_a_permit() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let limiter =
        Arc::new(RateLimiter::new(RateLimiterPolicy::new(1, Duration::from_secs(4))).unwrap());
    let calls = Arc::new(std::sync::Mutex::new(vec![]));
    let task = Call {
        clock: clock.clone(),
        calls: calls.clone(),
        failures: AtomicU32::new(2),
        config: TaskConfig::minimal()
            .with_fixed_retry(3, Duration::from_secs(1))
            .with_rate_limit(limiter.clone()),
    };
    let wf = Workflow::bare()
        .register(St::Call, task)
        .add_exit_state(St::Done);
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&clock, St::Call)),
        Ok(St::Done)
    );
    // Attempt 1 at 0; retry pause 1 s, then the permit at 4; again at 8.
    let secs: Vec<u64> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.as_millis() / 1000)
        .collect();
    assert_eq!(secs, vec![0, 4, 8]);
}

#[test]
fn a_failing_rate_limit_reports_the_tier_and_is_not_retried() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let limiter = Arc::new(
        RateLimiter::new(RateLimiterPolicy::new(1, Duration::from_secs(4)))
            .unwrap()
            .named("vendor"),
    );
    limiter.try_acquire_at(Instant::ZERO).unwrap();
    let calls = Arc::new(std::sync::Mutex::new(vec![]));
    let task = Call {
        clock: clock.clone(),
        calls: calls.clone(),
        failures: AtomicU32::new(0),
        config: TaskConfig::minimal()
            .with_fixed_retry(3, Duration::from_secs(1))
            .with_rate_limit_or_fail(limiter),
    };
    let wf = Workflow::bare()
        .register(St::Call, task)
        .add_exit_state(St::Done);
    let result = sim.block_on(wf.orchestrate_on(&clock, St::Call));
    assert_eq!(
        result,
        Err(CanoError::rate_limited("vendor", Duration::from_secs(4)))
    );
    assert!(calls.lock().unwrap().is_empty());
}

#[test]
fn a_limiter_is_a_resource_tasks_share() {
    struct UsesLimiter(cano_core::testing::FakeClock);
    impl Task<St> for UsesLimiter {
        async fn run(&self, res: &Resources) -> Result<TaskResult<St>, CanoError> {
            let limiter = res.get::<MultiRateLimiter, _>("limits")?;
            for _ in 0..3 {
                limiter.acquire(&self.0).await?;
            }
            Ok(TaskResult::Single(St::Done))
        }
    }
    let sim = Simulation::new();
    let clock = sim.clock();
    let limits = MultiRateLimiter::new()
        .with_tier("api", bucket(1, 2), 1)
        .unwrap();
    let resources = Resources::new().insert("limits", limits).unwrap();
    let wf = Workflow::new(resources)
        .register(St::Call, UsesLimiter(clock.clone()))
        .add_exit_state(St::Done);
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&clock, St::Call)),
        Ok(St::Done)
    );
    assert_eq!(clock.now(), Instant::from_secs(4));
}

proptest! {
    /// Over any interval from the first use, a bucket admits at most its capacity plus what
    /// the rate refills, and a refused caller is told a wait after which it is admitted.
    #[test]
    fn a_bucket_never_admits_more_than_capacity_plus_refill(
        tokens in 1u64..8,
        period_ms in 1u64..5_000,
        burst in 0u64..4,
        steps in proptest::collection::vec((0u64..3_000_000, 1u64..4), 1..60),
    ) {
        let limiter = RateLimiter::new(
            RateLimiterPolicy::new(tokens, Duration::from_millis(period_ms)).with_burst(burst),
        ).unwrap();
        let capacity = tokens + burst;
        let mut now = 0u64;
        let mut admitted = 0u64;
        for (gap, cost) in steps {
            now += gap;
            let at = Instant::from_micros(now);
            match limiter.try_acquire_n_at(at, cost) {
                Ok(()) => admitted += cost,
                Err(CanoError::RateLimited { retry_after, .. }) => {
                    prop_assert!(!retry_after.is_zero());
                    // Retrying exactly then succeeds.
                    let then = at + retry_after;
                    prop_assert!(limiter.try_acquire_n_at(then, cost).is_ok());
                    admitted += cost;
                    now = then.as_micros();
                }
                Err(CanoError::Configuration(_)) => prop_assert!(cost > capacity),
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
            let refilled = u128::from(now) * u128::from(tokens) / (u128::from(period_ms) * 1_000);
            prop_assert!(u128::from(admitted) <= u128::from(capacity) + refilled);
        }
    }
}

proptest! {
    /// The lock-free bucket (used when its time fits in 64 bits) and the locked one give the
    /// same answers, step by step: admitted or not, the retry time, the tokens left, refunds.
    #[test]
    fn the_lock_free_bucket_answers_exactly_as_the_locked_one(
        tokens in 1u64..60,
        period_us in 1u64..10_000_000,
        burst in 0u64..5,
        steps in proptest::collection::vec((0u64..2_000_000, 0u64..6, 0u8..4), 1..80),
    ) {
        let policy = RateLimiterPolicy::new(tokens, Duration::from_micros(period_us)).with_burst(burst);
        let fast = RateLimiter::new(policy.clone()).unwrap();
        let locked = RateLimiter::new(policy).unwrap().with_locked_engine();
        let engines = (format!("{fast:?}"), format!("{locked:?}"));
        prop_assert!(engines.0.contains("lock_free: true") && engines.1.contains("lock_free: false"));
        let mut now = 1_000u64;
        for (gap, cost, op) in steps {
            now += gap;
            let at = Instant::from_micros(now);
            match op {
                0 => prop_assert_eq!(fast.try_acquire_n_at(at, cost), locked.try_acquire_n_at(at, cost)),
                1 => prop_assert_eq!(fast.time_until(at, cost), locked.time_until(at, cost)),
                2 => prop_assert_eq!(fast.tokens_available(at), locked.tokens_available(at)),
                _ => {
                    let (a, b) = (fast.try_take(at, cost), locked.try_take(at, cost));
                    prop_assert_eq!(a, b);
                    if let (Ok(a), Ok(b)) = (a, b) {
                        fast.refund(a);
                        locked.refund(b);
                    }
                }
            }
        }
    }
}
