//! The workflow state machine: registration, validation, transitions, total timeout,
//! cancellation, and the shared-resource lifecycle (cano 0.12 §2.1–2.4, checklist item 4).

mod workflow_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::testing::Simulation;
use cano_core::{
    CancellationToken, CanoError, Clock, DynTask, JoinConfig, JoinStrategy, MemoryStore, Resources,
    RunContext, Task, TaskResult, Workflow,
};
use workflow_support::{Job, Outcome, Probe, Recorder, St, run, run_in, single};

#[test]
fn a_linear_workflow_runs_each_state_once_and_returns_the_exit_state() {
    let (a, b) = (Job::ok(St::B), Job::ok(St::Done));
    let (calls_a, calls_b) = (a.calls(), b.calls());
    let wf = Workflow::bare()
        .register(St::A, a)
        .register(St::B, b)
        .add_exit_state(St::Done);
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(calls_a.load(Ordering::SeqCst), 1);
    assert_eq!(calls_b.load(Ordering::SeqCst), 1);
}

#[test]
fn data_flows_between_tasks_through_a_memory_store() {
    struct Produce;
    impl Task<St> for Produce {
        async fn run(&self, res: &Resources) -> Result<TaskResult<St>, CanoError> {
            res.get_ref::<MemoryStore, _>("store")?.put("n", 20u32)?;
            Ok(TaskResult::Single(St::B))
        }
    }
    struct Consume;
    impl Task<St> for Consume {
        async fn run(&self, res: &Resources) -> Result<TaskResult<St>, CanoError> {
            let store = res.get::<MemoryStore, _>("store")?;
            let n: u32 = store.get("n")?;
            store.put("n", n * 2 + 2)?;
            Ok(TaskResult::Single(St::Done))
        }
    }
    let store = MemoryStore::new();
    let resources = Resources::new().insert("store", store.clone()).unwrap();
    let wf = Workflow::new(resources)
        .register(St::A, Produce)
        .register(St::B, Consume)
        .add_exit_state(St::Done);
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(store.get::<u32>("n"), Ok(42));
}

#[test]
fn a_task_without_run_or_run_bare_is_a_configuration_error_reported_at_once() {
    struct Nothing;
    impl Task<St> for Nothing {}
    let wf = Workflow::bare()
        .register(St::A, Nothing)
        .add_exit_state(St::Done);
    // The default config retries 3 times with backoff; a configuration error skips all of it.
    let (result, took) = run(&wf, St::A);
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Configuration error: task Nothing: neither `run` nor `run_bare` is implemented"
    );
    assert_eq!(took, Duration::ZERO, "no backoff pause before the error");
}

/// The class: whatever the retry mode, in a single state or a split branch, a
/// configuration error is the first attempt's result, unwrapped, with no pause.
#[test]
fn configuration_errors_are_never_retried_under_any_retry_mode() {
    use cano_core::{RetryMode, TaskConfig};
    struct Misconfigured {
        mode: RetryMode,
        calls: Arc<AtomicUsize>,
    }
    impl Task<St> for Misconfigured {
        fn config(&self) -> TaskConfig {
            TaskConfig::new().with_retry(self.mode.clone())
        }
        async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(CanoError::configuration("the endpoint setting is empty"))
        }
    }
    let modes = [
        RetryMode::None,
        RetryMode::fixed(1, Duration::from_secs(1)),
        RetryMode::fixed(1_000, Duration::ZERO),
        RetryMode::exponential(5),
        RetryMode::default(),
    ];
    for mode in modes {
        for in_split in [false, true] {
            let calls = Arc::new(AtomicUsize::new(0));
            let task = Misconfigured {
                mode: mode.clone(),
                calls: calls.clone(),
            };
            let wf = if in_split {
                Workflow::bare().register_split(
                    St::A,
                    vec![task],
                    JoinConfig::new(JoinStrategy::All, St::Done),
                )
            } else {
                Workflow::bare().register(St::A, task)
            }
            .add_exit_state(St::Done);
            let (result, took) = run(&wf, St::A);
            let err = result.unwrap_err();
            assert_eq!(
                calls.load(Ordering::SeqCst),
                1,
                "{mode:?}, split: {in_split}"
            );
            assert_eq!(took, Duration::ZERO, "{mode:?}, split: {in_split}");
            assert!(
                err.to_string().contains("the endpoint setting is empty")
                    && !err.to_string().contains("Retry exhausted"),
                "{mode:?}, split: {in_split}: {err}"
            );
        }
    }
}

