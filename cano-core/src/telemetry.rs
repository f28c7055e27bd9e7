//! cano's own instrumentation: `tracing` spans and events, `metrics` counters, gauges and
//! histograms, and `defmt` logs, each behind its feature.
//!
//! The engine calls the functions here at fixed points (a run starts and ends, a state is
//! entered, an attempt starts, a retry is decided, a breaker changes state, a task panics).
//! With every feature off they are empty and inlined away, and a [`Span`] is a zero-sized
//! value, so an uninstrumented build runs exactly the code it ran before.
//!
//! Spans (feature `tracing`): `workflow_run{run}` → `state{state, task}` → `attempt{attempt}`,
//! and for a split `state` → `branch{task, index}` → `attempt`. `run` is a process-unique
//! sequence number of the run. Events: `retry` (WARN), `circuit_rejected` (WARN),
//! `circuit_transition` (INFO), `task_panicked` (ERROR), `workflow_finished` (INFO on
//! success, WARN otherwise).
//!
//! Metrics (feature `metrics`), cano 0.15's names where it has one: `cano_workflow_runs_total`
//! and `cano_workflow_duration_seconds` {outcome}, `cano_workflow_active`,
//! `cano_state_enters_total` {state}, `cano_task_attempts_total` and
//! `cano_task_retries_total` {task}, `cano_split_branch_results_total` {result},
//! `cano_circuit_transitions_total` {transition}, `cano_circuit_rejections_total` {task},
//! and `cano_task_panics_total` (not in cano 0.15, which had no counter for it). Labels are
//! low-cardinality: task names, state names, fixed outcome words; never run ids or errors.
//!
//! defmt (feature `defmt`): the same events at trace/debug/info/warn/error, with numbers and
//! `&str`s only (a state is logged by its registration index), so no `core::fmt` machinery
//! is pulled into a firmware.

#![cfg_attr(
    not(any(feature = "tracing", feature = "metrics", feature = "defmt")),
    allow(dead_code, clippy::extra_unused_type_parameters)
)]
// Each backend reads only what it reports.
#![cfg_attr(
    not(all(feature = "tracing", feature = "metrics", feature = "defmt")),
    allow(unused_variables)
)]

use core::fmt::Debug;
use core::future::Future;
use core::marker::PhantomData;

use crate::error::CanoError;
use crate::workflow::RunContext;

/// A tracing span, or nothing when feature `tracing` is off.
#[derive(Clone)]
#[must_use]
pub(crate) struct Span {
    #[cfg(feature = "tracing")]
    inner: tracing::Span,
}

/// The guard of an entered [`Span`].
pub(crate) struct Entered<'a> {
    #[cfg(feature = "tracing")]
    _guard: tracing::span::Entered<'a>,
    _span: PhantomData<&'a Span>,
}

impl Span {
    /// Enters the span until the guard is dropped. Never held across an `.await`: the
    /// engine enters spans inside `poll` only.
    #[inline(always)]
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            #[cfg(feature = "tracing")]
            _guard: self.inner.enter(),
            _span: PhantomData,
        }
    }
}

impl Span {
    /// Runs `make` with this span entered, so the spans it creates are its children.
    #[inline(always)]
    pub(crate) fn in_child<R>(&self, make: impl FnOnce() -> R) -> R {
        let _entered = self.enter();
        make()
    }
}

/// `future`, entering `span` whenever it is polled; `future` itself without `tracing`.
#[cfg(feature = "tracing")]
#[inline(always)]
pub(crate) fn in_span<F: Future>(span: Span, future: F) -> tracing::instrument::Instrumented<F> {
    tracing::Instrument::instrument(future, span.inner)
}

/// `future`, entering `span` whenever it is polled; `future` itself without `tracing`.
#[cfg(not(feature = "tracing"))]
#[inline(always)]
pub(crate) fn in_span<F: Future>(span: Span, future: F) -> F {
    let _ = span;
    future
}

