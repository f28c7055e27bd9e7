//! Split/join (cano 0.12 §2.5, checklist item 5), with the reference's traps fixed: joins end
//! as soon as they are decided, a satisfied quorum is not failed by a later timeout, and the
//! join state receives the split's results.

mod workflow_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cano_core::testing::Simulation;
use cano_core::{
    CanoError, CircuitBreaker, CircuitPolicy, Clock, JoinConfig, JoinStrategy, JoinTask,
    MemoryStore, Resources, RunContext, SplitResult, Task, TaskConfig, TaskResult, Workflow,
};
use workflow_support::{Job, Outcome, Recorder, St, run, run_in};

fn split_workflow(jobs: Vec<Job>, join: JoinConfig<St>) -> Workflow<St> {
    Workflow::bare()
        .register_split(St::Fan, jobs, join)
        .add_exit_states([St::Done, St::Failed])
}

/// `ok` successes then `failing` failures, each branch sleeping `i + 1` seconds so they
/// complete in index order.
fn branches(sim: &Simulation, ok: usize, failing: usize) -> Vec<Job> {
    let clock = sim.clock();
    (0..ok + failing)
        .map(|i| {
            let job = if i < ok {
                Job::ok(St::A)
            } else {
                Job::fail("branch failed")
            };
            job.sleeping(&clock, Duration::from_secs(i as u64 + 1))
        })
        .collect()
}

#[test]
fn all_any_quorum_and_percentage_join_when_satisfied() {
    for strategy in [
        JoinStrategy::All,
        JoinStrategy::Any,
        JoinStrategy::Quorum(2),
        JoinStrategy::Percentage(0.5),
        JoinStrategy::Percentage(1.0),
    ] {
        let sim = Simulation::new();
        let wf = split_workflow(branches(&sim, 3, 0), JoinConfig::new(strategy, St::Done));
        assert_eq!(run_in(&sim, &wf, St::Fan).0, Ok(St::Done), "{strategy:?}");
    }
}

#[test]
fn a_join_ends_as_soon_as_it_is_satisfied_and_cancels_the_rest() {
    // Branches finish at 1 s, 2 s, 3 s, 4 s.
    for (strategy, ends_at) in [
        (JoinStrategy::Any, 1),
        (JoinStrategy::Quorum(2), 2),
        (JoinStrategy::Percentage(0.75), 3),
        (JoinStrategy::PartialResults(2), 2),
        (JoinStrategy::All, 4),
    ] {
        let sim = Simulation::new();
        let wf = split_workflow(branches(&sim, 4, 0), JoinConfig::new(strategy, St::Done));
        let (result, took) = run_in(&sim, &wf, St::Fan);
        assert_eq!(result, Ok(St::Done), "{strategy:?}");
        assert_eq!(took, Duration::from_secs(ends_at), "{strategy:?}");
        assert_eq!(
            sim.clock().pending_sleeps(),
            0,
            "cancelled branches leave no timers"
        );
    }
}

#[test]
fn all_fails_fast_on_the_first_failure() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let jobs = vec![
        Job::ok(St::A).sleeping(&clock, Duration::from_secs(10)),
        Job::fail("broken").sleeping(&clock, Duration::from_secs(1)),
        Job::ok(St::A).sleeping(&clock, Duration::from_secs(10)),
    ];
    let wf = split_workflow(jobs, JoinConfig::new(JoinStrategy::All, St::Done));
    let (result, took) = run_in(&sim, &wf, St::Fan);
    let err = result.unwrap_err();
    assert_eq!(err.category(), "workflow");
    assert!(err.message().contains("Join condition not met"), "{err}");
    assert!(
        err.message()
            .contains("task 1: Task execution error: broken"),
        "{err}"
    );
    assert_eq!(took, Duration::from_secs(1));
}

#[test]
fn a_quorum_fails_once_it_can_no_longer_be_met() {
    let sim = Simulation::new();
    // 1 success (at 1 s), then failures at 2, 3 and 4 s.
    let wf = split_workflow(
        branches(&sim, 1, 3),
        JoinConfig::new(JoinStrategy::Quorum(3), St::Done),
    );
    let (result, took) = run_in(&sim, &wf, St::Fan);
    let err = result.unwrap_err();
    assert!(
        err.message()
            .contains("1 of 4 tasks completed successfully"),
        "{err}"
    );
    // Quorum(3) needs 3 of 4: impossible at the second failure (3 s).
    assert_eq!(took, Duration::from_secs(3));
}