#[test]
fn a_bare_task_may_implement_run_bare_only() {
    struct Bare;
    impl Task<St> for Bare {
        async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
            Ok(TaskResult::Single(St::Done))
        }
    }
    let wf = Workflow::bare()
        .register(St::A, Bare)
        .add_exit_state(St::Done);
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
}

#[test]
fn an_initial_exit_state_returns_immediately_even_if_registered() {
    let job = Job::ok(St::B);
    let calls = job.calls();
    let wf = Workflow::bare()
        .register(St::Done, job)
        .register(St::A, Job::ok(St::Done))
        .add_exit_state(St::Done);
    assert_eq!(run(&wf, St::Done).0, Ok(St::Done));
    // The exit check precedes the handler lookup: the task registered for Done never runs.
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn an_unregistered_initial_state_is_rejected_before_anything_runs() {
    let (wf, calls) = single(Job::ok(St::Done));
    let err = run(&wf, St::B).0.unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert!(err.message().contains("B"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(wf.validate_initial_state(&St::A).is_ok());
    assert!(wf.validate_initial_state(&St::Done).is_ok());
}

#[test]
fn a_returned_state_that_is_neither_registered_nor_exit_names_the_task_and_both_states() {
    let wf = Workflow::bare()
        .register(St::A, Job::ok(St::C).named("router"))
        .add_exit_state(St::Done);
    let err = run(&wf, St::A).0.unwrap_err();
    assert_eq!(err.category(), "workflow");
    let message = err.message();
    assert!(message.contains("router"), "{message}");
    assert!(message.contains("A") && message.contains("C"), "{message}");
}

#[test]
fn validation_reports_the_reference_errors() {
    let empty: Workflow<St> = Workflow::bare();
    assert!(
        empty
            .validate()
            .unwrap_err()
            .message()
            .contains("no registered state")
    );

    let no_exit = Workflow::bare().register(St::A, Job::ok(St::B));
    assert!(
        no_exit
            .validate()
            .unwrap_err()
            .message()
            .contains("no exit states")
    );

    let valid = Workflow::bare()
        .register(St::A, Job::ok(St::Done))
        .add_exit_state(St::Done);
    assert_eq!(valid.validate(), Ok(()));

    let split = |join: JoinConfig<St>, branches: usize| {
        Workflow::bare()
            .register_split(St::Fan, (0..branches).map(|_| Job::ok(St::Done)), join)
            .add_exit_state(St::Done)
    };
    let unregistered_join = split(JoinConfig::new(JoinStrategy::All, St::Join), 2);
    let err = unregistered_join.validate().unwrap_err();
    assert_eq!(err.category(), "configuration");
    assert!(
        err.message()
            .contains("neither registered nor an exit state"),
        "{err}"
    );
    assert_eq!(
        split(JoinConfig::new(JoinStrategy::All, St::Done), 2).validate(),
        Ok(())
    );

    let partial_no_timeout = split(JoinConfig::new(JoinStrategy::PartialTimeout, St::Done), 2);
    assert!(
        partial_no_timeout
            .validate()
            .unwrap_err()
            .message()
            .contains("requires a timeout")
    );

    for p in [0.0, 1.5, f64::NAN, -0.5] {
        let err = split(JoinConfig::new(JoinStrategy::Percentage(p), St::Done), 2)
            .validate()
            .unwrap_err();
        assert!(err.message().contains("Percentage"), "{err}");
    }

    let zero_bulkhead = split(
        JoinConfig::new(JoinStrategy::All, St::Done).with_bulkhead(0),
        2,
    );
    assert!(
        zero_bulkhead
            .validate()
            .unwrap_err()
            .message()
            .contains("bulkhead")
    );
}

#[test]
fn validation_rejects_joins_that_can_never_be_satisfied() {
    for strategy in [JoinStrategy::Quorum(3), JoinStrategy::PartialResults(3)] {
        let wf = Workflow::bare()
            .register_split(
                St::Fan,
                [Job::ok(St::Done), Job::ok(St::Done)],
                JoinConfig::new(strategy, St::Done),
            )
            .add_exit_state(St::Done);
        let err = wf.validate().unwrap_err();
        assert!(
            err.message().contains("can never be satisfied"),
            "{strategy:?}: {err}"
        );
    }
    let empty_any = Workflow::bare()
        .register_split(
            St::Fan,
            Vec::<Job>::new(),
            JoinConfig::new(JoinStrategy::Any, St::Done),
        )
        .add_exit_state(St::Done);
    assert!(empty_any.validate().is_err());
}

#[test]
fn a_join_task_that_no_split_joins_into_is_a_configuration_error() {
    struct Merge;
    impl cano_core::JoinTask<St> for Merge {
        async fn join(
            &self,
            _res: &Resources,
            _results: &cano_core::SplitResult<St>,
        ) -> Result<TaskResult<St>, CanoError> {
            Ok(TaskResult::Single(St::Done))
        }
    }
    let wf = Workflow::bare()
        .register(St::A, Job::ok(St::Join))
        .register_join(St::Join, Merge)
        .add_exit_state(St::Done);
    let err = wf.validate().unwrap_err();
    assert!(err.message().contains("no split joins into it"), "{err}");
}

#[test]
fn re_registering_a_state_replaces_its_task() {
    let (old, new) = (Job::ok(St::Failed), Job::ok(St::Done));
    let old_calls = old.calls();
    let wf = Workflow::bare()
        .register(St::A, old)
        .register(St::A, new)
        .add_exit_states([St::Done, St::Failed]);
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(old_calls.load(Ordering::SeqCst), 0);
    assert_eq!(wf.registered_states().count(), 1);
}

#[test]
fn tasks_of_different_types_mix_through_dyn_task() {
    struct Other;
    impl Task<St> for Other {
        async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
            Ok(TaskResult::Single(St::Done))
        }
    }
    let branches: Vec<Box<dyn DynTask<St>>> = vec![Box::new(Job::ok(St::Done)), Box::new(Other)];
    let wf = Workflow::bare()
        .register(St::A, Arc::new(Job::ok(St::Fan)))
        .register_split(
            St::Fan,
            branches,
            JoinConfig::new(JoinStrategy::All, St::Done),
        )
        .add_exit_state(St::Done);
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
}

#[test]
fn the_total_timeout_bounds_the_run_on_the_fake_clock() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let slow = Job::ok(St::Done).sleeping(&clock, Duration::from_secs(60));
    let wf = Workflow::bare()
        .register(St::A, slow)
        .add_exit_state(St::Done)
        .with_timeout(Duration::from_secs(5));
    let (result, took) = run_in(&sim, &wf, St::A);
    let err = result.unwrap_err();
    assert_eq!(err.category(), "timeout");
    assert!(err.message().contains("Workflow timeout"), "{err}");
    assert_eq!(took, Duration::from_secs(5));
    // The abandoned task's sleep was dropped with it: nothing is left pending.
    assert_eq!(clock.pending_sleeps(), 0);
}

#[test]
fn a_loop_without_exit_is_bounded_by_the_total_timeout() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let wf = Workflow::bare()
        .register(
            St::A,
            Job::ok(St::B).sleeping(&clock, Duration::from_millis(10)),
        )
        .register(
            St::B,
            Job::ok(St::A).sleeping(&clock, Duration::from_millis(10)),
        )
        .add_exit_state(St::Done)
        .with_timeout(Duration::from_secs(1));
    let (result, took) = run_in(&sim, &wf, St::A);
    assert_eq!(result.unwrap_err().category(), "timeout");
    assert_eq!(took, Duration::from_secs(1));
}

