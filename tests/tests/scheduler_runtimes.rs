//! The scheduler on real runtimes through the adapters' one-call starts: tokio with paused
//! time (deterministic), and short smoke tests on tokio's multi-threaded runtime and smol.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cano_core::scheduler::{Fire, Scheduler, job_fn};
use cano_core::{CanoError, Status};

fn counting(counter: &Arc<AtomicU32>) -> impl cano_core::scheduler::Job<()> + use<> {
    let counter = counter.clone();
    job_fn(move |(), _fire: Fire| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<(), CanoError>(())
        }
    })
}

#[test]
fn tokio_paused_time_runs_the_same_schedule_as_the_fake_clock() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let runs = Arc::new(AtomicU32::new(0));
        let mut s = Scheduler::new();
        s.every_seconds("tick", counting(&runs), (), 10).unwrap();
        s.set_backoff("tick", cano_core::BackoffPolicy::default())
            .unwrap();
        let running = cano_tokio::start_scheduler(s).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3600) + Duration::from_millis(5)).await;
        // Fixed delay from the end of each (instant) run: 0, 10, …, 3600 s.
        assert_eq!(runs.load(Ordering::SeqCst), 361);
        assert_eq!(running.status("tick").unwrap().status, Status::Completed);
        let report = running.stop().await.unwrap();
        assert!(report.cancelled.is_empty());
    });
}

#[test]
fn tokio_multi_thread_triggers_and_stops() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let runs = Arc::new(AtomicU32::new(0));
        let mut s = Scheduler::new();
        s.manual("m", counting(&runs), ()).unwrap();
        let running = cano_tokio::start_scheduler(s).await.unwrap();
        for _ in 0..100 {
            while running.trigger("m").is_err() {
                tokio::task::yield_now().await;
            }
        }
        while running.has_running_flows() || runs.load(Ordering::SeqCst) < 100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(running.status("m").unwrap().run_count, 100);
        running.stop_within(Duration::from_secs(1)).await.unwrap();
        assert!(running.trigger("m").is_err());
    });
}

#[test]
fn smol_triggers_and_stops() {
    let ex = Arc::new(async_executor::Executor::new());
    futures::executor::block_on(ex.run(async {
        let runs = Arc::new(AtomicU32::new(0));
        let mut s = Scheduler::new();
        s.manual("m", counting(&runs), ()).unwrap();
        s.every("tick", counting(&runs), (), Duration::from_millis(5))
            .unwrap();
        let running = cano_smol::start_scheduler(s, ex.clone()).await.unwrap();
        running.trigger("m").unwrap();
        async_io::Timer::after(Duration::from_millis(30)).await;
        assert_eq!(running.status("m").unwrap().run_count, 1);
        assert!(running.status("tick").unwrap().run_count >= 2);
        running.stop().await.unwrap();
    }));
}