/// A whole workflow run (the state machine after validation, made by `make` from `ctx`):
/// its span, its start and end events, the run and duration metrics. Without a telemetry
/// feature, exactly `make(ctx)`.
#[cfg(not(any(feature = "tracing", feature = "metrics", feature = "defmt")))]
#[inline(always)]
pub(crate) fn workflow_run<C, Sp, F>(
    ctx: RunContext<C, Sp>,
    make: impl FnOnce(RunContext<C, Sp>) -> F,
) -> F {
    make(ctx)
}

/// A whole workflow run (the state machine after validation, made by `make` from `ctx`):
/// its span, its start and end events, the run and duration metrics. Without a telemetry
/// feature, exactly `make(ctx)`.
#[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
// Not an `async fn`: its future measured 32 B larger than this block (issue 15).
#[allow(clippy::manual_async_fn)]
pub(crate) fn workflow_run<C, Sp, S, F>(
    ctx: RunContext<C, Sp>,
    make: impl FnOnce(RunContext<C, Sp>) -> F,
) -> impl Future<Output = F::Output>
where
    C: crate::runtime::Clock,
    Sp: crate::runtime::Spawner,
    F: Future<Output = Result<S, CanoError>>,
{
    async move {
        let clock = ctx.clock().clone();
        // Made here, not by the caller: a run passed in would be held twice, as an argument
        // and as the pinned local it is awaited from.
        let run = make(ctx);
        let id = next_run_id();
        #[cfg(feature = "tracing")]
        let span = tracing::info_span!("workflow_run", run = id);
        #[cfg(feature = "defmt")]
        defmt::debug!("cano: workflow run {=usize} started", id);
        #[cfg(not(feature = "metrics"))]
        let _ = &clock;
        #[cfg(feature = "metrics")]
        let (started, _active) = (clock.now(), ActiveRun::begin());
        #[cfg(feature = "tracing")]
        let result = tracing::Instrument::instrument(run, span.clone()).await;
        #[cfg(not(feature = "tracing"))]
        let result = run.await;
        let outcome = outcome_label(&result);
        #[cfg(feature = "tracing")]
        {
            let _entered = span.enter();
            match &result {
                Ok(_) => tracing::info!(run = id, outcome, "workflow_finished"),
                Err(error) => tracing::warn!(run = id, outcome, %error, "workflow_finished"),
            }
        }
        #[cfg(feature = "metrics")]
        {
            let seconds = clock.now().saturating_duration_since(started).as_secs_f64();
            metrics::counter!("cano_workflow_runs_total", "outcome" => outcome).increment(1);
            metrics::histogram!("cano_workflow_duration_seconds", "outcome" => outcome)
                .record(seconds);
        }
        #[cfg(feature = "defmt")]
        defmt::debug!("cano: workflow run {=usize} ended: {=str}", id, outcome);
        result
    }
}

/// The outcome word of a run: `completed`, `cancelled`, `timeout` or `failed`.
#[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
fn outcome_label<S>(result: &Result<S, CanoError>) -> &'static str {
    match result {
        Ok(_) => "completed",
        Err(CanoError::Cancelled(_)) => "cancelled",
        Err(CanoError::Timeout(_)) => "timeout",
        Err(_) => "failed",
    }
}

#[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
fn next_run_id() -> usize {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `cano_workflow_active` while a run is in flight, also when its future is dropped.
#[cfg(feature = "metrics")]
struct ActiveRun;

#[cfg(feature = "metrics")]
impl ActiveRun {
    fn begin() -> Self {
        metrics::gauge!("cano_workflow_active").increment(1.0);
        ActiveRun
    }
}

#[cfg(feature = "metrics")]
impl Drop for ActiveRun {
    fn drop(&mut self) {
        metrics::gauge!("cano_workflow_active").decrement(1.0);
    }
}

/// The run entered the state registered at `index`; returns the state's span (`task` names
/// the task or join that runs in it, `""` for an exit state; called only by `tracing`).
#[inline(always)]
pub(crate) fn state_entered<'a, S: Debug>(
    state: &S,
    index: usize,
    task: impl FnOnce() -> &'a str,
) -> Span {
    #[cfg(feature = "metrics")]
    metrics::counter!("cano_state_enters_total", "state" => alloc::format!("{state:?}"))
        .increment(1);
    #[cfg(feature = "defmt")]
    defmt::trace!("cano: state {=usize} entered", index);
    Span {
        #[cfg(feature = "tracing")]
        inner: tracing::info_span!("state", state = ?state, task = task()),
    }
}