#[test]
fn cancelling_a_run_drops_the_running_task_and_reports_cancelled() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let slow = Job::ok(St::B).sleeping(&clock, Duration::from_secs(60));
    let next = Job::ok(St::Done);
    let next_calls = next.calls();
    let wf = Workflow::bare()
        .register(St::A, slow)
        .register(St::B, next)
        .add_exit_state(St::Done);
    let token = CancellationToken::new();
    let canceller = token.clone();
    let c = clock.clone();
    use cano_core::Spawner;
    sim.spawner()
        .spawn(Box::pin(async move {
            c.sleep_until(c.now() + Duration::from_secs(3)).await;
            canceller.cancel();
        }))
        .unwrap();
    let ctx = RunContext::new(clock.clone()).with_cancellation(token);
    let result = sim.block_on(wf.orchestrate_with(ctx, St::A));
    assert_eq!(result.unwrap_err().category(), "cancelled");
    assert_eq!(clock.now().as_millis(), 3_000);
    assert_eq!(next_calls.load(Ordering::SeqCst), 0);
}

/// Runs the state machine from `A` with `token`, on a fresh simulation.
fn run_fsm_with(wf: &Workflow<St>, token: CancellationToken) -> Result<St, CanoError> {
    let sim = Simulation::new();
    let ctx = RunContext::new(sim.clock()).with_cancellation(token);
    sim.block_on(wf.run_fsm(ctx, St::A))
}

