//! Scheduler scenarios written once and run on every runtime (fake clock, tokio paused,
//! tokio multi-thread, smol, embassy). Virtual-time runtimes must match exactly; real-time
//! runtimes run the same scenario with short real intervals and tolerant counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::backoff::BackoffPolicy;
use cano_core::flow::Status;
use cano_core::scheduler::{Fire, Scheduler, job_fn};
use cano_core::{CanoError, Clock, Instant};
use cano_tests::conformance;
use cano_tests::harness::{Expect, Harness};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A job that counts its runs.
fn counting(
    runs: &Arc<AtomicU64>,
) -> impl Fn((), Fire) -> futures::future::Ready<Result<(), CanoError>> + Send + Sync + 'static {
    let runs = runs.clone();
    move |(), _fire| {
        runs.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(Ok(()))
    }
}

fn interval_counts_over_a_period<H: Harness>() {
    let (runs, run_count) = H::run(|clock, spawner| async move {
        let runs = Arc::new(AtomicU64::new(0));
        let mut scheduler = Scheduler::new();
        scheduler
            .every("tick", job_fn(counting(&runs)), (), H::UNIT * 2)
            .unwrap();
        let start = clock.now();
        let running = scheduler.start(clock.clone(), spawner).await.unwrap();
        // First run at start, then every two units: 0, 2, …, 20.
        clock.sleep_until(start + H::UNIT.mul_f64(20.5)).await;
        let info = running.status("tick").unwrap();
        running.stop().await.unwrap();
        (runs.load(Ordering::SeqCst), info.run_count)
    });
    Expect::for_harness::<H>(11, 7, 1).check(H::NAME, runs);
    assert_eq!(run_count, runs, "{}: FlowInfo.run_count", H::NAME);
}

conformance!(interval_counts_over_a_period);

/// Fire times of two New York cron flows, hourly and daily at a fixed time, over `hours`
/// from `wall_start`. The window must not end exactly on a fire: which of two equal
/// deadlines wakes first is up to the runtime.
fn new_york_fires<H: Harness>(
    wall_start: Timestamp,
    hours: u64,
    daily_at: &'static str,
) -> (Vec<Timestamp>, Vec<Timestamp>) {
    H::run_at(wall_start, move |clock, spawner| async move {
        let hourly = Arc::new(Mutex::new(Vec::new()));
        let daily = Arc::new(Mutex::new(Vec::new()));
        let record = |log: &Arc<Mutex<Vec<Timestamp>>>| {
            let log = log.clone();
            job_fn(move |(), fire: Fire| {
                log.lock().unwrap().push(fire.id().scheduled());
                futures::future::ready(Ok::<(), CanoError>(()))
            })
        };
        let mut scheduler = Scheduler::new();
        scheduler
            .cron(
                "hourly",
                record(&hourly),
                (),
                "CRON_TZ=America/New_York 0 * * * *",
            )
            .unwrap();
        scheduler
            .cron("daily", record(&daily), (), daily_at)
            .unwrap();
        let start = clock.now();
        let running = scheduler.start(clock.clone(), spawner).await.unwrap();
        clock
            .sleep_until(start + Duration::from_secs(hours * 3600))
            .await;
        running.stop().await.unwrap();
        let hourly = hourly.lock().unwrap().clone();
        let daily = daily.lock().unwrap().clone();
        (hourly, daily)
    })
}

fn on_local_date(fires: &[Timestamp], date: &str) -> Vec<String> {
    let ny = TimeZone::get("America/New_York").unwrap();
    fires
        .iter()
        .map(|t| t.to_zoned_datetime(ny.clone()))
        .filter(|z| z.date().to_string() == date)
        .map(|z| z.strftime("%H:%M %Z").to_string())
        .collect()
}

fn strictly_increasing(fires: &[Timestamp]) -> bool {
    fires.windows(2).all(|w| w[0] < w[1])
}