/// Attempt number `attempt` (1-based) of `task` starts; returns its span.
#[inline(always)]
pub(crate) fn attempt(task: Option<&str>, attempt: u32) -> Span {
    #[cfg(feature = "metrics")]
    metrics::counter!("cano_task_attempts_total", "task" => task_label(task)).increment(1);
    #[cfg(feature = "defmt")]
    defmt::trace!(
        "cano: task {=str} attempt {=u32}",
        task.unwrap_or("?"),
        attempt
    );
    Span {
        #[cfg(feature = "tracing")]
        inner: tracing::debug_span!("attempt", attempt),
    }
}

/// Branch `index` of a split, running `task`, starts; returns its span.
#[inline(always)]
pub(crate) fn branch(task: &str, index: usize) -> Span {
    #[cfg(feature = "defmt")]
    defmt::trace!("cano: split branch {=usize} ({=str}) started", index, task);
    Span {
        #[cfg(feature = "tracing")]
        inner: tracing::info_span!("branch", task, index),
    }
}

/// A split branch finished (`success`: it returned `Ok`).
#[inline(always)]
pub(crate) fn branch_finished(index: usize, success: bool) {
    let result = if success { "success" } else { "failure" };
    #[cfg(feature = "tracing")]
    tracing::debug!(index, result, "branch_finished");
    #[cfg(feature = "metrics")]
    metrics::counter!("cano_split_branch_results_total", "result" => result).increment(1);
    #[cfg(feature = "defmt")]
    defmt::trace!("cano: split branch {=usize}: {=str}", index, result);
}

/// Attempt `failed` of `task` failed with `error` and the task will be retried.
#[inline(always)]
pub(crate) fn retry(task: Option<&str>, failed: u32, error: &CanoError) {
    #[cfg(feature = "tracing")]
    tracing::warn!(task = task.unwrap_or(""), attempt = failed, %error, "retry");
    #[cfg(feature = "metrics")]
    metrics::counter!("cano_task_retries_total", "task" => task_label(task)).increment(1);
    #[cfg(feature = "defmt")]
    defmt::warn!(
        "cano: task {=str} attempt {=u32} failed ({=str}), retrying",
        task.unwrap_or("?"),
        failed,
        error.category()
    );
}

/// `task`'s circuit breaker rejected a call.
#[inline(always)]
pub(crate) fn circuit_rejected(task: Option<&str>) {
    #[cfg(feature = "tracing")]
    tracing::warn!(task = task.unwrap_or(""), "circuit_rejected");
    #[cfg(feature = "metrics")]
    metrics::counter!("cano_circuit_rejections_total", "task" => task_label(task)).increment(1);
    #[cfg(feature = "defmt")]
    defmt::warn!(
        "cano: circuit open, task {=str} rejected",
        task.unwrap_or("?")
    );
}

/// A circuit breaker moved from `from` to `to` (`closed`, `open` or `half_open`).
#[inline(always)]
pub(crate) fn circuit_transition(from: &'static str, to: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::info!(from, to, "circuit_transition");
    #[cfg(feature = "metrics")]
    metrics::counter!("cano_circuit_transitions_total", "transition" => transition_label(from, to))
        .increment(1);
    #[cfg(feature = "defmt")]
    defmt::info!("cano: circuit {=str} -> {=str}", from, to);
}

/// A task, branch or scheduled run panicked with `message` (feature `std` isolates it).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
#[inline(always)]
pub(crate) fn panicked(message: &str) {
    #[cfg(feature = "tracing")]
    tracing::error!(panic = message, "task_panicked");
    #[cfg(feature = "metrics")]
    metrics::counter!("cano_task_panics_total").increment(1);
    #[cfg(feature = "defmt")]
    defmt::error!("cano: task panicked: {=str}", message);
}

