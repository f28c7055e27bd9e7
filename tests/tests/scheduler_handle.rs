//! The `RunningScheduler` handle: no user-sized work inside the scheduler's lock, and typed
//! errors for misuse.

mod scheduler_support;

use std::sync::{Arc, Mutex};

use cano_core::scheduler::{
    Fire, NEXT_FIRES_LIMIT, RunningScheduler, Scheduler, SchedulerError, job_fn,
};
use cano_core::testing::Simulation;
use cano_core::{BackoffPolicy, CanoError, Status};
use scheduler_support::{Behaviour, Recorder, secs, start};

/// `next_fires(id, usize::MAX)` once allocated without bound under the lock; now it is
/// capped, and `upcoming_fires` walks as far as asked, lazily.
#[test]
fn next_fires_is_capped_for_every_kind_of_flow() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    s.every_seconds("every", rec.job(Behaviour::INSTANT_OK), (), 1)
        .unwrap();
    s.cron("cron", rec.job(Behaviour::INSTANT_OK), (), "* * * * *")
        .unwrap();
    let running = start(&sim, s);
    sim.run_for(secs(1));
    for id in ["every", "cron"] {
        let fires = running.next_fires(id, usize::MAX).unwrap();
        assert_eq!(fires.len(), NEXT_FIRES_LIMIT, "{id}");
        assert!(fires.windows(2).all(|w| w[0] < w[1]), "{id}");
        let walked: Vec<_> = running.upcoming_fires(id).unwrap().take(3000).collect();
        assert_eq!(walked.len(), 3000, "{id}");
        assert_eq!(walked[..NEXT_FIRES_LIMIT], fires[..], "{id}");
    }
    // The walk holds nothing: the handle keeps working while a plan is being walked.
    let mut plan = running.upcoming_fires("every").unwrap();
    plan.next();
    running.trigger("every").unwrap();
    assert!(running.status("every").is_some());
    assert!(plan.next().is_some());
}

/// An error whose text is not cano's own (a foreign source under `CanoError::external`).
#[derive(Debug)]
struct AsksTheScheduler(Arc<Mutex<Option<RunningScheduler>>>);

impl std::fmt::Display for AsksTheScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Calls back into the scheduler: this would deadlock or panic if the text were
        // rendered inside the scheduler's lock.
        let flows = match &*self.0.lock().unwrap() {
            Some(handle) => handle.list().len(),
            None => 0,
        };
        write!(f, "failed while {flows} flows were registered")
    }
}

impl std::error::Error for AsksTheScheduler {}

#[test]
fn a_failure_text_is_rendered_outside_the_lock() {
    let sim = Simulation::new();
    let handle: Arc<Mutex<Option<RunningScheduler>>> = Arc::default();
    let for_job = handle.clone();
    let mut s = Scheduler::new();
    s.manual(
        "m",
        job_fn(move |(), _fire: Fire| {
            let handle = for_job.clone();
            async move { Err(CanoError::external("report", AsksTheScheduler(handle))) }
        }),
        (),
    )
    .unwrap();
    let running = start(&sim, s);
    *handle.lock().unwrap() = Some(running.clone());
    running.trigger("m").unwrap();
    sim.run_until_stalled();
    match running.status("m").unwrap().status {
        Status::Backoff { last_error, .. } => {
            assert_eq!(last_error, "report: failed while 1 flows were registered")
        }
        other => panic!("{other:?}"),
    }
    // Break the cycle (the job holds a handle) and stop.
    handle.lock().unwrap().take();
    sim.block_on(running.stop()).unwrap();
}

#[test]
fn misuse_is_a_typed_error_with_cano_012_text() {
    let sim = Simulation::new();
    let rec = Recorder::new(sim.clock());
    let mut s = Scheduler::new();
    let scheduler_error = |e: &CanoError| {
        e.as_scheduler_error()
            .cloned()
            .unwrap_or_else(|| panic!("{e}"))
    };

    let empty = s
        .manual("", rec.job(Behaviour::INSTANT_OK), ())
        .unwrap_err();
    assert_eq!(scheduler_error(&empty), SchedulerError::EmptyFlowId);
    assert_eq!(empty.category(), "configuration");
    s.manual("m", rec.job(Behaviour::INSTANT_OK), ()).unwrap();
    let duplicate = s
        .manual("m", rec.job(Behaviour::INSTANT_OK), ())
        .unwrap_err();
    assert!(scheduler_error(&duplicate).is_duplicate_flow());
    let zero = s
        .every("z", rec.job(Behaviour::INSTANT_OK), (), secs(0))
        .unwrap_err();
    assert!(matches!(
        scheduler_error(&zero),
        SchedulerError::ZeroInterval { .. }
    ));
    let unknown_setter = s
        .set_backoff("ghost", BackoffPolicy::default())
        .unwrap_err();
    assert!(scheduler_error(&unknown_setter).is_unknown_flow());
    assert!(scheduler_error(&unknown_setter).is_configuration());
    let bad_policy = s
        .set_overlap("m", cano_core::schedule::OverlapPolicy::AllowConcurrent(0))
        .unwrap_err();
    assert!(matches!(
        scheduler_error(&bad_policy),
        SchedulerError::InvalidPolicy { .. }
    ));
    assert_eq!(
        bad_policy.to_string(),
        "Configuration error: OverlapPolicy::AllowConcurrent(n) needs n >= 1"
    );
    s.manual("slow", rec.job(Behaviour::taking(secs(60))), ())
        .unwrap();
    s.manual("failing", rec.job(Behaviour::failing()), ())
        .unwrap();
    s.set_backoff(
        "failing",
        BackoffPolicy {
            streak_limit: Some(1),
            ..BackoffPolicy::default()
        },
    )
    .unwrap();

    let running = start(&sim, s);
    let unknown = running.trigger("nope").unwrap_err();
    assert!(scheduler_error(&unknown).is_unknown_flow());
    assert_eq!(unknown.category(), "workflow");
    running.trigger("slow").unwrap();
    let busy = running.trigger("slow").unwrap_err();
    assert!(scheduler_error(&busy).is_already_running());
    running.trigger("failing").unwrap();
    sim.run_until_stalled();
    let tripped = running.trigger("failing").unwrap_err();
    assert!(scheduler_error(&tripped).is_tripped());

    sim.block_on(running.stop_within(secs(1))).unwrap();
    let after = running.trigger("m").unwrap_err();
    let error = scheduler_error(&after);
    assert!(error.is_stopped() && error.is_not_running(), "{error:?}");
    assert_eq!(
        after.to_string(),
        "Workflow error: Scheduler not running — it was stopped"
    );
    for refused in [
        running.reset_flow("m"),
        running.pause("m"),
        running.resume("m"),
    ] {
        assert!(scheduler_error(&refused.unwrap_err()).is_stopped());
    }
}
