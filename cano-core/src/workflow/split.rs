//! The split driver: runs a split state's branches concurrently and joins them.
//!
//! Branches are polled in place, inside the workflow's own future, so a split needs no
//! spawning and works on every runtime (a microcontroller included). Each branch is one
//! retry loop holding one boxed task future; a branch that completes on its first poll
//! costs nothing more. A branch that has to wait gets its own waker the next time it is
//! polled, so later wake-ups re-poll only that branch, never the whole split.
//!
//! A split whose [`JoinConfig`] asks for spawned branches hands each branch to the run's
//! [`Spawner`] instead (parallelism on a multi-threaded runtime). The branches report into
//! one [`SpawnedBranches`] per split (an outcome cell per branch, the split's waker, and
//! the flag that abandons them), so a spawned branch costs its task and nothing more: no
//! channel, no abort handle, no waker of its own. A split that concludes or is dropped
//! abandons the branches still running; each stops at its next poll.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use futures::future::{Either, select};
use futures::task::AtomicWaker;

use crate::error::CanoError;
use crate::panic::isolate_panic;
use crate::random::{JitterSource, RandomSource};
use crate::resource::Resources;
use crate::runtime::{Clock, Spawner};
use crate::sync::Lock;
use crate::telemetry::{self, Span};
use crate::workflow::join::{JoinConfig, JoinDecision, JoinStrategy, JoinTracker, SplitResult};
use crate::workflow::observer::{Observers, TaskEvents, TaskId};
use crate::workflow::retry::{Attempts, MakeAttempt};
use crate::workflow::run::RunGuard;
use crate::workflow::task::{RegisteredTask, RunBranch, TaskResult};

/// A registered split state.
pub(crate) struct SplitSpec<S, K> {
    pub(crate) branches: Vec<Arc<RegisteredTask<S, K>>>,
    pub(crate) join: JoinConfig<S>,
}

/// What a split needs from its run.
pub(crate) struct SplitEnv<'a, S, K, C, Sp> {
    pub(crate) resources: &'a Arc<Resources<K>>,
    pub(crate) clock: &'a C,
    pub(crate) spawner: Option<&'a Sp>,
    pub(crate) random: JitterSource<'a>,
    /// `None`: no observer.
    pub(crate) observers: Option<&'a Observers<S>>,
    /// The run's cancellation and deadline, checked before every retry of a branch run
    /// in place.
    pub(crate) guard: RunGuard<'a>,
}

type Outcome<S> = Result<TaskResult<S>, CanoError>;
type LocalBranch<'a, S, K, C> =
    Attempts<'a, TaskResult<S>, C, RunBranch<'a, S, K>, TaskEvents<'a, S>>;

// Slots live in one `Vec` per split; boxing the local branch would cost an allocation per
// branch, which polling branches in place exists to avoid.
#[allow(clippy::large_enum_variant)]
enum Slot<'a, S, K, C: Clock> {
    Queued,
    Local(LocalBranch<'a, S, K, C>, Wakeup, Span),
    /// Running as its own task; its outcome arrives in [`SpawnedBranches`].
    Remote,
    Finished,
}

/// What a split shares with its spawned branches (one allocation per split).
struct SpawnedBranches<S> {
    /// The split's waker: a branch that finished wakes it.
    split: Arc<AtomicWaker>,
    /// Set when the split concluded or was dropped: the branches still running stop.
    abandoned: AtomicBool,
    /// One per branch of the split, by index.
    branches: Vec<SpawnedBranch<S>>,
}

/// One spawned branch's side of [`SpawnedBranches`].
struct SpawnedBranch<S> {
    /// Its outcome, once it finished (or its task was dropped by the runtime).
    outcome: Lock<Option<Outcome<S>>>,
    /// Whether `outcome` is set, read by the split without taking the lock.
    finished: AtomicBool,
    /// The branch task's waker, so abandoning it wakes it to stop.
    task: AtomicWaker,
    /// Set while the split is inside `Spawner::spawn` with this branch: a drop then is the
    /// spawner refusing it (or the runtime dropping it at once), which the split sees for
    /// itself when `spawn` returns, so it is not woken for it.
    handing_over: AtomicBool,
}

