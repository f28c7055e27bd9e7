//! cano 0.12 examples, ported with one import line (`use cano_tokio::prelude::*;`) plus the
//! changes MIGRATING.md lists, and run on paused tokio time so they are exact.
//!
//! * `workflow_bare.rs`: bare tasks (`run_bare`) and a resource task;
//! * `circuit_breaker.rs`: a breaker shared by every run of a workflow;
//! * `join_strategies.rs`: one split under Any, PartialResults, Quorum and Percentage;
//! * `scheduler_backoff.rs`: backoff, trip and `reset_flow` on a flaky flow.
//!
//! The changes, each marked `// 0.12:` where it happens: no `#[task]`/`#[resource]` macros
//! (plain `impl Task<S> for T` with `async fn`), `Resources::insert` and
//! `CircuitBreaker::new` return `Result`, a breaker's state is read at an instant of the
//! clock that runs the workflow, `RunningScheduler`'s queries are synchronous, and
//! `Scheduler::start()` is `start_scheduler(scheduler)`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use cano_tokio::prelude::*;

// ---- workflow_bare.rs ----

mod workflow_bare {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub(crate) enum Stage {
        Validate,
        Sanitize,
        Persist,
        Done,
    }

    pub(crate) struct ValidateTask;
    // 0.12: `#[task(state = Stage)] impl ValidateTask { async fn run_bare(..) }`
    impl Task<Stage> for ValidateTask {
        async fn run_bare(&self) -> CanoResult<TaskResult<Stage>> {
            let value: i32 = 42;
            if value < 0 {
                return Err(CanoError::task_execution("value must be non-negative"));
            }
            Ok(TaskResult::Single(Stage::Sanitize))
        }
    }

    pub(crate) struct SanitizeTask;
    impl Task<Stage> for SanitizeTask {
        async fn run_bare(&self) -> CanoResult<TaskResult<Stage>> {
            let raw: i32 = 142;
            let _clamped = raw.clamp(0, 100);
            Ok(TaskResult::Single(Stage::Persist))
        }
    }

