//! Shared fixtures for the scheduler tests: a recording job on the fake clock.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cano_core::scheduler::{Fire, FireId, Job, RunningScheduler, Scheduler};
use cano_core::testing::{FakeClock, Simulation};
use cano_core::{CanoError, CanoResult, Clock, Instant};
use futures::future::{BoxFuture, Either, select};

/// One run as a job saw it.
#[derive(Debug, Clone)]
pub struct Run {
    pub fire: FireId,
    pub started: Instant,
    pub ended: Option<Instant>,
}

#[derive(Default)]
struct Records {
    runs: Vec<Run>,
    in_flight: HashMap<String, u32>,
    max_in_flight: HashMap<String, u32>,
    attempts: HashMap<String, u32>,
}

/// What a recording job does on each run.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// How long each run takes on the fake clock.
    pub duration: Duration,
    /// Runs 1..=fail_until fail (1-based attempt count per flow).
    pub fail_until: u32,
    /// Whether to end early (with `CanoError::Cancelled`) when the scheduler stops or the
    /// run's cancellation is signalled (`cancel_flow`, `InFlight::Cancel`).
    pub honour_stop: bool,
    /// Whether to panic instead of failing.
    pub panic: bool,
}

impl Behaviour {
    pub const INSTANT_OK: Behaviour = Behaviour {
        duration: Duration::ZERO,
        fail_until: 0,
        honour_stop: true,
        panic: false,
    };

    pub fn taking(duration: Duration) -> Self {
        Behaviour {
            duration,
            ..Behaviour::INSTANT_OK
        }
    }

    pub fn failing() -> Self {
        Behaviour {
            fail_until: u32::MAX,
            ..Behaviour::INSTANT_OK
        }
    }

    pub fn failing_until(n: u32) -> Self {
        Behaviour {
            fail_until: n,
            ..Behaviour::INSTANT_OK
        }
    }
}

/// Records every run of every job it made, on one fake clock.
#[derive(Clone)]
pub struct Recorder {
    clock: FakeClock,
    records: Arc<Mutex<Records>>,
}

struct InFlight {
    records: Arc<Mutex<Records>>,
    flow: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut r = self.records.lock().unwrap();
        *r.in_flight.get_mut(&self.flow).unwrap() -= 1;
    }
}

impl Recorder {
    pub fn new(clock: FakeClock) -> Self {
        Recorder {
            clock,
            records: Arc::default(),
        }
    }

    /// A job that records its runs and behaves as `behaviour` says.
    pub fn job(&self, behaviour: Behaviour) -> impl Job<()> + use<> {
        let recorder = self.clone();
        move |fire: Fire| {
            let recorder = recorder.clone();
            async move { recorder.run(fire, behaviour).await }
        }
    }

    async fn run(&self, fire: Fire, behaviour: Behaviour) -> CanoResult<()> {
        let flow = fire.id().flow().to_string();
        let (index, attempt) = {
            let mut r = self.records.lock().unwrap();
            r.runs.push(Run {
                fire: fire.id().clone(),
                started: self.clock.now(),
                ended: None,
            });
            let n = {
                let n = r.in_flight.entry(flow.clone()).or_default();
                *n += 1;
                *n
            };
            let max = r.max_in_flight.entry(flow.clone()).or_default();
            *max = (*max).max(n);
            let attempt = {
                let attempt = r.attempts.entry(flow.clone()).or_default();
                *attempt += 1;
                *attempt
            };
            (r.runs.len() - 1, attempt)
        };
        let _guard = InFlight {
            records: self.records.clone(),
            flow,
        };
        if !behaviour.duration.is_zero() {
            let sleep = self
                .clock
                .sleep_until(self.clock.now() + behaviour.duration);
            if behaviour.honour_stop {
                let stopped = select(
                    Box::pin(fire.stopping().cancelled()),
                    Box::pin(fire.cancellation().cancelled()),
                );
                match select(Box::pin(sleep), stopped).await {
                    Either::Left(_) => {}
                    Either::Right(_) => {
                        self.records.lock().unwrap().runs[index].ended = Some(self.clock.now());
                        return Err(CanoError::cancelled("stopping"));
                    }
                }
            } else {
                sleep.await;
            }
        }
        self.records.lock().unwrap().runs[index].ended = Some(self.clock.now());
        if attempt <= behaviour.fail_until {
            if behaviour.panic {
                panic!("job panicked on purpose");
            }
            return Err(CanoError::task_execution("Test failure"));
        }
        Ok(())
    }

    pub fn runs(&self) -> Vec<Run> {
        self.records.lock().unwrap().runs.clone()
    }

    pub fn runs_of(&self, flow: &str) -> Vec<Run> {
        self.runs()
            .into_iter()
            .filter(|r| r.fire.flow() == flow)
            .collect()
    }

    pub fn count(&self, flow: &str) -> usize {
        self.runs_of(flow).len()
    }

    /// Start times of `flow`'s runs, in seconds since the clock's origin.
    pub fn start_secs(&self, flow: &str) -> Vec<f64> {
        self.runs_of(flow)
            .iter()
            .map(|r| r.started.as_micros() as f64 / 1e6)
            .collect()
    }

    pub fn max_in_flight(&self, flow: &str) -> u32 {
        self.records
            .lock()
            .unwrap()
            .max_in_flight
            .get(flow)
            .copied()
            .unwrap_or(0)
    }

    pub fn in_flight(&self, flow: &str) -> u32 {
        self.records
            .lock()
            .unwrap()
            .in_flight
            .get(flow)
            .copied()
            .unwrap_or(0)
    }
}

/// Starts `scheduler` on `sim`.
pub fn start<S: Clone + Send + Sync + 'static>(
    sim: &Simulation,
    scheduler: Scheduler<S>,
) -> RunningScheduler {
    sim.block_on(scheduler.start(sim.clock(), sim.spawner()))
        .expect("start")
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Polls `future` once from inside an async context.
pub async fn poll_once<F: std::future::Future + Unpin>(
    future: &mut F,
) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx)))
        .await
}

/// A job that does nothing per run but logs its setup and teardown, failing either on demand.
pub struct Lifecycle {
    pub name: &'static str,
    pub log: Arc<Mutex<Vec<String>>>,
    pub setup_error: Option<CanoError>,
    pub teardown_error: Option<CanoError>,
}

impl Lifecycle {
    pub fn new(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Self {
        Lifecycle {
            name,
            log: log.clone(),
            setup_error: None,
            teardown_error: None,
        }
    }

    fn step(&self, what: &str, error: &Option<CanoError>) -> BoxFuture<'_, CanoResult<()>> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{what} {}", self.name));
        let result = error.clone().map_or(Ok(()), Err);
        Box::pin(async move { result })
    }
}

impl Job<()> for Lifecycle {
    fn run<'a>(&'a self, _: (), _: Fire) -> BoxFuture<'a, CanoResult<()>> {
        Box::pin(async { Ok(()) })
    }
    fn setup(&self) -> BoxFuture<'_, CanoResult<()>> {
        self.step("setup", &self.setup_error)
    }
    fn teardown(&self) -> BoxFuture<'_, CanoResult<()>> {
        self.step("teardown", &self.teardown_error)
    }
}