#[test]
fn a_token_cancelled_before_the_run_runs_nothing() {
    let (wf, calls) = single(Job::ok(St::Done));
    let token = CancellationToken::new();
    token.cancel();
    assert_eq!(
        run_fsm_with(&wf, token).unwrap_err().category(),
        "cancelled"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn cancellation_is_seen_between_states_even_when_no_task_ever_waits() {
    struct CancelThenGo(CancellationToken);
    impl Task<St> for CancelThenGo {
        async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
            self.0.cancel();
            Ok(TaskResult::Single(St::B))
        }
    }
    let token = CancellationToken::new();
    let after = Job::ok(St::Done);
    let after_calls = after.calls();
    let wf = Workflow::bare()
        .register(St::A, CancelThenGo(token.clone()))
        .register(St::B, after)
        .add_exit_state(St::Done);
    assert_eq!(
        run_fsm_with(&wf, token).unwrap_err().category(),
        "cancelled"
    );
    assert_eq!(after_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn orchestrate_sets_resources_up_fifo_and_tears_them_down_lifo() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let resources = Resources::new()
        .insert("a", Probe::new("a", &log))
        .unwrap()
        .insert("b", Probe::new("b", &log))
        .unwrap();
    let wf = Workflow::new(resources)
        .register(St::A, Job::ok(St::Done))
        .add_exit_state(St::Done);
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(
        *log.lock().unwrap(),
        ["setup a", "setup b", "teardown b", "teardown a"]
    );
    assert_eq!(wf.resources().holders(), 0);
}

#[test]
fn concurrent_runs_share_one_setup_and_one_teardown() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let resources = Resources::new()
        .insert("db", Probe::new("db", &log))
        .unwrap();
    let sim = Simulation::new();
    let clock = sim.clock();
    let wf = Arc::new(
        Workflow::new(resources)
            .register(
                St::A,
                Job::ok(St::Done).sleeping(&clock, Duration::from_secs(10)),
            )
            .add_exit_state(St::Done),
    );
    let done = Arc::new(AtomicUsize::new(0));
    use cano_core::Spawner;
    for start_after in [0u64, 2, 4] {
        let (wf, clock, done) = (wf.clone(), clock.clone(), done.clone());
        sim.spawner()
            .spawn(Box::pin(async move {
                clock
                    .sleep_until(clock.now() + Duration::from_secs(start_after))
                    .await;
                assert_eq!(wf.orchestrate_on(&clock, St::A).await, Ok(St::Done));
                done.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
    }
    sim.run_until_idle();
    assert_eq!(done.load(Ordering::SeqCst), 3);
    // Overlapping runs: one setup when the first starts, one teardown when the last ends.
    assert_eq!(*log.lock().unwrap(), ["setup db", "teardown db"]);
}

#[test]
fn a_failed_setup_rolls_back_and_runs_nothing() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut broken = Probe::new("b", &log);
    broken.setup_fails = true;
    let resources = Resources::new()
        .insert("a", Probe::new("a", &log))
        .unwrap()
        .insert("b", broken)
        .unwrap()
        .insert("c", Probe::new("c", &log))
        .unwrap();
    let job = Job::ok(St::Done);
    let calls = job.calls();
    let wf = Workflow::new(resources)
        .register(St::A, job)
        .add_exit_state(St::Done);
    let err = run(&wf, St::A).0.unwrap_err();
    assert_eq!(err.message(), "b setup failed");
    assert_eq!(*log.lock().unwrap(), ["setup a", "setup b", "teardown a"]);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn teardown_errors_go_to_observers_and_never_replace_the_result() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut broken = Probe::new("a", &log);
    broken.teardown_fails = true;
    let resources = Resources::new()
        .insert("a", broken)
        .unwrap()
        .insert("b", Probe::new("b", &log))
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let wf = Workflow::new(resources)
        .register(St::A, Job::ok(St::Done))
        .add_exit_state(St::Done)
        .with_observer(recorder.clone());
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(
        *log.lock().unwrap(),
        ["setup a", "setup b", "teardown b", "teardown a"]
    );
    assert!(
        recorder
            .events()
            .contains(&"resource-error a teardown failed".to_string())
    );
}

#[test]
fn run_fsm_leaves_the_resource_lifecycle_to_its_caller() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let resources = Resources::new()
        .insert("db", Probe::new("db", &log))
        .unwrap();
    let wf = Workflow::new(resources)
        .register(St::A, Job::ok(St::Done))
        .add_exit_state(St::Done);
    let sim = Simulation::new();
    let clock = sim.clock();
    sim.block_on(wf.resources().setup_all()).unwrap();
    for _ in 0..3 {
        let ctx = RunContext::new(clock.clone());
        assert_eq!(sim.block_on(wf.run_fsm(ctx, St::A)), Ok(St::Done));
    }
    // An orchestrate in between joins the scheduler's hold instead of re-running setup.
    assert_eq!(sim.block_on(wf.orchestrate_on(&clock, St::A)), Ok(St::Done));
    assert_eq!(*log.lock().unwrap(), ["setup db"]);
    assert!(sim.block_on(wf.resources().teardown_all()).is_empty());
    assert_eq!(*log.lock().unwrap(), ["setup db", "teardown db"]);
}

#[test]
fn a_dropped_run_releases_its_hold_without_teardown() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let resources = Resources::new()
        .insert("db", Probe::new("db", &log))
        .unwrap();
    let sim = Simulation::new();
    let clock = sim.clock();
    let wf = Workflow::new(resources)
        .register(
            St::A,
            Job::ok(St::Done).sleeping(&clock, Duration::from_secs(10)),
        )
        .add_exit_state(St::Done);
    let mut run = Box::pin(wf.orchestrate_on(&clock, St::A));
    let waker = std::task::Waker::noop();
    assert!(
        run.as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_pending()
    );
    assert_eq!(wf.resources().holders(), 1);
    drop(run);
    assert_eq!(wf.resources().holders(), 0);
    // The next run reuses the resources that are still up and tears them down at its end.
    assert_eq!(sim.block_on(wf.orchestrate_on(&clock, St::A)), Ok(St::Done));
    assert_eq!(*log.lock().unwrap(), ["setup db", "teardown db"]);
}

#[test]
fn a_workflow_clone_shares_tasks_and_resources() {
    let (wf, calls) = single(Job::ok(St::Done));
    let copy = wf.clone();
    assert_eq!(run(&copy, St::A).0, Ok(St::Done));
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(Arc::ptr_eq(wf.resources(), copy.resources()));
}

#[test]
fn a_task_failure_ends_the_run_with_that_error() {
    let wf = Workflow::bare()
        .register(St::A, Job::new([Outcome::Fail("disk full")]))
        .add_exit_state(St::Done);
    let err = run(&wf, St::A).0.unwrap_err();
    assert_eq!(err, CanoError::task_execution("disk full"));
}

#[test]
fn many_states_use_the_hashed_lookup_and_still_find_every_state() {
    // More states than the linear scan covers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    struct N(u32);
    struct Next(u32);
    impl Task<N> for Next {
        async fn run_bare(&self) -> Result<TaskResult<N>, CanoError> {
            Ok(TaskResult::Single(N(self.0 + 1)))
        }
    }
    let wf = (0..40)
        .fold(Workflow::bare(), |wf, i| wf.register(N(i), Next(i)))
        .add_exit_state(N(40));
    let sim = Simulation::new();
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&sim.clock(), N(0))),
        Ok(N(40))
    );
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&sim.clock(), N(39))),
        Ok(N(40))
    );
    let _ = sim.clock().now();
}

