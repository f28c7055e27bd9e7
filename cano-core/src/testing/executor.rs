//! [`Simulation`]: a single-threaded executor on virtual time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Wake, Waker};
use std::vec::Vec;

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll};
use core::time::Duration;

use jiff::Timestamp;

use crate::runtime::{BoxFuture, Clock, SpawnError, Spawner};
use crate::testing::FakeClock;
use crate::time::Instant;

/// How many polls may happen without time moving before a simulation calls it a livelock.
const POLLS_WITHOUT_PROGRESS_LIMIT: u64 = 50_000_000;

/// How many polls of one task in a row, without time moving, may each leave it pending with
/// only its own wake-up to go on before a simulation calls it a livelock. Such a task is
/// yielding in a busy loop (a workflow `A → A` whose task never waits, say), and on virtual
/// time no deadline can ever pass while it spins.
const SELF_WAKES_LIMIT: u64 = 100_000;

const NOT_POLLING: usize = usize::MAX;

/// A virtual-time executor: runs every ready task, and when none is ready jumps its
/// [`FakeClock`] to the earliest pending sleep. A simulated day takes milliseconds.
///
/// Both clocks move together when the simulation jumps time; move the wall clock alone with
/// [`FakeClock::suspend`] or [`FakeClock::step_wall`].
///
/// Spawned tasks that are still pending when a `block_on` returns stay in the simulation and
/// run again on the next call; dropping the simulation drops them.
///
/// A simulation panics rather than hang: when the future it waits for can never complete
/// (no task is ready and no sleep is pending) it reports a deadlock, and when tasks keep
/// waking each other without time moving it reports a livelock — quickly when every poll
/// only wakes the polled task itself (a loop that never waits, yielding now and then).
pub struct Simulation {
    clock: FakeClock,
    shared: Arc<Shared>,
}

struct Shared {
    /// Tasks by id; `None` once finished (or while being polled).
    tasks: Mutex<Vec<Option<BoxFuture>>>,
    ready: Mutex<VecDeque<usize>>,
    free_ids: Mutex<Vec<usize>>,
    /// The id of the task being polled ([`NOT_POLLING`] between polls).
    polling: AtomicUsize,
    /// Whether the task being polled woke itself.
    self_woken: AtomicBool,
    /// Per task id, its latest run of polls that only woke itself.
    self_wakes: Mutex<Vec<SelfWakes>>,
}

/// The polls since time last moved.
#[derive(Default)]
struct Spinning {
    polls: u64,
}

impl Spinning {
    fn polled(&mut self) {
        self.polls += 1;
        if self.polls > POLLS_WITHOUT_PROGRESS_LIMIT {
            panic!("simulation livelock: tasks keep waking each other and time never moves");
        }
    }
}

/// One task's latest polls that each left it woken by itself alone: how many in a row, all
/// at virtual instant `at`.
#[derive(Clone, Copy)]
struct SelfWakes {
    at: Instant,
    count: u64,
}

impl SelfWakes {
    const NONE: SelfWakes = SelfWakes {
        at: Instant::ZERO,
        count: 0,
    };