#[test]
fn more_than_three_errors_are_summarised() {
    let sim = Simulation::new();
    let wf = split_workflow(
        branches(&sim, 0, 5),
        JoinConfig::new(JoinStrategy::Quorum(5), St::Done),
    );
    let err = run_in(&sim, &wf, St::Fan).0.unwrap_err();
    // Quorum(5) of 5 fails at the first failure.
    assert!(err.message().contains("task 0"), "{err}");

    let sim = Simulation::new();
    let clock = sim.clock();
    let jobs: Vec<Job> = (0..5)
        .map(|_| Job::fail("x").sleeping(&clock, Duration::from_secs(1)))
        .collect();
    let wf = split_workflow(jobs, JoinConfig::new(JoinStrategy::Any, St::Done));
    let err = run_in(&sim, &wf, St::Fan).0.unwrap_err();
    assert!(err.message().contains("and 2 more error(s)"), "{err}");
}

#[test]
fn a_split_timeout_fails_an_undecided_join() {
    let sim = Simulation::new();
    let wf = split_workflow(
        branches(&sim, 3, 0),
        JoinConfig::new(JoinStrategy::All, St::Done).with_timeout(Duration::from_millis(2_500)),
    );
    let (result, took) = run_in(&sim, &wf, St::Fan);
    let err = result.unwrap_err();
    assert_eq!(err.category(), "timeout");
    assert!(err.message().contains("timeout"), "{err}");
    assert_eq!(took, Duration::from_millis(2_500));
}

#[test]
fn a_satisfied_quorum_is_not_failed_by_a_later_timeout() {
    // cano 0.12 waited for every branch and then failed on the timeout.
    let sim = Simulation::new();
    let clock = sim.clock();
    let jobs = vec![
        Job::ok(St::A).sleeping(&clock, Duration::from_secs(1)),
        Job::ok(St::A).sleeping(&clock, Duration::from_secs(2)),
        Job::ok(St::A).sleeping(&clock, Duration::from_secs(100)),
    ];
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::Quorum(2), St::Done).with_timeout(Duration::from_secs(5)),
    );
    let (result, took) = run_in(&sim, &wf, St::Fan);
    assert_eq!(result, Ok(St::Done));
    assert_eq!(took, Duration::from_secs(2));
}

#[test]
fn partial_results_with_failures_and_unmet_minimum() {
    let sim = Simulation::new();
    // Successes at 1 s and 2 s, failures at 3 s and 4 s.
    let wf = split_workflow(
        branches(&sim, 2, 2),
        JoinConfig::new(JoinStrategy::PartialResults(2), St::Done),
    );
    assert_eq!(
        run_in(&sim, &wf, St::Fan),
        (Ok(St::Done), Duration::from_secs(2))
    );

    let sim = Simulation::new();
    let wf = split_workflow(
        branches(&sim, 1, 3),
        JoinConfig::new(JoinStrategy::PartialResults(2), St::Done),
    );
    let err = run_in(&sim, &wf, St::Fan).0.unwrap_err();
    assert!(
        err.message()
            .contains("1 of 4 tasks completed successfully"),
        "{err}"
    );
}

#[test]
fn partial_timeout_goes_on_with_whatever_completed() {
    // Basic: two of three done by the timeout.
    let sim = Simulation::new();
    let wf = split_workflow(
        branches(&sim, 3, 0),
        JoinConfig::new(JoinStrategy::PartialTimeout, St::Done)
            .with_timeout(Duration::from_millis(2_500)),
    );
    assert_eq!(
        run_in(&sim, &wf, St::Fan),
        (Ok(St::Done), Duration::from_millis(2_500))
    );

    // Failures count as completed.
    let sim = Simulation::new();
    let wf = split_workflow(
        branches(&sim, 0, 3),
        JoinConfig::new(JoinStrategy::PartialTimeout, St::Done)
            .with_timeout(Duration::from_millis(1_500)),
    );
    assert_eq!(run_in(&sim, &wf, St::Fan).0, Ok(St::Done));

    // All complete before the timeout: join at the last completion.
    let sim = Simulation::new();
    let wf = split_workflow(
        branches(&sim, 3, 0),
        JoinConfig::new(JoinStrategy::PartialTimeout, St::Done)
            .with_timeout(Duration::from_secs(60)),
    );
    assert_eq!(
        run_in(&sim, &wf, St::Fan),
        (Ok(St::Done), Duration::from_secs(3))
    );

    // Nothing completed before the timeout.
    let sim = Simulation::new();
    let wf = split_workflow(
        branches(&sim, 3, 0),
        JoinConfig::new(JoinStrategy::PartialTimeout, St::Done)
            .with_timeout(Duration::from_millis(500)),
    );
    let err = run_in(&sim, &wf, St::Fan).0.unwrap_err();
    assert!(
        err.message().contains("PartialTimeout: no tasks completed"),
        "{err}"
    );
}