#[cfg(feature = "metrics")]
fn task_label(task: Option<&str>) -> metrics::SharedString {
    match task {
        Some(name) => metrics::SharedString::from(alloc::string::String::from(name)),
        None => metrics::SharedString::const_str("run_with_retries"),
    }
}

#[cfg(feature = "metrics")]
fn transition_label(from: &'static str, to: &'static str) -> &'static str {
    match (from, to) {
        ("closed", "open") => "closed_to_open",
        ("open", "half_open") => "open_to_half_open",
        ("half_open", "closed") => "half_open_to_closed",
        ("half_open", "open") => "half_open_to_open",
        _ => "other",
    }
}

/// The span of one scheduled run (a fire or a trigger of a flow), with its fire id: the
/// workflow run it makes (`workflow_run`) is its child.
#[inline(always)]
pub(crate) fn scheduled_run(fire: &crate::scheduler::FireId) -> Span {
    Span {
        #[cfg(feature = "tracing")]
        inner: tracing::info_span!("scheduled_run", flow = fire.flow(), fire = %fire),
    }
}

/// The scheduler's telemetry, driven by its [`SchedulerEvent`](crate::scheduler::SchedulerEvent)s:
/// an observer the driver adds when a telemetry feature is on (so, with every feature off,
/// the core makes no event for it).
///
/// Events (`tracing`): `scheduled_run_finished` (INFO, WARN on failure), `flow_backoff`
/// (WARN), `flow_tripped` (ERROR), `fires_missed` and `fires_skipped` (INFO), each with
/// `flow` and, for runs, `fire`. Metrics (cano 0.15's names): `cano_scheduler_flow_runs_total`
/// {flow, outcome}, `cano_scheduler_flow_duration_seconds` {flow},
/// `cano_scheduler_flow_backoff_total` {flow}, `cano_scheduler_flow_tripped_total` {flow}
/// and the gauge `cano_scheduler_active_flows`. The `flow` label is a flow id: a set the
/// application chose, not per-run data.
#[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
pub(crate) struct SchedulerTelemetry {
    /// Flows counted into `cano_scheduler_active_flows` by this scheduler.
    #[cfg(feature = "metrics")]
    active: core::sync::atomic::AtomicUsize,
}

#[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
impl SchedulerTelemetry {
    /// For a scheduler starting with `flows` flows.
    pub(crate) fn new(flows: usize) -> Self {
        #[cfg(feature = "metrics")]
        metrics::gauge!("cano_scheduler_active_flows").increment(flows as f64);
        SchedulerTelemetry {
            #[cfg(feature = "metrics")]
            active: core::sync::atomic::AtomicUsize::new(flows),
        }
    }
}