    fn record(&mut self, woke_only_itself: bool, now: Instant) {
        if !woke_only_itself {
            self.count = 0;
            return;
        }
        if self.at != now {
            *self = SelfWakes { at: now, count: 0 };
        }
        self.count += 1;
        if self.count > SELF_WAKES_LIMIT {
            panic!(
                "simulation livelock: a task keeps waking itself and time never moves (a loop \
                 whose steps never wait, such as a workflow state that returns to itself at once)"
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct TaskWaker {
    id: usize,
    shared: Weak<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(shared) = self.shared.upgrade() {
            if shared.polling.load(Ordering::Relaxed) == self.id {
                shared.self_woken.store(true, Ordering::Relaxed);
            }
            lock(&shared.ready).push_back(self.id);
        }
    }
}

struct FlagWaker(AtomicBool);

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Default for Simulation {
    fn default() -> Self {
        Simulation::new()
    }
}

impl Simulation {
    /// A simulation whose wall clock starts at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Simulation::starting_at(Timestamp::constant(1_767_225_600, 0))
    }

    /// A simulation whose wall clock starts at `wall_start` (monotonic time starts at zero).
    pub fn starting_at(wall_start: Timestamp) -> Self {
        Simulation::with_clock(FakeClock::new(wall_start))
    }

    /// A simulation driving an existing clock.
    pub fn with_clock(clock: FakeClock) -> Self {
        Simulation {
            clock,
            shared: Arc::new(Shared {
                tasks: Mutex::new(Vec::new()),
                ready: Mutex::new(VecDeque::new()),
                free_ids: Mutex::new(Vec::new()),
                polling: AtomicUsize::new(NOT_POLLING),
                self_woken: AtomicBool::new(false),
                self_wakes: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The simulation's clock (clones share time).
    pub fn clock(&self) -> FakeClock {
        self.clock.clone()
    }

    /// A spawner onto this simulation. It fails with [`SpawnError::Shutdown`] once the
    /// simulation is dropped.
    pub fn spawner(&self) -> SimSpawner {
        SimSpawner {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// How many spawned tasks have not finished.
    pub fn live_tasks(&self) -> usize {
        lock(&self.shared.tasks)
            .iter()
            .filter(|t| t.is_some())
            .count()
    }

    /// Polls every ready task until none is ready, without moving time. Returns how many
    /// polls it made.
    pub fn run_until_stalled(&self) -> u64 {
        let mut spinning = Spinning::default();
        while self.poll_one_ready() {
            spinning.polled();
        }
        spinning.polls
    }

    /// Runs tasks and jumps time until no task is ready and no sleep is pending.
    ///
    /// A task that sleeps forever in a loop (an interval flow, say) keeps this from
    /// returning; use [`run_for`](Simulation::run_for) for those.
    pub fn run_until_idle(&self) {
        loop {
            self.run_until_stalled();
            match self.clock.next_deadline() {
                Some(deadline) => self.clock.advance_to(deadline),
                None => return,
            }
        }
    }

    /// Runs tasks and jumps time up to `now + d`, then sets the clock to exactly `now + d`.
    pub fn run_for(&self, d: Duration) {
        let horizon = self.clock.now() + d;
        self.run_until(horizon);
    }

    /// Runs tasks and jumps time up to `horizon`, then sets the clock to exactly `horizon`
    /// (if it is later than now).
    pub fn run_until(&self, horizon: Instant) {
        loop {
            self.run_until_stalled();
            match self.clock.next_deadline() {
                Some(deadline) if deadline <= horizon => self.clock.advance_to(deadline),
                _ => break,
            }
        }
        self.clock.advance_to(horizon);
        self.run_until_stalled();
    }

    /// Runs `future` to completion on virtual time, running spawned tasks alongside it.
    ///
    /// # Panics
    ///
    /// On deadlock (the future is pending, no task is ready and no sleep is pending) or
    /// livelock (tasks keep waking without time ever moving).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let flag = Arc::new(FlagWaker(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut spinning = Spinning::default();
        let mut self_wakes = SelfWakes::NONE;
        loop {
            if flag.0.swap(false, Ordering::SeqCst) {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
                spinning.polled();
                // Only this thread polls: a wake during the poll came from the future itself.
                self_wakes.record(flag.0.load(Ordering::SeqCst), self.clock.now());
            }
            if self.poll_one_ready() {
                spinning.polled();
                continue;
            }
            if flag.0.load(Ordering::SeqCst) {
                continue;
            }
            match self.clock.next_deadline() {
                Some(deadline) => {
                    self.clock.advance_to(deadline);
                    spinning = Spinning::default();
                }
                None => panic!(
                    "simulation deadlock: the future is pending, no task is ready and no sleep \
                     is pending (at {:?})",
                    self.clock.now()
                ),
            }
        }
    }

    /// Polls the next ready task, if any. Returns whether one was polled.
    ///
    /// # Panics
    ///
    /// When the task has woken only itself [`SELF_WAKES_LIMIT`] polls in a row without time
    /// moving: a livelock.
    fn poll_one_ready(&self) -> bool {
        let Some(id) = lock(&self.shared.ready).pop_front() else {
            return false;
        };
        // Take the future out so that it can spawn or wake (both lock) while being polled.
        let Some(mut task) = lock(&self.shared.tasks).get_mut(id).and_then(Option::take) else {
            return true; // a stale wake of a finished task
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            id,
            shared: Arc::downgrade(&self.shared),
        }));
        let mut cx = Context::from_waker(&waker);
        self.shared.self_woken.store(false, Ordering::Relaxed);
        self.shared.polling.store(id, Ordering::Relaxed);
        let poll = task.as_mut().poll(&mut cx);
        self.shared.polling.store(NOT_POLLING, Ordering::Relaxed);
        let woke_only_itself = poll.is_pending() && self.shared.self_woken.load(Ordering::Relaxed);
        match poll {
            Poll::Pending => lock(&self.shared.tasks)[id] = Some(task),
            Poll::Ready(()) => lock(&self.shared.free_ids).push(id),
        }
        let now = self.clock.now();
        let mut all = lock(&self.shared.self_wakes);
        if all.len() <= id {
            all.resize(id + 1, SelfWakes::NONE);
        }
        // A panic here poisons the lock, which `lock` shrugs off.
        all[id].record(woke_only_itself, now);
        true
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        // Drop the tasks outside the lock: their destructors may touch the simulation.
        let tasks = core::mem::take(&mut *lock(&self.shared.tasks));
        drop(tasks);
    }
}

/// A [`Spawner`] onto a [`Simulation`].
#[derive(Clone)]
pub struct SimSpawner {
    shared: Weak<Shared>,
}

impl Spawner for SimSpawner {
    fn spawn(&self, future: BoxFuture) -> Result<(), SpawnError> {
        let shared = self.shared.upgrade().ok_or(SpawnError::Shutdown)?;
        let id = {
            let mut tasks = lock(&shared.tasks);
            match lock(&shared.free_ids).pop() {
                Some(id) => {
                    tasks[id] = Some(future);
                    id
                }
                None => {
                    tasks.push(Some(future));
                    tasks.len() - 1
                }
            }
        };
        lock(&shared.ready).push_back(id);
        Ok(())
    }
}

impl core::fmt::Debug for SimSpawner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SimSpawner")
    }
}

impl core::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Simulation")
            .field("clock", &self.clock)
            .field("live_tasks", &self.live_tasks())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::time::Instant as RealInstant;

    #[test]
    fn a_day_of_deadlines_runs_in_order_and_fast() {
        let sim = Simulation::new();
        let clock = sim.clock();
        let log = Arc::new(Mutex::new(Vec::new()));
        // Deadlines spread over 24 simulated hours, registered out of order; some tasks
        // sleep repeatedly.
        let plan: [(u32, u64, u32); 5] = [
            (1, 3 * 3600, 1),
            (2, 15 * 60, 96),
            (3, 7, 1000),
            (4, 24 * 3600, 1),
            (5, 5400, 16),
        ];
        for (id, every_secs, times) in plan {
            let (clock, log) = (clock.clone(), log.clone());
            sim.spawner()
                .spawn(Box::pin(async move {
                    for _ in 0..times {
                        let deadline = clock.now() + Duration::from_secs(every_secs);
                        clock.sleep_until(deadline).await;
                        // Woke exactly at the deadline, not later.
                        assert_eq!(clock.now(), deadline);
                    }
                    log.lock()
                        .unwrap()
                        .push((id, clock.now().as_micros() / 1_000_000));
                }))
                .unwrap();
        }
        let real = RealInstant::now();
        sim.run_until_idle();
        assert!(
            real.elapsed() < Duration::from_secs(1),
            "took {:?}",
            real.elapsed()
        );
        // Equal deadlines wake in the order their sleeps were registered.
        assert_eq!(
            *log.lock().unwrap(),
            [
                (3, 7_000),
                (1, 10_800),
                (4, 86_400),
                (5, 86_400),
                (2, 86_400)
            ]
        );
        assert_eq!(sim.live_tasks(), 0);
    }

    #[test]
    fn block_on_drives_spawned_tasks_and_jumps_time() {
        let sim = Simulation::new();
        let clock = sim.clock();
        let (tx, rx) = futures::channel::oneshot::channel();
        let c = clock.clone();
        sim.spawner()
            .spawn(Box::pin(async move {
                c.sleep_until(Instant::from_secs(90)).await;
                tx.send(c.now()).unwrap();
            }))
            .unwrap();
        let woke = sim.block_on(rx).unwrap();
        assert_eq!(woke, Instant::from_secs(90));
        assert_eq!(
            clock.wall_now(),
            "2026-01-01T00:01:30Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn a_future_that_can_never_complete_is_a_deadlock_not_a_hang() {
        let sim = Simulation::new();
        sim.block_on(futures::future::pending::<()>());
    }

    /// Returns `Pending` `times` times, waking itself each time.
    async fn yield_times(times: u64) {
        let mut left = times;
        core::future::poll_fn(|cx| {
            if left == 0 {
                return Poll::Ready(());
            }
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    #[test]
    #[should_panic(expected = "keeps waking itself")]
    fn a_task_that_only_yields_is_a_livelock_reported_quickly() {
        let sim = Simulation::new();
        sim.spawner()
            .spawn(Box::pin(yield_times(u64::MAX)))
            .unwrap();
        sim.run_until_stalled();
    }

    #[test]
    #[should_panic(expected = "keeps waking itself")]
    fn a_block_on_future_that_only_yields_is_a_livelock_reported_quickly() {
        Simulation::new().block_on(yield_times(u64::MAX));
    }

    #[test]
    fn many_tasks_yielding_a_while_each_are_no_livelock() {
        let sim = Simulation::new();
        // More self-waking polls in all than the limit, but few for each task.
        for _ in 0..1_000 {
            sim.spawner()
                .spawn(Box::pin(yield_times(SELF_WAKES_LIMIT / 500)))
                .unwrap();
        }
        sim.block_on(yield_times(SELF_WAKES_LIMIT / 2));
        sim.run_until_stalled();
        assert_eq!(sim.live_tasks(), 0);
        // Nor is yielding past the limit in all while time moves now and then (here the task
        // moves it itself, without ever waiting).
        let clock = sim.clock();
        sim.block_on(async move {
            for _ in 0..3 {
                yield_times(SELF_WAKES_LIMIT - 1).await;
                clock.advance(Duration::from_millis(1));
            }
        });
    }

    #[test]
    fn run_for_stops_at_the_horizon() {
        let sim = Simulation::new();
        let clock = sim.clock();
        let ticks = Arc::new(Mutex::new(0u32));
        let (c, t) = (clock.clone(), ticks.clone());
        sim.spawner()
            .spawn(Box::pin(async move {
                loop {
                    let next = c.now() + Duration::from_secs(10);
                    c.sleep_until(next).await;
                    *t.lock().unwrap() += 1;
                }
            }))
            .unwrap();
        sim.run_for(Duration::from_secs(95));
        assert_eq!(*ticks.lock().unwrap(), 9);
        assert_eq!(clock.now(), Instant::from_secs(95));
        sim.run_for(Duration::from_secs(5));
        assert_eq!(*ticks.lock().unwrap(), 10);
    }

    #[test]
    fn spawner_fails_cleanly_after_the_simulation_is_gone() {
        let sim = Simulation::new();
        let spawner = sim.spawner();
        drop(sim);
        assert_eq!(spawner.spawn(Box::pin(async {})), Err(SpawnError::Shutdown));
    }
}
