//! Property tests on the pure persistence decisions the scheduler core will call:
//!
//! * `plan_catch_up`: the fires it runs passed while down, lie on the schedule, come oldest
//!   first, are the most recent ones, and with the dropped ones account for every fire that
//!   passed (checked against a brute-force enumeration, for intervals and cron);
//! * `LeaseTrust`: whatever the network delay and clock rates within what the margin
//!   covers, a node stops trusting its lease before the store's lease ends;
//! * `SkewCheck`: the true skew is always within the measured bounds, a warning is never
//!   raised for a skew within the limit, and a fire never starts early by the store's clock.

use std::time::Duration;

use cano_core::persist::{FlowRecord, LeaseTrust, ScheduleHash, SkewCheck, plan_catch_up};
use cano_core::schedule::{IntervalMode, MissedFirePolicy, Schedule, SchedulePolicy};
use cano_core::{Cron, Instant};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;

const GRACE: Duration = Duration::from_secs(1);
const BASE: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in µs

fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap()
}

fn policy_strategy() -> impl Strategy<Value = MissedFirePolicy> {
    prop_oneof![
        Just(MissedFirePolicy::Skip),
        (0u64..7200).prop_map(|s| MissedFirePolicy::RunOnce {
            window: Duration::from_secs(s)
        }),
        (1u32..40).prop_map(|max| MissedFirePolicy::RunAll { max }),
    ]
}

/// Every fire in (last, now] at or after `eligible`, by walking the schedule one by one.
fn brute_force(
    next_after: impl Fn(i64) -> Option<i64>,
    last: i64,
    eligible: i64,
    now: i64,
) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = last;
    while let Some(f) = next_after(t).filter(|f| *f <= now) {
        if f >= eligible {
            out.push(f);
        }
        t = f;
    }
    out
}

/// What the policy must pick from the passed fires (oldest first).
fn expected(passed: &[i64], policy: MissedFirePolicy, now: i64) -> Vec<i64> {
    let grace = GRACE.as_micros() as i64;
    let Some(&latest) = passed.last() else {
        return Vec::new();
    };
    match policy {
        MissedFirePolicy::Skip => (now - latest <= grace)
            .then_some(latest)
            .into_iter()
            .collect(),
        MissedFirePolicy::RunOnce { window } => (now - latest
            <= (window.as_micros() as i64).max(grace))
        .then_some(latest)
        .into_iter()
        .collect(),
        MissedFirePolicy::RunAll { max } => {
            passed[passed.len().saturating_sub(max as usize)..].to_vec()
        }
        _ => unreachable!("no other policies are generated"),
    }
}