#[test]
fn edge_cases_pinned_by_the_reference() {
    // Empty split + All → join.
    let wf = split_workflow(Vec::new(), JoinConfig::new(JoinStrategy::All, St::Done));
    assert_eq!(run(&wf, St::Fan).0, Ok(St::Done));
    // Quorum(0) with every branch failing → join.
    let jobs = vec![Job::fail("a"), Job::fail("b")];
    let wf = split_workflow(jobs, JoinConfig::new(JoinStrategy::Quorum(0), St::Done));
    assert_eq!(run(&wf, St::Fan).0, Ok(St::Done));
    // A single task in a split.
    let wf = split_workflow(
        vec![Job::ok(St::A)],
        JoinConfig::new(JoinStrategy::All, St::Done),
    );
    assert_eq!(run(&wf, St::Fan).0, Ok(St::Done));
    // Percentage(1.0) behaves like All.
    let wf = split_workflow(
        vec![Job::ok(St::A), Job::fail("x")],
        JoinConfig::new(JoinStrategy::Percentage(1.0), St::Done),
    );
    assert!(run(&wf, St::Fan).0.is_err());
    // Invalid percentages are configuration errors at run time too.
    let wf = split_workflow(
        vec![Job::ok(St::A)],
        JoinConfig::new(JoinStrategy::Percentage(0.0), St::Done),
    );
    assert_eq!(run(&wf, St::Fan).0.unwrap_err().category(), "configuration");
}

#[test]
fn branch_results_states_are_not_followed_but_reach_the_join_task() {
    struct Merge;
    impl JoinTask<St> for Merge {
        async fn join(
            &self,
            _res: &Resources,
            results: &SplitResult<St>,
        ) -> Result<TaskResult<St>, CanoError> {
            let mut returned: Vec<(usize, St)> = results
                .successes
                .iter()
                .map(|(i, r)| (*i, *r.state()))
                .collect();
            returned.sort();
            assert_eq!(returned, [(0, St::A), (2, St::C)]);
            assert_eq!(results.errors.len(), 1);
            assert_eq!(results.errors[0].0, 1);
            assert_eq!(results.total_count(), 3);
            Ok(TaskResult::Single(if results.errors.is_empty() {
                St::Done
            } else {
                St::Failed
            }))
        }
    }
    let wf = Workflow::bare()
        .register_split(
            St::Fan,
            vec![Job::ok(St::A), Job::fail("one down"), Job::ok(St::C)],
            JoinConfig::new(JoinStrategy::Quorum(2), St::Join),
        )
        .register_join(St::Join, Merge)
        .add_exit_states([St::Done, St::Failed]);
    assert_eq!(run(&wf, St::Fan).0, Ok(St::Failed));
}

#[test]
fn split_branches_share_data_through_resources() {
    struct Add(u32);
    impl Task<St> for Add {
        async fn run(&self, res: &Resources) -> Result<TaskResult<St>, CanoError> {
            res.get_ref::<MemoryStore, _>("store")?
                .append("seen", self.0)?;
            Ok(TaskResult::Single(St::Done))
        }
    }
    let store = MemoryStore::new();
    let wf = Workflow::new(Resources::new().insert("store", store.clone()).unwrap())
        .register_split(
            St::Fan,
            (1..=4).map(Add),
            JoinConfig::new(JoinStrategy::All, St::Done),
        )
        .add_exit_state(St::Done);
    assert_eq!(run(&wf, St::Fan).0, Ok(St::Done));
    let mut seen: Vec<u32> = store.get("seen").unwrap();
    seen.sort();
    assert_eq!(seen, [1, 2, 3, 4]);
}

#[test]
fn branches_run_concurrently_and_the_bulkhead_caps_them() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let jobs: Vec<Job> = (0..6)
        .map(|_| Job::ok(St::A).sleeping(&clock, Duration::from_secs(1)))
        .collect();
    // Without a bulkhead: six one-second branches take one second.
    let wf = split_workflow(jobs, JoinConfig::new(JoinStrategy::All, St::Done));
    assert_eq!(
        run_in(&sim, &wf, St::Fan),
        (Ok(St::Done), Duration::from_secs(1))
    );

    let sim = Simulation::new();
    let clock = sim.clock();
    let probe = Job::ok(St::A);
    let jobs: Vec<Job> = (0..6)
        .map(|_| {
            Job::ok(St::A)
                .sleeping(&clock, Duration::from_secs(1))
                .share_counters(&probe)
        })
        .collect();
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::All, St::Done).with_bulkhead(2),
    );
    assert_eq!(
        run_in(&sim, &wf, St::Fan),
        (Ok(St::Done), Duration::from_secs(3))
    );
    assert_eq!(probe.max_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 6);
}