/// On virtual time: both 2026 DST days in New York, exactly. On real time a day cannot pass,
/// so an every-second cron flow is counted over two seconds instead.
fn cron_fires_across_a_dst_day<H: Harness>() {
    if !H::VIRTUAL_TIME {
        let runs = H::run(|clock, spawner| async move {
            let runs = Arc::new(AtomicU64::new(0));
            let mut scheduler = Scheduler::new();
            scheduler
                .cron("every-second", job_fn(counting(&runs)), (), "* * * * * *")
                .unwrap();
            let running = scheduler.start(clock.clone(), spawner).await.unwrap();
            clock
                .sleep_until(clock.now() + Duration::from_millis(2_100))
                .await;
            running.stop().await.unwrap();
            runs.load(Ordering::SeqCst)
        });
        Expect::Between(1, 3).check(H::NAME, runs);
        return;
    }

    // Spring forward, 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    let start: Timestamp = "2026-03-08T04:30:00Z".parse().unwrap(); // 23:30 EST the day before
    let (hourly, daily) = new_york_fires::<H>(start, 25, "CRON_TZ=America/New_York 30 2 * * *");
    let day = on_local_date(&hourly, "2026-03-08");
    assert_eq!(day.len(), 23, "{}: {day:?}", H::NAME);
    assert!(
        !day.iter().any(|h| h.starts_with("02:")),
        "{}: 02:xx does not exist: {day:?}",
        H::NAME
    );
    assert_eq!(day[2], "03:00 EDT", "{}", H::NAME);
    // A fixed-time job in the gap fires once, at the first instant after it.
    assert_eq!(
        daily,
        ["2026-03-08T07:00:00Z".parse::<Timestamp>().unwrap()],
        "{}",
        H::NAME
    );
    assert!(strictly_increasing(&hourly), "{}", H::NAME);

    // Fall back, 2026-11-01: 02:00 EDT goes back to 01:00 EST.
    let start: Timestamp = "2026-11-01T03:30:00Z".parse().unwrap(); // 23:30 EDT the day before
    let (hourly, daily) = new_york_fires::<H>(start, 26, "CRON_TZ=America/New_York 30 1 * * *");
    let day = on_local_date(&hourly, "2026-11-01");
    assert_eq!(day.len(), 25, "{}: {day:?}", H::NAME);
    assert_eq!(&day[1..3], ["01:00 EDT", "01:00 EST"], "{}", H::NAME);
    // A fixed-time job in the fold fires once, at the first occurrence.
    assert_eq!(
        daily,
        ["2026-11-01T05:30:00Z".parse::<Timestamp>().unwrap()],
        "{}",
        H::NAME
    );
    assert!(strictly_increasing(&hourly), "{}", H::NAME);
}

conformance!(cron_fires_across_a_dst_day);

fn trigger_while_running<H: Harness>() {
    H::run(|clock, spawner| async move {
        let unit = H::UNIT;
        let c = clock.clone();
        let slow = job_fn(move |(), _fire: Fire| {
            let c = c.clone();
            async move {
                c.sleep_until(c.now() + unit * 3).await;
                Ok(())
            }
        });
        let mut scheduler = Scheduler::new();
        scheduler.manual("slow", slow, ()).unwrap();
        let running = scheduler.start(clock.clone(), spawner).await.unwrap();
        let start = clock.now();
        running.trigger("slow").unwrap();
        clock.sleep_until(start + unit).await;
        assert_eq!(
            running.status("slow").unwrap().status,
            Status::Running,
            "{}",
            H::NAME
        );
        let refused = running.trigger("slow").unwrap_err();
        assert!(
            refused.to_string().contains("already running"),
            "{}: {refused}",
            H::NAME
        );
        clock.sleep_until(start + unit * 5).await;
        let info = running.status("slow").unwrap();
        assert_eq!(
            (info.status, info.run_count),
            (Status::Completed, 1),
            "{}",
            H::NAME
        );
        running.trigger("slow").unwrap();
        clock.sleep_until(start + unit * 10).await;
        assert_eq!(running.status("slow").unwrap().run_count, 2, "{}", H::NAME);
        running.stop().await.unwrap();
    });
}

conformance!(trigger_while_running);

