//! Router and timer tasks on the fake clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::shapes::router::{DynRouterTask, RouterTask};
use cano_core::shapes::timer::{DynTimerTask, TimerOutcome, TimerRunner, TimerTask};
use cano_core::testing::{FakeClock, Simulation};
use cano_core::{
    CanoError, Clock, Instant, Resources, Task, TaskConfig, TaskId, TaskResult, Workflow,
    WorkflowObserver,
};
use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum St {
    Route,
    Left,
    Right,
    Wait,
    Done,
    Nowhere,
}

struct Pick {
    to: St,
    calls: AtomicU32,
    fails: bool,
}

impl Pick {
    fn to(to: St) -> Self {
        Pick {
            to,
            calls: AtomicU32::new(0),
            fails: false,
        }
    }
}

impl RouterTask<St> for Pick {
    async fn route(&self, _res: &Resources) -> Result<TaskResult<St>, CanoError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fails {
            return Err(CanoError::task_execution("no route"));
        }
        Ok(TaskResult::Single(self.to))
    }
}

impl RouterTask<St> for Arc<Pick> {
    async fn route(&self, res: &Resources) -> Result<TaskResult<St>, CanoError> {
        Pick::route(self, res).await
    }
}

struct Go(St);
impl Task<St> for Go {
    async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
        Ok(TaskResult::Single(self.0))
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<String>>);
impl WorkflowObserver<St> for Events {
    fn on_state_enter(&self, state: &St) {
        self.0.lock().unwrap().push(format!("enter {state:?}"));
    }
    fn on_task_start(&self, task: TaskId<'_>) {
        self.0.lock().unwrap().push(format!("start {}", task.name));
    }
    fn on_task_success(&self, task: TaskId<'_>) {
        self.0.lock().unwrap().push(format!("ok {}", task.name));
    }
}

#[test]
fn a_router_chooses_the_next_state_and_observers_see_it_like_any_state() {
    let events = Arc::new(Events::default());
    let wf = Workflow::bare()
        .register_router(St::Route, Pick::to(St::Right))
        .register(St::Left, Go(St::Done))
        .register(St::Right, Go(St::Done))
        .add_exit_state(St::Done)
        .with_observer(events.clone());
    let sim = Simulation::new();
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&sim.clock(), St::Route)),
        Ok(St::Done)
    );
    let pick = std::any::type_name::<Pick>();
    let go = std::any::type_name::<Go>();
    assert_eq!(
        *events.0.lock().unwrap(),
        vec![
            "enter Route".to_string(),
            format!("start {pick}"),
            format!("ok {pick}"),
            "enter Right".to_string(),
            format!("start {go}"),
            format!("ok {go}"),
            "enter Done".to_string(),
        ]
    );
    assert_eq!(wf.registered_states().count(), 3);
}

#[test]
fn a_failing_router_fails_its_state_once_by_default() {
    // cano 0.12 retried routers three times by default.
    let pick = Arc::new(Pick {
        fails: true,
        ..Pick::to(St::Left)
    });
    let wf = Workflow::bare()
        .register_router(St::Route, pick.clone())
        .add_exit_state(St::Done);
    let sim = Simulation::new();
    let result = sim.block_on(wf.orchestrate_on(&sim.clock(), St::Route));
    assert_eq!(result, Err(CanoError::task_execution("no route")));
    assert_eq!(pick.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_router_to_an_unknown_state_names_the_router() {
    let wf = Workflow::bare()
        .register_router(St::Route, Pick::to(St::Nowhere))
        .add_exit_state(St::Done);
    let sim = Simulation::new();
    let err = sim
        .block_on(wf.orchestrate_on(&sim.clock(), St::Route))
        .unwrap_err();
    assert_eq!(err.category(), "workflow");
    let message = err.to_string();
    assert!(
        message.contains("Pick") && message.contains("Nowhere"),
        "{message}"
    );
}

#[test]
fn routers_of_different_types_share_a_dyn_form() {
    struct Always;
    impl RouterTask<St> for Always {
        async fn route(&self, _res: &Resources) -> Result<TaskResult<St>, CanoError> {
            Ok(TaskResult::Single(St::Done))
        }
    }
    let routers: Vec<Box<dyn DynRouterTask<St>>> =
        vec![Box::new(Pick::to(St::Left)), Box::new(Always)];
    let mut routers = routers.into_iter();
    let wf = Workflow::bare()
        .register_router(St::Route, routers.next().unwrap())
        .register_router(St::Left, routers.next().unwrap())
        .add_exit_state(St::Done);
    let sim = Simulation::new();
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&sim.clock(), St::Route)),
        Ok(St::Done)
    );
}

struct Timer {
    wait: TimerOutcome,
    config: TaskConfig,
    after_at: Arc<Mutex<Option<Instant>>>,
    clock: FakeClock,
}

impl TimerTask<St> for Timer {
    async fn wait(&self, _res: &Resources) -> Result<TimerOutcome, CanoError> {
        Ok(self.wait)
    }
    async fn after_wait(&self, _res: &Resources) -> Result<TaskResult<St>, CanoError> {
        *self.after_at.lock().unwrap() = Some(self.clock.now());
        Ok(TaskResult::Single(St::Done))
    }
    fn config(&self) -> TaskConfig {
        self.config.clone()
    }
}

fn timer(clock: &FakeClock, wait: TimerOutcome) -> Timer {
    Timer {
        wait,
        config: TaskConfig::minimal(),
        after_at: Arc::default(),
        clock: clock.clone(),
    }
}