#[test]
fn split_branches_honour_their_own_retry_config_without_double_retry() {
    let job = Job::flaky(2, St::A)
        .with_config(TaskConfig::new().with_fixed_retry(2, Duration::from_millis(100)));
    let calls = job.calls();
    let wf = split_workflow(vec![job], JoinConfig::new(JoinStrategy::All, St::Done));
    let (result, took) = run(&wf, St::Fan);
    assert_eq!(result, Ok(St::Done));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(took, Duration::from_millis(200));
}

#[test]
fn a_panicking_branch_is_an_error_carrying_its_index_and_message() {
    let jobs = vec![Job::ok(St::A), Job::new([Outcome::Panic]).named("bomb")];
    let wf = split_workflow(jobs, JoinConfig::new(JoinStrategy::All, St::Done));
    let err = run(&wf, St::Fan).0.unwrap_err();
    assert!(err.message().contains("task 1"), "{err}");
    assert!(err.message().contains("panic: job bomb exploded"), "{err}");
}

#[test]
fn attempt_timeouts_apply_to_split_branches() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let slow = Job::ok(St::A)
        .sleeping(&clock, Duration::from_secs(10))
        .with_config(TaskConfig::minimal().with_attempt_timeout(Duration::from_secs(1)));
    let wf = split_workflow(vec![slow], JoinConfig::new(JoinStrategy::All, St::Done));
    let (result, took) = run_in(&sim, &wf, St::Fan);
    assert!(result.unwrap_err().message().contains("attempt_timeout"));
    assert_eq!(took, Duration::from_secs(1));
}

#[test]
fn split_branches_share_one_circuit_breaker() {
    let breaker = Arc::new(
        CircuitBreaker::new(CircuitPolicy {
            failure_threshold: 2,
            reset_timeout: Duration::from_secs(30),
            half_open_max_calls: 1,
        })
        .unwrap(),
    );
    let config = TaskConfig::minimal().with_circuit_breaker(breaker.clone());
    let sim = Simulation::new();
    let clock = sim.clock();
    let jobs: Vec<Job> = (0..4)
        .map(|i| {
            Job::fail("down")
                .sleeping(&clock, Duration::from_secs(i + 1))
                .with_config(config.clone())
        })
        .collect();
    let calls: Vec<_> = jobs.iter().map(Job::calls).collect();
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::PartialTimeout, St::Done)
            .with_timeout(Duration::from_secs(60)),
    );
    let recorder = Arc::new(Recorder::default());
    let wf = wf.with_observer(recorder.clone());
    assert_eq!(run_in(&sim, &wf, St::Fan).0, Ok(St::Done));
    // All four acquired a permit at t=0 (the breaker was closed); two failures opened it.
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    assert!(matches!(
        breaker.state(sim.clock().now()),
        cano_core::CircuitState::Open { .. }
    ));
}

#[test]
fn spawned_branches_run_on_the_spawner_and_join_the_same_way() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let spawner = sim.spawner();
    let jobs: Vec<Job> = (0..3)
        .map(|i| Job::ok(St::A).sleeping(&clock, Duration::from_secs(i + 1)))
        .collect();
    let calls: Vec<_> = jobs.iter().map(Job::calls).collect();
    let recorder = Arc::new(Recorder::default());
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::Quorum(2), St::Done).with_spawned_branches(),
    )
    .with_observer(recorder.clone());
    let ctx = RunContext::new(clock.clone()).with_spawner(spawner);
    assert_eq!(
        sim.block_on(wf.orchestrate_with(ctx, St::Fan)),
        Ok(St::Done)
    );
    assert_eq!(clock.now().as_millis(), 2_000);
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    // The third branch was aborted: nothing is left running or sleeping.
    sim.run_until_idle();
    assert_eq!(sim.live_tasks(), 0);
    assert_eq!(clock.pending_sleeps(), 0);
    let events = recorder.events();
    assert!(events.contains(&"start job[2]".to_string()), "{events:?}");
    assert!(events.contains(&"success job[1]".to_string()), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| e.contains("job[2]") && e.starts_with("success"))
    );
}

#[test]
fn without_a_spawner_spawned_branches_run_in_place() {
    let jobs = vec![Job::ok(St::A), Job::ok(St::B)];
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::All, St::Done).with_spawned_branches(),
    );
    assert_eq!(run(&wf, St::Fan).0, Ok(St::Done));
}