fn backoff_then_trip_then_reset<H: Harness>() {
    H::run(|clock, spawner| async move {
        let unit = H::UNIT;
        let failing = Arc::new(AtomicBool::new(true));
        let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let (f, s, c) = (failing.clone(), starts.clone(), clock.clone());
        let flaky = job_fn(move |(), _fire: Fire| {
            s.lock().unwrap().push(c.now());
            let fails = f.load(Ordering::SeqCst);
            async move {
                if fails {
                    Err(CanoError::task_execution("flaky"))
                } else {
                    Ok(())
                }
            }
        });
        let mut scheduler = Scheduler::new();
        scheduler.every("flaky", flaky, (), unit).unwrap();
        scheduler
            .set_backoff(
                "flaky",
                BackoffPolicy {
                    initial: unit,
                    multiplier: 2.0,
                    jitter: 0.0,
                    ..BackoffPolicy::with_trip(3)
                },
            )
            .unwrap();
        let start = clock.now();
        let running = scheduler.start(clock.clone(), spawner).await.unwrap();
        clock.sleep_until(start + unit * 12).await;
        let info = running.status("flaky").unwrap();
        assert_eq!(info.run_count, 3, "{}", H::NAME);
        assert!(
            matches!(info.status, Status::Tripped { streak: 3, .. }),
            "{}: {:?}",
            H::NAME,
            info.status
        );
        let offsets: Vec<f64> = starts
            .lock()
            .unwrap()
            .iter()
            .map(|t| (*t - start).as_secs_f64() / unit.as_secs_f64())
            .collect();
        if H::VIRTUAL_TIME {
            // Fail at 0; wait max(interval, backoff 1); fail at 1; backoff 2; fail at 3: trip.
            assert_eq!(offsets, [0.0, 1.0, 3.0], "{}", H::NAME);
        }
        let refused = running.trigger("flaky").unwrap_err();
        assert!(
            refused.to_string().contains("tripped"),
            "{}: {refused}",
            H::NAME
        );

        failing.store(false, Ordering::SeqCst);
        running.reset_flow("flaky").unwrap();
        clock.sleep_until(clock.now() + unit.mul_f64(2.5)).await;
        let info = running.status("flaky").unwrap();
        assert!(
            info.run_count >= 4,
            "{}: runs again after reset: {info:?}",
            H::NAME
        );
        assert_eq!(
            (info.status, info.failure_streak),
            (Status::Completed, 0),
            "{}",
            H::NAME
        );
        running.stop().await.unwrap();
    });
}

conformance!(backoff_then_trip_then_reset);

fn graceful_stop_with_an_in_flight_run<H: Harness>() {
    H::run(|clock, spawner| async move {
        let unit = H::UNIT;
        let sleeper = |units: u32| {
            let c = clock.clone();
            job_fn(move |(), _fire: Fire| {
                let c = c.clone();
                // Ignores cancellation: only dropping it stops it.
                async move {
                    c.sleep_until(c.now() + unit * units).await;
                    Ok(())
                }
            })
        };
        let finished_short = Arc::new(AtomicBool::new(false));
        let mut scheduler = Scheduler::new();
        scheduler.manual("stuck", sleeper(1000), ()).unwrap();
        let (done, c) = (finished_short.clone(), clock.clone());
        scheduler
            .manual(
                "short",
                job_fn(move |(), _fire: Fire| {
                    let (done, c) = (done.clone(), c.clone());
                    async move {
                        c.sleep_until(c.now() + unit).await;
                        done.store(true, Ordering::SeqCst);
                        Ok(())
                    }
                }),
                (),
            )
            .unwrap();
        // A run that ignores its cancellation is dropped one wind-down after the deadline.
        scheduler.set_cancel_wind_down(unit * 2);
        let running = scheduler.start(clock.clone(), spawner).await.unwrap();
        running.trigger("stuck").unwrap();
        running.trigger("short").unwrap();
        clock.sleep_until(clock.now() + unit.mul_f64(0.5)).await;
        let stop_at = clock.now();
        let report = running.stop_within(unit * 3).await.unwrap();
        let took = (clock.now() - stop_at).as_secs_f64() / unit.as_secs_f64();
        assert_eq!(report.cancelled.len(), 1, "{}: {report:?}", H::NAME);
        assert_eq!(report.cancelled[0].flow(), "stuck", "{}", H::NAME);
        assert!(
            finished_short.load(Ordering::SeqCst),
            "{}: the short run finishes in the grace",
            H::NAME
        );
        if H::VIRTUAL_TIME {
            assert_eq!(took, 5.0, "{}: the grace, then the wind-down", H::NAME);
        } else {
            assert!(
                (4.99..8.0).contains(&took),
                "{}: stop took {took} units",
                H::NAME
            );
        }
        let after = running.trigger("short").unwrap_err();
        assert!(
            after.to_string().contains("not running"),
            "{}: {after}",
            H::NAME
        );
        // Idempotent.
        running.stop().await.unwrap();
    });
}

conformance!(graceful_stop_with_an_in_flight_run);