impl<S> SpawnedBranches<S> {
    fn new(split: Arc<AtomicWaker>, total: usize) -> Self {
        let mut branches = Vec::with_capacity(total);
        branches.resize_with(total, || SpawnedBranch {
            outcome: Lock::new(None),
            finished: AtomicBool::new(false),
            task: AtomicWaker::new(),
            handing_over: AtomicBool::new(false),
        });
        SpawnedBranches {
            split,
            abandoned: AtomicBool::new(false),
            branches,
        }
    }

    /// Stores branch `index`'s outcome and wakes the split.
    fn report(&self, index: usize, outcome: Outcome<S>) {
        self.store(index, outcome);
        self.split.wake();
    }

    /// Stores branch `index`'s outcome without waking the split.
    fn store(&self, index: usize, outcome: Outcome<S>) {
        let branch = &self.branches[index];
        branch.outcome.with(|slot| *slot = Some(outcome));
        branch.finished.store(true, Ordering::Release);
    }

    /// Hands branch `index` to `spawn`; `false` when it refused. A refused branch leaves no
    /// outcome behind and no wake-up of the split: it runs in place instead.
    fn hand_over(&self, index: usize, spawn: impl FnOnce() -> bool) -> bool {
        let branch = &self.branches[index];
        branch.handing_over.store(true, Ordering::Release);
        let accepted = spawn();
        branch.handing_over.store(false, Ordering::Release);
        if !accepted {
            // What the refused future's drop stored; an accepted one's is read in this poll.
            self.take(index);
        }
        accepted
    }

    /// Branch `index`'s outcome, once it finished (taken: asked once per branch).
    fn take(&self, index: usize) -> Option<Outcome<S>> {
        let branch = &self.branches[index];
        if !branch.finished.load(Ordering::Acquire) {
            return None;
        }
        branch.outcome.with(Option::take)
    }

    /// Stops every branch still running, at its next poll.
    fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
        for branch in &self.branches {
            branch.task.wake();
        }
    }
}

/// Completes once branch `index`'s split abandoned it.
struct Abandoned<'s, S> {
    shared: &'s SpawnedBranches<S>,
    index: usize,
}

impl<S> Future for Abandoned<'_, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Registered before the check, so an abandon in between still wakes this task.
        self.shared.branches[self.index].task.register(cx.waker());
        if self.shared.abandoned.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Reports a spawned branch whose task the runtime dropped before it finished (a runtime
/// shutting down), so its split does not wait for it forever.
struct ReportIfDropped<S: 'static> {
    shared: Arc<SpawnedBranches<S>>,
    index: usize,
    reported: bool,
}

impl<S> Drop for ReportIfDropped<S> {
    fn drop(&mut self) {
        if self.reported || self.shared.abandoned.load(Ordering::Acquire) {
            return;
        }
        let dropped = Err(CanoError::workflow(
            "spawned split branch was dropped by the runtime",
        ));
        if self.shared.branches[self.index]
            .handing_over
            .load(Ordering::Acquire)
        {
            // The split is inside `spawn`: it discards this if the spawn was refused, and
            // reads it later in the same poll if it was accepted.
            self.shared.store(self.index, dropped);
        } else {
            self.shared.report(self.index, dropped);
        }
    }
}

/// How a running branch is woken: first through the split's own waker, then through one of
/// its own.
enum Wakeup {
    FirstPoll,
    /// Polled with the split's waker while being started, in this very pass.
    StartedPending,
    Untracked,
    Tracked(Arc<BranchWaker>, Waker),
}

struct BranchWaker {
    woken: AtomicBool,
    split: Arc<AtomicWaker>,
}

impl Wake for BranchWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.split.wake();
    }
}