#[test]
fn a_split_in_the_middle_of_a_workflow_continues_at_its_join_state() {
    let wf = Workflow::bare()
        .register(St::Start, Job::ok(St::Fan))
        .register_split(
            St::Fan,
            vec![Job::ok(St::A), Job::ok(St::B)],
            JoinConfig::new(JoinStrategy::All, St::C),
        )
        .register(St::C, Job::ok(St::Done))
        .add_exit_state(St::Done);
    let recorder = Arc::new(Recorder::default());
    let wf = wf.with_observer(recorder.clone());
    assert_eq!(run(&wf, St::Start).0, Ok(St::Done));
    let entered: Vec<String> = recorder
        .events()
        .into_iter()
        .filter(|e| e.starts_with("enter"))
        .collect();
    assert_eq!(
        entered,
        ["enter Start", "enter Fan", "enter C", "enter Done"]
    );
}

#[test]
fn a_workflow_timeout_aborts_spawned_branches_too() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let spawner = sim.spawner();
    let recorder = Arc::new(Recorder::default());
    let jobs: Vec<Job> = (0..3)
        .map(|_| Job::ok(St::A).sleeping(&clock, Duration::from_secs(60)))
        .collect();
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::All, St::Done).with_spawned_branches(),
    )
    .with_timeout(Duration::from_secs(5))
    .with_observer(recorder.clone());
    let ctx = RunContext::new(clock.clone()).with_spawner(spawner);
    let result = sim.block_on(wf.orchestrate_with(ctx, St::Fan));
    assert_eq!(result.unwrap_err().category(), "timeout");
    assert_eq!(clock.now().as_millis(), 5_000);
    // The dropped split took its spawned branches with it: none finishes later.
    sim.run_until_idle();
    assert_eq!(sim.live_tasks(), 0);
    assert_eq!(clock.now().as_millis(), 5_000, "no branch kept sleeping");
    let events = recorder.events();
    assert!(
        !events.iter().any(|e| e.starts_with("success")),
        "{events:?}"
    );
}

/// A runtime shutting down: it takes each spawned future and drops it unpolled.
#[derive(Clone)]
struct DroppingSpawner;

impl cano_core::runtime::Spawner for DroppingSpawner {
    fn spawn(
        &self,
        future: cano_core::runtime::BoxFuture,
    ) -> Result<(), cano_core::runtime::SpawnError> {
        drop(future);
        Ok(())
    }
}

#[test]
fn a_spawned_branch_its_runtime_drops_is_a_failed_branch_not_a_hang() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let jobs = vec![Job::ok(St::A), Job::ok(St::B)];
    let calls: Vec<_> = jobs.iter().map(Job::calls).collect();
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::All, St::Done).with_spawned_branches(),
    );
    let ctx = RunContext::new(clock.clone()).with_spawner(DroppingSpawner);
    let error = sim
        .block_on(wf.orchestrate_with(ctx, St::Fan))
        .expect_err("no branch ran");
    assert!(
        error.to_string().contains("dropped by the runtime"),
        "{error}"
    );
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 0));
}

/// A full task pool: it refuses (and so drops) every future it is handed.
#[derive(Clone)]
struct RefusingSpawner;

impl cano_core::runtime::Spawner for RefusingSpawner {
    fn spawn(
        &self,
        future: cano_core::runtime::BoxFuture,
    ) -> Result<(), cano_core::runtime::SpawnError> {
        drop(future);
        Err(cano_core::runtime::SpawnError::PoolFull)
    }
}

#[derive(Default)]
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_branch_the_spawner_refuses_runs_in_place_without_a_stray_wake_up() {
    let sim = Simulation::new();
    let jobs = vec![Job::ok(St::A), Job::ok(St::B), Job::ok(St::C)];
    let calls: Vec<_> = jobs.iter().map(Job::calls).collect();
    let wf = split_workflow(
        jobs,
        JoinConfig::new(JoinStrategy::All, St::Done).with_spawned_branches(),
    );
    let ctx = RunContext::new(sim.clock()).with_spawner(RefusingSpawner);
    let wakes = Arc::new(CountingWaker::default());
    let waker = std::task::Waker::from(wakes.clone());
    let mut run = std::pin::pin!(wf.orchestrate_with(ctx, St::Fan));
    // Every branch ran in place and finished on its first poll: the run is done in one poll,
    // and the refused hand-overs woke nobody (a refused future's drop is not a finished branch).
    let polled = run
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker));
    assert!(
        matches!(polled, std::task::Poll::Ready(Ok(St::Done))),
        "{polled:?}"
    );
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "stray wake-ups");
}