/// Flows added, replaced, cancelled and removed on a running scheduler: an added flow fires
/// on its schedule, `remove_flow(Wait)` returns once the run in flight finished, a replaced
/// flow runs its new job only, `cancel_flow` signals a run's cancellation and it winds
/// down without a failure, and a removed
/// id can be added again.
fn flows_added_replaced_and_removed_at_runtime<H: Harness>() {
    use cano_core::schedule::Schedule;
    use cano_core::scheduler::{FlowOptions, InFlight};

    H::run(|clock, spawner| async move {
        let unit = H::UNIT;
        let base = Arc::new(AtomicU64::new(0));
        let mut scheduler = Scheduler::new();
        scheduler
            .every("base", job_fn(counting(&base)), (), unit * 2)
            .unwrap();
        let running = scheduler.start(clock.clone(), spawner).await.unwrap();

        let added = Arc::new(AtomicU64::new(0));
        let t0 = clock.now();
        running
            .add_flow(
                "added",
                Schedule::Every(unit * 2),
                job_fn(counting(&added)),
                (),
            )
            .await
            .unwrap();
        clock.sleep_until(t0 + unit.mul_f64(5.5)).await;
        // At 0, 2 and 4 units.
        Expect::for_harness::<H>(3, 2, 1).check(H::NAME, added.load(Ordering::SeqCst));

        let finished = Arc::new(AtomicBool::new(false));
        let (done, c) = (finished.clone(), clock.clone());
        let slow = job_fn(move |(), _fire: Fire| {
            let (done, c) = (done.clone(), c.clone());
            async move {
                c.sleep_until(c.now() + unit * 3).await;
                done.store(true, Ordering::SeqCst);
                Ok(())
            }
        });
        running
            .add_flow("slow", Schedule::Manual, slow, ())
            .await
            .unwrap();
        running.trigger("slow").unwrap();
        running.remove_flow("slow", InFlight::Wait).await.unwrap();
        assert!(
            finished.load(Ordering::SeqCst),
            "{}: remove_flow(Wait) returned before the run finished",
            H::NAME
        );
        assert!(running.status("slow").is_none(), "{}", H::NAME);

        let replaced = Arc::new(AtomicU64::new(0));
        let before = added.load(Ordering::SeqCst);
        let t1 = clock.now();
        running
            .replace_flow(
                "added",
                Schedule::Every(unit),
                FlowOptions::default(),
                job_fn(counting(&replaced)),
                (),
                InFlight::Wait,
            )
            .await
            .unwrap();
        clock.sleep_until(t1 + unit.mul_f64(3.5)).await;
        assert_eq!(
            added.load(Ordering::SeqCst),
            before,
            "{}: old job ran",
            H::NAME
        );
        // At 0, 1, 2 and 3 units.
        Expect::for_harness::<H>(4, 2, 1).check(H::NAME, replaced.load(Ordering::SeqCst));

        // It winds down when its cancellation is signalled (long before the default
        // wind-down would drop it).
        let c = clock.clone();
        let stuck = job_fn(move |(), fire: Fire| {
            let c = c.clone();
            async move {
                let sleep = core::pin::pin!(c.sleep_until(c.now() + unit * 1000));
                match futures::future::select(sleep, fire.cancellation().cancelled()).await {
                    futures::future::Either::Left(_) => Ok(()),
                    futures::future::Either::Right(_) => {
                        Err(cano_core::CanoError::cancelled("asked to"))
                    }
                }
            }
        });
        running
            .add_flow("stuck", Schedule::Manual, stuck, ())
            .await
            .unwrap();
        running.trigger("stuck").unwrap();
        assert_eq!(running.cancel_flow("stuck").unwrap(), 1, "{}", H::NAME);
        let t2 = clock.now();
        while running.status("stuck").unwrap().status == Status::Running {
            assert!(clock.now() < t2 + unit * 10, "{}: never cancelled", H::NAME);
            clock.sleep_until(clock.now() + unit.mul_f64(0.1)).await;
        }
        assert_eq!(
            running.status("stuck").unwrap().failure_streak,
            0,
            "{}",
            H::NAME
        );

        running
            .remove_flow(
                "added",
                InFlight::Cancel {
                    grace: Duration::ZERO,
                },
            )
            .await
            .unwrap();
        running
            .add_flow("added", Schedule::Manual, job_fn(counting(&added)), ())
            .await
            .unwrap();
        let mut ids: Vec<_> = running.list().into_iter().map(|f| f.id).collect();
        ids.sort();
        assert_eq!(ids, ["added", "base", "stuck"], "{}", H::NAME);
        running.stop().await.unwrap();
        let late = running
            .add_flow("late", Schedule::Manual, job_fn(counting(&added)), ())
            .await
            .unwrap_err();
        assert!(
            late.as_scheduler_error().is_some_and(|e| e.is_stopped()),
            "{}: {late}",
            H::NAME
        );
    });
}

conformance!(flows_added_replaced_and_removed_at_runtime);