fn check_plan(
    schedule: &Schedule,
    policy: SchedulePolicy,
    next_after: impl Fn(i64) -> Option<i64>,
    last: i64,
    eligible: Option<i64>,
    now: i64,
) -> Result<(), TestCaseError> {
    let zone = TimeZone::UTC;
    let mut record = FlowRecord::new(ScheduleHash::of(schedule, &policy, &zone));
    record.last_fire = Some(ts(last));
    record.next_eligible = eligible.map(ts);
    let plan = plan_catch_up(Some(&record), schedule, &policy, &zone, ts(now), GRACE);
    let passed = brute_force(next_after, last, eligible.unwrap_or(i64::MIN), now);
    let want = expected(&passed, policy.missed, now);
    let got: Vec<i64> = plan.fires.iter().map(|t| t.as_microsecond()).collect();
    prop_assert_eq!(&got, &want, "passed {:?}", passed);
    prop_assert_eq!(plan.dropped, (passed.len() - want.len()) as u64);
    prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
    prop_assert!(got.iter().all(|f| *f > last && *f <= now));
    // A changed schedule never catches anything up.
    let other = Schedule::Manual;
    let changed = plan_catch_up(Some(&record), &other, &policy, &zone, ts(now), GRACE);
    prop_assert!(changed.fires.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fixed_rate_catch_up_matches_brute_force(
        interval_s in 1i64..3600,
        down_s in 0i64..(3 * 86_400),
        policy in policy_strategy(),
        backoff_s in proptest::option::of(0i64..7200),
    ) {
        let interval = interval_s * 1_000_000;
        let schedule = Schedule::Every(Duration::from_secs(interval_s as u64));
        let policy = SchedulePolicy {
            missed: policy,
            interval_mode: IntervalMode::FixedRate,
            ..SchedulePolicy::default()
        };
        let last = BASE;
        let now = BASE + down_s * 1_000_000 + 123_456;
        let eligible = backoff_s.map(|b| last + b * 1_000_000);
        check_plan(&schedule, policy, |t| Some(last + ((t - last) / interval + 1) * interval), last, eligible, now)?;
    }

    #[test]
    fn cron_catch_up_matches_brute_force(
        expr in prop_oneof![
            Just("*/7 * * * *"),
            Just("0 */3 * * *"),
            Just("30 9 * * 1-5"),
            Just("*/20 * * * * *"),
            Just("0 0 1 * *"),
        ],
        last_offset_s in 0i64..86_400,
        down_s in 0i64..(2 * 86_400),
        policy in policy_strategy(),
    ) {
        let cron = Cron::parse(expr).unwrap();
        let zone = TimeZone::UTC;
        let next_after = |t: i64| cron.next_after_timestamp(ts(t), &zone).map(|t| t.as_microsecond());
        // The last fire is a real fire of the schedule.
        let last = next_after(BASE + last_offset_s * 1_000_000).unwrap();
        let now = last + down_s * 1_000_000;
        let schedule = Schedule::Cron(cron.clone());
        let policy = SchedulePolicy { missed: policy, ..SchedulePolicy::default() };
        check_plan(&schedule, policy, next_after, last, None, now)?;
    }

    #[test]
    fn a_node_stops_trusting_before_the_store_does(
        sent_us in 0u64..(1 << 40),
        lease_ms in 100u64..120_000,
        margin_permille in 50u64..500,
        delay_us in 0u64..10_000_000,
        local_rate_ppm in -20_000i64..20_000,
        store_rate_ppm in -20_000i64..20_000,
    ) {
        // Clocks run at 1 ± 2 %: the margin must exceed lease × 2ρ/(1+ρ) ≈ 3.9 % of it.
        let lease = Duration::from_millis(lease_ms);
        let margin = lease * margin_permille as u32 / 1000;
        prop_assume!(margin_permille >= 40);
        let trust = LeaseTrust::new(Instant::from_micros(sent_us), lease, margin);
        // Real time, in µs, from the moment the request was sent.
        let local_rate = 1.0 + local_rate_ppm as f64 / 1e6;
        let store_rate = 1.0 + store_rate_ppm as f64 / 1e6;
        let trust_ends = (trust.trusted_until().as_micros() - sent_us) as f64 / local_rate;
        let store_ends = delay_us as f64 + lease.as_micros() as f64 / store_rate;
        prop_assert!(trust_ends < store_ends, "trust until {trust_ends} µs, store until {store_ends} µs");
        prop_assert!(trust.renew_at() <= trust.trusted_until());
        prop_assert!(trust.is_trusted(trust.sent_at()) == (margin < lease));
    }

    #[test]
    fn skew_bounds_hold_and_fires_never_start_early(
        true_offset_us in -10_000_000i64..10_000_000,
        out_us in 0i64..2_000_000,
        back_us in 0i64..2_000_000,
        fire_in_us in -5_000_000i64..5_000_000,
    ) {
        let sent = BASE;
        // The store reads its clock when the request arrives.
        let store_now = sent + out_us + true_offset_us;
        let received = sent + out_us + back_us;
        let skew = SkewCheck::measure(ts(sent), ts(store_now), ts(received));
        let offset = skew.offset().as_micros() as i64;
        let uncertainty = skew.uncertainty().as_micros() as i64;
        prop_assert!((offset - true_offset_us).abs() <= uncertainty);
        let max = Duration::from_secs(1);
        if skew.exceeds(max) {
            prop_assert!(true_offset_us.unsigned_abs() > max.as_micros() as u64);
        }
        // The measured offset is off by at most the uncertainty, so a skew beyond the limit by
        // a whole round trip (twice the uncertainty) always warns.
        if true_offset_us.unsigned_abs() > max.as_micros() as u64 + 2 * uncertainty as u64 {
            prop_assert!(skew.exceeds(max), "a skew beyond the limit plus the round trip warns");
        }
        // Later, at local `received`, the store's clock truly reads received + true offset.
        let fire = received + fire_in_us;
        match skew.early_by(ts(fire), ts(received)) {
            None => prop_assert!(fire <= received + true_offset_us, "it would start early"),
            Some(wait) => {
                let start = received + wait.as_micros() as i64;
                prop_assert!(fire <= start + true_offset_us);
            }
        }
    }
}