#[cfg(any(feature = "tracing", feature = "metrics", feature = "defmt"))]
impl crate::scheduler::SchedulerObserver for SchedulerTelemetry {
    fn on_event(&self, event: &crate::scheduler::SchedulerEvent) {
        use crate::scheduler::{RunOutcome, SchedulerEvent};
        #[cfg(feature = "metrics")]
        use core::sync::atomic::Ordering;
        #[cfg(feature = "metrics")]
        // The id's `Arc` is the label's string: a run's report allocates only the keys.
        let label = |flow: &alloc::sync::Arc<str>| metrics::SharedString::from(flow.clone());
        match event {
            SchedulerEvent::FireEnded {
                fire,
                outcome,
                duration,
                ..
            } => {
                let word = match outcome {
                    RunOutcome::Succeeded => "completed",
                    RunOutcome::Cancelled => "cancelled",
                    _ => "failed",
                };
                #[cfg(feature = "tracing")]
                match outcome {
                    RunOutcome::Failed(failure) => tracing::warn!(
                        flow = fire.flow(),
                        fire = %fire,
                        outcome = word,
                        error = failure.message(),
                        duration_ms = duration.as_millis() as u64,
                        "scheduled_run_finished"
                    ),
                    _ => tracing::info!(
                        flow = fire.flow(),
                        fire = %fire,
                        outcome = word,
                        duration_ms = duration.as_millis() as u64,
                        "scheduled_run_finished"
                    ),
                }
                #[cfg(feature = "metrics")]
                {
                    metrics::counter!("cano_scheduler_flow_runs_total", "flow" => label(fire.flow_shared()), "outcome" => word)
                        .increment(1);
                    metrics::histogram!("cano_scheduler_flow_duration_seconds", "flow" => label(fire.flow_shared()))
                        .record(duration.as_secs_f64());
                }
                #[cfg(feature = "defmt")]
                defmt::debug!(
                    "cano: flow {=str} run ended: {=str} in {=u64} ms",
                    fire.flow(),
                    word,
                    duration.as_millis() as u64
                );
            }
            SchedulerEvent::Backoff {
                flow,
                streak,
                delay,
            } => {
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    flow = &**flow,
                    streak,
                    delay_ms = delay.as_millis() as u64,
                    "flow_backoff"
                );
                #[cfg(feature = "metrics")]
                metrics::counter!("cano_scheduler_flow_backoff_total", "flow" => label(flow))
                    .increment(1);
                #[cfg(feature = "defmt")]
                defmt::warn!(
                    "cano: flow {=str} backs off {=u64} ms (streak {=u32})",
                    &**flow,
                    delay.as_millis() as u64,
                    *streak
                );
            }
            SchedulerEvent::Tripped { flow, streak } => {
                #[cfg(feature = "tracing")]
                tracing::error!(flow = &**flow, streak, "flow_tripped");
                #[cfg(feature = "metrics")]
                metrics::counter!("cano_scheduler_flow_tripped_total", "flow" => label(flow))
                    .increment(1);
                #[cfg(feature = "defmt")]
                defmt::error!(
                    "cano: flow {=str} tripped (streak {=u32})",
                    &**flow,
                    *streak
                );
            }
            SchedulerEvent::FiresMissed { flow, count } => {
                #[cfg(feature = "tracing")]
                tracing::info!(flow = &**flow, count, "fires_missed");
                #[cfg(feature = "defmt")]
                defmt::info!("cano: flow {=str} missed {=u64} fires", &**flow, *count);
            }
            SchedulerEvent::FiresSkipped { flow, count } => {
                #[cfg(feature = "tracing")]
                tracing::info!(flow = &**flow, count, "fires_skipped");
                #[cfg(feature = "defmt")]
                defmt::info!("cano: flow {=str} skipped {=u64} fires", &**flow, *count);
            }
            SchedulerEvent::FlowAdded { flow } => {
                #[cfg(feature = "tracing")]
                tracing::info!(flow = &**flow, "flow_added");
                #[cfg(feature = "metrics")]
                {
                    self.active.fetch_add(1, Ordering::Relaxed);
                    metrics::gauge!("cano_scheduler_active_flows").increment(1.0);
                }
                #[cfg(feature = "defmt")]
                defmt::info!("cano: flow {=str} added", &**flow);
            }
            SchedulerEvent::FlowRemoved { flow } => {
                #[cfg(feature = "tracing")]
                tracing::info!(flow = &**flow, "flow_removed");
                #[cfg(feature = "metrics")]
                {
                    self.active.fetch_sub(1, Ordering::Relaxed);
                    metrics::gauge!("cano_scheduler_active_flows").decrement(1.0);
                }
                #[cfg(feature = "defmt")]
                defmt::info!("cano: flow {=str} removed", &**flow);
            }
            SchedulerEvent::Stopped => {
                #[cfg(feature = "metrics")]
                {
                    let active = self.active.swap(0, Ordering::Relaxed);
                    metrics::gauge!("cano_scheduler_active_flows").decrement(active as f64);
                }
                #[cfg(feature = "tracing")]
                tracing::info!("scheduler_stopped");
                #[cfg(feature = "defmt")]
                defmt::info!("cano: scheduler stopped");
            }
            _ => {}
        }
    }
}