fn run_timer(sim: &Simulation, t: Timer) -> (Result<St, CanoError>, Option<Instant>) {
    let after = t.after_at.clone();
    let clock = sim.clock();
    let wf = Workflow::bare()
        .register(St::Wait, TimerRunner::new(t, clock.clone()))
        .add_exit_state(St::Done);
    let result = sim.block_on(wf.orchestrate_on(&clock, St::Wait));
    let at = *after.lock().unwrap();
    (result, at)
}

fn wall_plus(sim: &Simulation, secs: i64) -> Timestamp {
    sim.clock().wall_now() + SignedDuration::from_secs(secs)
}

#[test]
fn a_duration_timer_waits_exactly_that_long() {
    for secs in [0u64, 1, 59, 3_600, 86_400 * 30] {
        let sim = Simulation::new();
        let t = timer(
            &sim.clock(),
            TimerOutcome::Duration(Duration::from_secs(secs)),
        );
        let (result, at) = run_timer(&sim, t);
        assert_eq!(result, Ok(St::Done));
        assert_eq!(at, Some(Instant::from_secs(secs)));
    }
}

#[test]
fn an_until_timer_waits_for_the_wall_clock() {
    let sim = Simulation::new();
    let until = wall_plus(&sim, 3_600);
    let (result, at) = run_timer(&sim, timer(&sim.clock(), TimerOutcome::Until(until)));
    assert_eq!(result, Ok(St::Done));
    assert_eq!(at, Some(Instant::from_secs(3_600)));
    assert_eq!(sim.clock().wall_now(), until);
}

#[test]
fn an_until_in_the_past_does_not_wait() {
    let sim = Simulation::new();
    let until = wall_plus(&sim, -60);
    let (_, at) = run_timer(&sim, timer(&sim.clock(), TimerOutcome::Until(until)));
    assert_eq!(at, Some(Instant::ZERO));
}

#[test]
fn a_resumed_until_timer_waits_only_for_what_is_left() {
    // The process was down for 40 minutes of a one-hour wait: the wall clock moved on, the
    // new process's monotonic clock starts afresh. The wall deadline is re-armed, not the
    // whole hour.
    let sim = Simulation::new();
    let until = wall_plus(&sim, 3_600);
    sim.clock().suspend(Duration::from_secs(40 * 60));
    let (_, at) = run_timer(&sim, timer(&sim.clock(), TimerOutcome::Until(until)));
    assert_eq!(at, Some(Instant::from_secs(20 * 60)));
    // A duration is measured from the state's start: it waits the whole of it again
    // (documented).
    let sim = Simulation::new();
    sim.clock().suspend(Duration::from_secs(40 * 60));
    let t = timer(
        &sim.clock(),
        TimerOutcome::Duration(Duration::from_secs(3_600)),
    );
    let (_, at) = run_timer(&sim, t);
    assert_eq!(at, Some(Instant::from_secs(3_600)));
}

#[test]
fn an_until_timer_still_waits_for_its_wall_time_after_the_clock_is_stepped_back() {
    let sim = Simulation::new();
    let clock = sim.clock();
    let until = wall_plus(&sim, 3_600);
    let t = timer(&clock, TimerOutcome::Until(until));
    let after = t.after_at.clone();
    let wf = Workflow::bare()
        .register(St::Wait, TimerRunner::new(t, clock.clone()))
        .add_exit_state(St::Done);
    let c = clock.clone();
    let result = sim.block_on(async move {
        let run = wf.orchestrate_on(&c, St::Wait);
        let step = async {
            c.sleep_until(Instant::from_secs(600)).await;
            // NTP steps the wall clock back five minutes.
            c.step_wall(SignedDuration::from_secs(-300));
            std::future::pending::<()>().await
        };
        futures::pin_mut!(run, step);
        match futures::future::select(run, step).await {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right(_) => unreachable!(),
        }
    });
    assert_eq!(result, Ok(St::Done));
    assert_eq!(*after.lock().unwrap(), Some(Instant::from_secs(3_900)));
    assert!(clock.wall_now() >= until);
}

#[test]
fn an_attempt_timeout_shorter_than_the_wait_fails_the_state() {
    let sim = Simulation::new();
    let mut t = timer(
        &sim.clock(),
        TimerOutcome::Duration(Duration::from_secs(60)),
    );
    t.config = TaskConfig::minimal().with_attempt_timeout(Duration::from_secs(10));
    let (result, at) = run_timer(&sim, t);
    assert_eq!(result.unwrap_err().category(), "timeout");
    assert_eq!(at, None);
    assert_eq!(sim.clock().now(), Instant::from_secs(10));
}

#[test]
fn timers_of_different_types_share_a_dyn_form() {
    struct Short;
    impl TimerTask<St> for Short {
        async fn wait(&self, _res: &Resources) -> Result<TimerOutcome, CanoError> {
            Ok(TimerOutcome::Duration(Duration::from_secs(5)))
        }
        async fn after_wait(&self, _res: &Resources) -> Result<TaskResult<St>, CanoError> {
            Ok(TaskResult::Single(St::Wait))
        }
    }
    let sim = Simulation::new();
    let clock = sim.clock();
    let timers: Vec<Arc<dyn DynTimerTask<St>>> = vec![
        Arc::new(Short),
        Arc::new(timer(
            &clock,
            TimerOutcome::Duration(Duration::from_secs(7)),
        )),
    ];
    let wf = Workflow::bare()
        .register(
            St::Route,
            TimerRunner::new(timers[0].clone(), clock.clone()),
        )
        .register(St::Wait, TimerRunner::new(timers[1].clone(), clock.clone()))
        .add_exit_state(St::Done);
    assert_eq!(
        sim.block_on(wf.orchestrate_on(&clock, St::Route)),
        Ok(St::Done)
    );
    assert_eq!(clock.now(), Instant::from_secs(12));
}