    pub(crate) struct PersistTask;
    impl Task<Stage> for PersistTask {
        async fn run(&self, res: &Resources) -> CanoResult<TaskResult<Stage>> {
            let store = res.get::<MemoryStore, _>("store")?;
            store.put("sanitized_value", 142_i32.clamp(0, 100))?;
            Ok(TaskResult::Single(Stage::Done))
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn port_of_workflow_bare() -> CanoResult<()> {
    use workflow_bare::*;

    let workflow = Workflow::bare()
        .register(Stage::Validate, ValidateTask)
        .register(Stage::Sanitize, SanitizeTask)
        .add_exit_states(vec![Stage::Persist, Stage::Done]);
    assert_eq!(workflow.orchestrate(Stage::Validate).await?, Stage::Persist);

    let store = MemoryStore::new();
    // 0.12: `Resources::new().insert("store", store.clone())` (it panicked on a duplicate).
    let workflow = Workflow::new(Resources::new().insert("store", store.clone())?)
        .register(Stage::Validate, ValidateTask)
        .register(Stage::Sanitize, SanitizeTask)
        .register(Stage::Persist, PersistTask)
        .add_exit_states(vec![Stage::Done]);
    assert_eq!(workflow.orchestrate(Stage::Validate).await?, Stage::Done);
    assert_eq!(store.get::<i32>("sanitized_value")?, 100);
    Ok(())
}

// ---- circuit_breaker.rs ----

mod circuit_breaker {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub(crate) enum Step {
        Call,
        Done,
    }

    pub(crate) struct FlakyClient {
        pub(crate) healthy: Arc<AtomicBool>,
        pub(crate) call_count: Arc<AtomicUsize>,
    }

    // 0.12: `#[resource] impl Resource for FlakyClient {}`
    impl Resource for FlakyClient {}

    impl FlakyClient {
        pub(crate) fn new() -> Self {
            Self {
                healthy: Arc::new(AtomicBool::new(false)),
                call_count: Arc::new(AtomicUsize::new(0)),
            }
        }

        async fn fetch(&self) -> Result<String, CanoError> {
            let n = self.call_count.fetch_add(1, Ordering::SeqCst) + 1;
            if self.healthy.load(Ordering::SeqCst) {
                Ok(format!("payload #{n}"))
            } else {
                Err(CanoError::task_execution(format!(
                    "upstream call #{n} failed"
                )))
            }
        }
    }

    pub(crate) struct CallTask {
        pub(crate) breaker: Arc<CircuitBreaker>,
    }

    impl Task<Step> for CallTask {
        fn config(&self) -> TaskConfig {
            TaskConfig::minimal().with_circuit_breaker(Arc::clone(&self.breaker))
        }

        async fn run(&self, res: &Resources) -> Result<TaskResult<Step>, CanoError> {
            let client = res.get::<FlakyClient, _>("client")?;
            let _payload = client.fetch().await?;
            Ok(TaskResult::Single(Step::Done))
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn port_of_circuit_breaker() -> CanoResult<()> {
    use circuit_breaker::*;

    // 0.12: `CircuitBreaker::new(policy)` panicked on a bad policy; now it is an error.
    let breaker = Arc::new(CircuitBreaker::new(CircuitPolicy {
        failure_threshold: 3,
        reset_timeout: Duration::from_millis(150),
        half_open_max_calls: 1,
    })?);
    let client = FlakyClient::new();
    let healthy = Arc::clone(&client.healthy);
    let call_count = Arc::clone(&client.call_count);
    let workflow = Workflow::new(Resources::new().insert("client", client)?)
        .register(
            Step::Call,
            CallTask {
                breaker: Arc::clone(&breaker),
            },
        )
        .add_exit_state(Step::Done);
    // 0.12: `breaker.state()` read `std::time::Instant::now()` itself. The breaker's time is
    // now the clock's that runs the workflow, so run it on a clock the test holds.
    let clock = TokioClock::new();

    let mut outcomes = Vec::new();
    for _ in 1..=5 {
        let outcome = match workflow.orchestrate_on(&clock, Step::Call).await {
            Ok(_) => "ok",
            Err(CanoError::CircuitOpen(_)) => "rejected",
            Err(_) => "failed",
        };
        outcomes.push(outcome);
    }
    assert_eq!(
        outcomes,
        ["failed", "failed", "failed", "rejected", "rejected"]
    );
    assert!(matches!(
        breaker.state(clock.now()),
        CircuitState::Open { .. }
    ));
    assert_eq!(
        call_count.load(Ordering::SeqCst),
        3,
        "only 3 calls reached upstream"
    );

    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(breaker.state(clock.now()), CircuitState::HalfOpen);
    for _ in 1..=3 {
        assert_eq!(
            workflow.orchestrate_on(&clock, Step::Call).await?,
            Step::Done
        );
        assert_eq!(breaker.state(clock.now()), CircuitState::Closed);
    }
    assert_eq!(call_count.load(Ordering::SeqCst), 6);
    Ok(())
}

// ---- join_strategies.rs ----

mod join_strategies {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub(crate) enum Step {
        Parallel,
        Done,
    }

    #[derive(Clone)]
    pub(crate) struct Worker {
        id: &'static str,
        delay_ms: u64,
    }

    impl Task<Step> for Worker {
        async fn run(&self, res: &Resources) -> Result<TaskResult<Step>, CanoError> {
            let store = res.get::<MemoryStore, _>("store")?;
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
            store.put(self.id, format!("done after {}ms", self.delay_ms))?;
            Ok(TaskResult::Single(Step::Done))
        }
    }

    pub(crate) fn workers() -> Vec<Worker> {
        [("A", 50), ("B", 150), ("C", 300), ("D", 500)]
            .into_iter()
            .map(|(id, delay_ms)| Worker { id, delay_ms })
            .collect()
    }

    /// (elapsed ms, completions) of one run under `strategy`.
    pub(crate) async fn run_strategy(strategy: JoinStrategy) -> CanoResult<(u128, usize)> {
        let store = MemoryStore::new();
        let join_config = JoinConfig::new(strategy, Step::Done);
        let workflow = Workflow::new(Resources::new().insert("store", store.clone())?)
            .register_split(Step::Parallel, workers(), join_config)
            .add_exit_state(Step::Done);
        let start = tokio::time::Instant::now();
        assert_eq!(workflow.orchestrate(Step::Parallel).await?, Step::Done);
        let elapsed = start.elapsed().as_millis();
        let completed = ["A", "B", "C", "D"]
            .iter()
            .filter(|&&id| store.get::<String>(id).is_ok())
            .count();
        Ok((elapsed, completed))
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn port_of_join_strategies() -> CanoResult<()> {
    use join_strategies::*;

    assert_eq!(run_strategy(JoinStrategy::Any).await?, (50, 1));
    assert_eq!(
        run_strategy(JoinStrategy::PartialResults(2)).await?,
        (150, 2)
    );
    // 0.12 waited for all four (500 ms) under Quorum and Percentage; cano ends a join as
    // soon as its outcome is certain and cancels the rest.
    assert_eq!(run_strategy(JoinStrategy::Quorum(2)).await?, (150, 2));
    assert_eq!(run_strategy(JoinStrategy::Percentage(0.5)).await?, (150, 2));
    assert_eq!(run_strategy(JoinStrategy::All).await?, (500, 4));
    Ok(())
}

// ---- scheduler_backoff.rs ----

mod scheduler_backoff {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub(crate) enum FlowState {
        Start,
        Done,
    }

    #[derive(Clone)]
    pub(crate) struct FlakyJob {
        pub(crate) runs: Arc<AtomicU32>,
        pub(crate) fail_count: u32,
    }

    impl Task<FlowState> for FlakyJob {
        fn config(&self) -> TaskConfig {
            TaskConfig::minimal()
        }

        async fn run_bare(&self) -> Result<TaskResult<FlowState>, CanoError> {
            let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if n > self.fail_count {
                Ok(TaskResult::Single(FlowState::Done))
            } else {
                Err(CanoError::task_execution("flaky job failure"))
            }
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn port_of_scheduler_backoff() -> CanoResult<()> {
    use scheduler_backoff::*;

    let mut scheduler: Scheduler<FlowState> = Scheduler::new();
    let flaky = FlakyJob {
        runs: Arc::new(AtomicU32::new(0)),
        fail_count: 4,
    };
    let workflow = Workflow::bare()
        .register(FlowState::Start, flaky.clone())
        .add_exit_state(FlowState::Done);
    scheduler.every(
        "flaky",
        workflow,
        FlowState::Start,
        Duration::from_millis(200),
    )?;
    scheduler.set_backoff(
        "flaky",
        BackoffPolicy {
            initial: Duration::from_millis(300),
            multiplier: 2.0,
            max_delay: Duration::from_secs(2),
            jitter: 0.0,
            streak_limit: Some(3),
        },
    )?;
    // 0.12: `scheduler.start().await?`
    let running = start_scheduler(scheduler).await?;

    // Runs at 0 ms, 300 ms and 900 ms fail; the third failure trips the flow.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // 0.12: `running.status("flaky").await`
    let snap = running.status("flaky").expect("flow exists");
    assert!(
        matches!(snap.status, Status::Tripped { streak: 3, .. }),
        "{snap:?}"
    );
    assert_eq!(snap.run_count, 3);
    running.reset_flow("flaky")?;

    // After the reset: run 4 fails (backoff 300 ms), run 5 succeeds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snap = running.status("flaky").expect("flow exists");
    assert_eq!(snap.status, Status::Completed, "{snap:?}");
    assert_eq!(snap.failure_streak, 0);
    assert!(snap.run_count >= 5, "{snap:?}");
    assert!(flaky.runs.load(Ordering::SeqCst) >= 5);
    running.stop().await?;
    Ok(())
}

// ---- every adapter's prelude ----

/// Names a cano 0.12 program used through `cano::prelude::*`, and the ones cano added, each
/// reachable through every adapter's prelude alone.
macro_rules! prelude_names {
    ($module:ident, $adapter:ident, $($extra:ty),*) => {
        mod $module {
            use ::$adapter::prelude::*;

            #[test]
            fn prelude_has_what_a_cano012_program_names() {
                let names = [
                    core::any::type_name::<CanoError>(),
                    core::any::type_name::<CanoResult<()>>(),
                    core::any::type_name::<CircuitBreaker>(),
                    core::any::type_name::<CircuitPermit<'static>>(),
                    core::any::type_name::<CircuitPolicy>(),
                    core::any::type_name::<CircuitState>(),
                    core::any::type_name::<HealthStatus>(),
                    core::any::type_name::<JoinConfig<u8>>(),
                    core::any::type_name::<JoinStrategy>(),
                    core::any::type_name::<MemoryStore>(),
                    core::any::type_name::<Resources>(),
                    core::any::type_name::<RetryMode>(),
                    core::any::type_name::<SplitResult<u8>>(),
                    core::any::type_name::<TaskConfig>(),
                    core::any::type_name::<TaskResult<u8>>(),
                    core::any::type_name::<Workflow<u8>>(),
                    core::any::type_name::<dyn WorkflowObserver<u8>>(),
                    core::any::type_name::<dyn DynTask<u8>>(),
                    core::any::type_name::<BackoffPolicy>(),
                    core::any::type_name::<FlowInfo>(),
                    core::any::type_name::<RunningScheduler>(),
                    core::any::type_name::<Schedule>(),
                    core::any::type_name::<Scheduler<u8>>(),
                    core::any::type_name::<Status>(),
                    core::any::type_name::<Cron>(),
                    core::any::type_name::<CronOptions>(),
                    core::any::type_name::<CancellationToken>(),
                    core::any::type_name::<Fire>(),
                    $(core::any::type_name::<$extra>(),)*
                ];
                fn traits_in_scope<T: Task<u8>, R: Resource, C: Clock, P: Spawner, J: Job<u8>>() {}
                let _ = traits_in_scope::<DummyTask, MemoryStore, DummyClockFor, DummySpawnerFor, DummyJob>;
                assert!(names.iter().all(|n| !n.is_empty()));
            }

            struct DummyTask;
            impl Task<u8> for DummyTask {}
            type DummyClockFor = cano_core::testing::FakeClock;
            type DummySpawnerFor = cano_core::NoSpawner;
            type DummyJob = Workflow<u8>;
        }
    };
}

prelude_names!(
    tokio_prelude,
    cano_tokio,
    TokioClock,
    TokioSpawner,
    TokioRuntime
);
prelude_names!(smol_prelude, cano_smol, SmolClock, SmolSpawner, SmolRuntime);
prelude_names!(
    embassy_prelude,
    cano_embassy,
    EmbassyClock,
    EmbassySpawner<2>,
    Pool<2>
);