impl Wakeup {
    /// Polls `poll` if the branch may have progressed, with the right waker.
    fn poll<T>(
        &mut self,
        split_cx: &mut Context<'_>,
        split_waker: &Arc<AtomicWaker>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        match self {
            Wakeup::FirstPoll => {
                *self = Wakeup::Untracked;
                poll(split_cx)
            }
            Wakeup::StartedPending => {
                // Its wake-up, if any, goes to the split's waker; poll it next time.
                *self = Wakeup::Untracked;
                Poll::Pending
            }
            Wakeup::Untracked => {
                let own = Arc::new(BranchWaker {
                    woken: AtomicBool::new(false),
                    split: split_waker.clone(),
                });
                let waker = Waker::from(own.clone());
                let result = poll(&mut Context::from_waker(&waker));
                *self = Wakeup::Tracked(own, waker);
                result
            }
            Wakeup::Tracked(own, waker) => {
                if own.woken.swap(false, Ordering::AcqRel) {
                    poll(&mut Context::from_waker(waker))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

/// Runs a split to its join decision. `Ok` carries the results when the join is
/// satisfied; otherwise a [`CanoError::Workflow`] (join not met) or
/// [`CanoError::Timeout`] (split timeout).
///
/// The split's own future, not an `async fn` awaiting it: that would hold `env` twice.
pub(crate) fn run_split<'a, S, K, C, Sp>(
    spec: &'a SplitSpec<S, K>,
    env: SplitEnv<'a, S, K, C, Sp>,
) -> impl Future<Output = Result<SplitResult<S>, CanoError>> + 'a
where
    S: Clone + Send + Sync + 'static,
    K: Send + Sync + 'static,
    C: Clock,
    Sp: Spawner,
{
    let total = spec.branches.len();
    let deadline = spec
        .join
        .timeout
        .map(|limit| Box::pin(env.clock.sleep_until(env.clock.now() + limit)));
    let mut slots = Vec::with_capacity(total);
    slots.resize_with(total, || Slot::Queued);
    let split_waker = Arc::new(AtomicWaker::new());
    let spawned = (spec.join.spawn_branches && env.spawner.is_some())
        .then(|| Arc::new(SpawnedBranches::new(split_waker.clone(), total)));
    SplitJoin {
        spec,
        tracker: JoinTracker::new(spec.join.strategy, total),
        limit: spec.join.bulkhead.unwrap_or(usize::MAX).max(1),
        slots,
        next_start: 0,
        running: 0,
        results: SplitResult {
            successes: Vec::with_capacity(total),
            errors: Vec::new(),
            cancelled: Vec::new(),
        },
        deadline,
        split_waker,
        spawned,
        env,
    }
}

struct SplitJoin<'a, S, K, C: Clock, Sp> {
    spec: &'a SplitSpec<S, K>,
    env: SplitEnv<'a, S, K, C, Sp>,
    tracker: JoinTracker,
    limit: usize,
    slots: Vec<Slot<'a, S, K, C>>,
    next_start: usize,
    running: usize,
    results: SplitResult<S>,
    deadline: Option<Pin<Box<C::Sleep>>>,
    split_waker: Arc<AtomicWaker>,
    /// Where spawned branches report, for a split that spawns them.
    spawned: Option<Arc<SpawnedBranches<S>>>,
}

impl<'a, S, K, C, Sp> SplitJoin<'a, S, K, C, Sp>
where
    S: Clone + Send + Sync + 'static,
    K: Send + Sync + 'static,
    C: Clock,
    Sp: Spawner,
{
    fn events(&self, index: usize) -> TaskEvents<'a, S> {
        let spec: &'a SplitSpec<S, K> = self.spec;
        let observers: Option<&'a Observers<S>> = self.env.observers;
        TaskEvents {
            observers: observers.map_or(&[], Observers::as_slice),
            id: TaskId {
                name: spec.branches[index].name(),
                branch: Some(index),
            },
        }
    }

    /// Starts branch `index`. A branch with no breaker and no attempt timeout runs its first
    /// attempt's first poll right here, and if that finishes it, the outcome is returned
    /// without a retry loop ever being built.
    fn start(&mut self, index: usize, cx: &mut Context<'_>) -> Option<Outcome<S>> {
        let events = self.events(index);
        events.start();
        let spec: &'a SplitSpec<S, K> = self.spec;
        let branch = &spec.branches[index];
        let span = telemetry::branch(branch.name(), index);
        if self.spawn(index, branch, span.clone()) {
            self.slots[index] = Slot::Remote;
            return None;
        }
        let clock: &'a C = self.env.clock;
        let random: &'a dyn RandomSource = self.env.random.get();
        let resources: &'a Resources<K> = self.env.resources;
        let mut run = RunBranch::new(&branch.task, resources);
        let guard = self.env.guard;
        let retry_loop =
            |run| Attempts::new(branch.config(), clock, random, run, events, Some(guard));
        if !branch.first_attempt_is_bare() {
            self.slots[index] = Slot::Local(retry_loop(run), Wakeup::FirstPoll, span);
            return None;
        }
        let attempt = span.in_child(|| telemetry::attempt(Some(branch.name()), 1));
        let mut first = match isolate_panic(|| attempt.in_child(|| run.make())) {
            Ok(first) => first,
            Err(panicked) => return Some(Err(panicked)),
        };
        match isolate_panic(|| attempt.in_child(|| first.as_mut().poll(cx))) {
            Err(panicked) => Some(Err(panicked)),
            Ok(Poll::Ready(Ok(result))) => Some(Ok(result)),
            Ok(Poll::Ready(Err(error))) => match retry_loop(run).after_failed_first(error) {
                Err(last) => Some(Err(last)),
                Ok(rest) => {
                    self.slots[index] = Slot::Local(rest, Wakeup::FirstPoll, span);
                    None
                }
            },
            Ok(Poll::Pending) => {
                let rest = retry_loop(run).with_pending_first(first, attempt);
                self.slots[index] = Slot::Local(rest, Wakeup::StartedPending, span);
                None
            }
        }
    }

    /// Hands a branch to the spawner; `false` when the split does not spawn or the spawner
    /// refuses (the branch then runs in place).
    fn spawn(&self, index: usize, branch: &Arc<RegisteredTask<S, K>>, span: Span) -> bool {
        let (Some(spawner), Some(shared)) = (self.env.spawner, &self.spawned) else {
            return false;
        };
        let mut report = ReportIfDropped {
            shared: shared.clone(),
            index,
            reported: false,
        };
        let branch = branch.clone();
        let resources = self.env.resources.clone();
        let clock = self.env.clock.clone();
        // A fork of the run's generator, held inline (no allocation).
        let random = self.env.random.to_owned();
        let observers = self.env.observers.cloned().unwrap_or(Observers::none());
        let work = async move {
            let events = TaskEvents {
                observers: observers.as_slice(),
                id: TaskId {
                    name: branch.name(),
                    branch: Some(index),
                },
            };
            let run = RunBranch::new(&branch.task, &*resources);
            let attempts = Attempts::new(branch.config(), &clock, random.get(), run, events, None);
            let attempts = core::pin::pin!(telemetry::in_span(span, attempts));
            let abandoned = core::pin::pin!(Abandoned {
                shared: &report.shared,
                index,
            });
            if let Either::Right((outcome, _)) = select(abandoned, attempts).await {
                report.reported = true;
                report.shared.report(index, outcome);
            }
        };
        shared.hand_over(index, || spawner.spawn(Box::pin(work)).is_ok())
    }

    /// Cancels every unfinished branch and reports the verdict.
    fn conclude(
        &mut self,
        decision: JoinDecision,
        timed_out: bool,
    ) -> Result<SplitResult<S>, CanoError> {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            match core::mem::replace(slot, Slot::Finished) {
                Slot::Finished => {}
                Slot::Queued | Slot::Local(..) | Slot::Remote => {
                    self.results.cancelled.push(index);
                }
            }
        }
        if let Some(spawned) = &self.spawned {
            spawned.abandon();
        }
        let results = core::mem::take(&mut self.results);
        if decision == JoinDecision::Satisfied {
            return Ok(results);
        }
        let total = self.spec.branches.len();
        let strategy = self.spec.join.strategy;
        if timed_out {
            if strategy == JoinStrategy::PartialTimeout {
                return Err(CanoError::workflow(
                    "PartialTimeout: no tasks completed before timeout",
                ));
            }
            return Err(CanoError::timeout(alloc::format!(
                "Split task timeout exceeded after {}: {} of {total} tasks completed successfully, strategy: {strategy}",
                crate::time::DurationText(self.spec.join.timeout.unwrap_or_default()),
                results.successes.len(),
            )));
        }
        let mut message = alloc::format!(
            "Join condition not met: {} of {total} tasks completed successfully, strategy: {strategy}",
            results.successes.len()
        );
        const LISTED: usize = 3;
        if !results.errors.is_empty() {
            message.push_str("; errors: ");
            for (n, (index, error)) in results.errors.iter().take(LISTED).enumerate() {
                let sep = if n == 0 { "" } else { "; " };
                let _ = write!(message, "{sep}task {index}: {error}");
            }
            if results.errors.len() > LISTED {
                let _ = write!(
                    message,
                    "; … and {} more error(s)",
                    results.errors.len() - LISTED
                );
            }
        }
        Err(CanoError::workflow(message))
    }

    fn record(&mut self, index: usize, outcome: Outcome<S>) -> JoinDecision {
        self.slots[index] = Slot::Finished;
        self.running -= 1;
        self.events(index).finish(&outcome);
        let success = outcome.is_ok();
        telemetry::branch_finished(index, success);
        match outcome {
            Ok(result) => self.results.successes.push((index, result)),
            Err(error) => self.results.errors.push((index, error)),
        }
        self.tracker.record(success)
    }
}

/// Nothing in a split is ever pinned in place: branches are boxed or `Unpin` themselves.
impl<S, K, C: Clock, Sp> Unpin for SplitJoin<'_, S, K, C, Sp> {}

/// A split dropped before it concluded (the workflow's total timeout or cancellation won)
/// abandons its spawned branches: they must not outlive the run (nor keep using resources
/// that are about to be torn down).
impl<S, K, C: Clock, Sp> Drop for SplitJoin<'_, S, K, C, Sp> {
    fn drop(&mut self) {
        if let Some(spawned) = &self.spawned {
            spawned.abandon();
        }
    }
}