/// A resource whose setup and teardown take time on the fake clock.
struct Slow {
    clock: cano_core::testing::FakeClock,
    log: Arc<Mutex<Vec<String>>>,
}

impl Slow {
    /// Logs `what` starting, takes five seconds, logs it ending.
    async fn take_five(&self, what: &str) -> Result<(), CanoError> {
        let note = |edge: &str| {
            let at = self.clock.now().as_millis();
            self.log.lock().unwrap().push(format!("{what} {edge} {at}"));
        };
        note("start");
        self.clock
            .sleep_until(self.clock.now() + Duration::from_secs(5))
            .await;
        note("end");
        Ok(())
    }
}

impl cano_core::Resource for Slow {
    async fn setup(&self) -> Result<(), CanoError> {
        self.take_five("setup").await
    }
    async fn teardown(&self) -> Result<(), CanoError> {
        self.take_five("teardown").await
    }
}

#[test]
fn runs_arriving_during_a_setup_or_teardown_wait_for_it() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let log = Arc::new(Mutex::new(Vec::new()));
    let resources = Resources::new()
        .insert(
            "slow",
            Slow {
                clock: clock.clone(),
                log: log.clone(),
            },
        )
        .unwrap();
    let task_log = log.clone();
    struct Note(Arc<Mutex<Vec<String>>>, cano_core::testing::FakeClock);
    impl Task<St> for Note {
        async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
            self.0
                .lock()
                .unwrap()
                .push(format!("task {}", self.1.now().as_millis()));
            Ok(TaskResult::Single(St::Done))
        }
    }
    let wf = Arc::new(
        Workflow::new(resources)
            .register(St::A, Note(task_log, clock.clone()))
            .add_exit_state(St::Done),
    );
    use cano_core::Spawner;
    // One run at 0 s (setup 0–5 s), one at 1 s (waits for that setup), one at 7 s (arrives
    // during the teardown 5–10 s, waits, and sets up again 10–15 s).
    for start_at in [0u64, 1, 7] {
        let (wf, clock) = (wf.clone(), clock.clone());
        sim.spawner()
            .spawn(Box::pin(async move {
                clock
                    .sleep_until(cano_core::Instant::from_secs(start_at))
                    .await;
                assert_eq!(wf.orchestrate_on(&clock, St::A).await, Ok(St::Done));
            }))
            .unwrap();
    }
    sim.run_until_idle();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "setup start 0",
            "setup end 5000",
            "task 5000",
            "task 5000",
            "teardown start 5000",
            "teardown end 10000",
            "setup start 10000",
            "setup end 15000",
            "task 15000",
            "teardown start 15000",
            "teardown end 20000",
        ]
    );
    assert_eq!(wf.resources().holders(), 0);
}

/// Fails its first (slow) setup, succeeds afterwards.
struct FailsOnce {
    clock: cano_core::testing::FakeClock,
    setups: AtomicUsize,
}

impl cano_core::Resource for FailsOnce {
    async fn setup(&self) -> Result<(), CanoError> {
        self.clock
            .sleep_until(self.clock.now() + Duration::from_secs(5))
            .await;
        if self.setups.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(CanoError::generic("first setup fails"));
        }
        Ok(())
    }
}

#[test]
fn a_caller_that_joined_a_failed_setup_tries_its_own() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let resources = Resources::new()
        .insert(
            "flaky",
            FailsOnce {
                clock: clock.clone(),
                setups: AtomicUsize::new(0),
            },
        )
        .unwrap();
    let wf = Arc::new(
        Workflow::new(resources)
            .register(St::A, Job::ok(St::Done))
            .add_exit_state(St::Done),
    );
    let results = Arc::new(Mutex::new(Vec::new()));
    use cano_core::Spawner;
    for start_at in [0u64, 1] {
        let (wf, clock, results) = (wf.clone(), clock.clone(), results.clone());
        sim.spawner()
            .spawn(Box::pin(async move {
                clock
                    .sleep_until(cano_core::Instant::from_secs(start_at))
                    .await;
                let result = wf.orchestrate_on(&clock, St::A).await;
                results
                    .lock()
                    .unwrap()
                    .push((start_at, result, clock.now().as_millis()));
            }))
            .unwrap();
    }
    sim.run_until_idle();
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].0, 0);
    assert_eq!(
        results[0].1.as_ref().unwrap_err().message(),
        "first setup fails"
    );
    assert_eq!(results[0].2, 5_000);
    assert_eq!(results[1], (1, Ok(St::Done), 10_000));
    assert_eq!(wf.resources().holders(), 0);
}