impl<S, K, C, Sp> Future for SplitJoin<'_, S, K, C, Sp>
where
    S: Clone + Send + Sync + 'static,
    K: Send + Sync + 'static,
    C: Clock,
    Sp: Spawner,
{
    type Output = Result<SplitResult<S>, CanoError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.slots.is_empty() {
            let decision = this.tracker.decision();
            return Poll::Ready(this.conclude(decision, false));
        }
        this.split_waker.register(cx.waker());
        loop {
            let mut finished_any = false;
            while this.running < this.limit && this.next_start < this.slots.len() {
                let index = this.next_start;
                this.next_start += 1;
                this.running += 1;
                if let Some(outcome) = this.start(index, cx) {
                    finished_any = true;
                    let decision = this.record(index, outcome);
                    if decision != JoinDecision::Pending {
                        return Poll::Ready(this.conclude(decision, false));
                    }
                }
            }
            for index in 0..this.slots.len() {
                let split_waker = &this.split_waker;
                let polled = match &mut this.slots[index] {
                    Slot::Local(branch, wakeup, span) => wakeup.poll(cx, split_waker, |cx| {
                        let _entered = span.enter();
                        Pin::new(&mut *branch).poll(cx)
                    }),
                    Slot::Remote => match this.spawned.as_ref().and_then(|s| s.take(index)) {
                        Some(outcome) => Poll::Ready(outcome),
                        None => Poll::Pending,
                    },
                    Slot::Queued | Slot::Finished => continue,
                };
                if let Poll::Ready(outcome) = polled {
                    finished_any = true;
                    let decision = this.record(index, outcome);
                    if decision != JoinDecision::Pending {
                        return Poll::Ready(this.conclude(decision, false));
                    }
                }
            }
            if !finished_any {
                break;
            }
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            let decision = this.tracker.on_timeout();
            return Poll::Ready(this.conclude(decision, true));
        }
        Poll::Pending
    }
}
