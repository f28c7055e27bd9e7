//! The deterministic fleet simulation of the full scheduler core: three `SchedulerCore`s,
//! each on its own clocks (wall 2 s fast, exact, 2 s slow; one node suspended for eight
//! hours), share one `MemoryFireLedger` for a simulated month, through a synchronous driver
//! that performs the cores' actions exactly as the async driver does (`FleetAction::
//! perform_owned`, `fleet_done`, `finish`), answering each ledger call at once.
//!
//! Faults: one node loses acknowledgements of calls that went through, one has its
//! renewals held in flight (shortly, and once past its lease), one is partitioned from the
//! ledger for ten minutes a week, and the ledger restarts (two minutes down) every ten
//! days.
//!
//! Invariants, checked as the month runs and at its end:
//! * never two live claims for one fire: at no moment do two nodes (awake) run one fire;
//! * every fire of the month (but its last minutes) of the non-`Skip` flows runs to success
//!   at least once, and the ledger records it done;
//! * no fire at or below its flow's high-water mark runs: a run that is not a takeover
//!   starts only for a live claim this node holds with that fence, and such starts
//!   strictly increase per flow;
//! * no fire starts before its time by the store's clock;
//! * zombie writes are fenced: a run whose claim was taken over writes nothing (its
//!   writes, checked against the ledger's fence, are refused), and only a node that was
//!   suspended during its run ever tries;
//! * `Skip` keeps fleet-wide concurrency at most 1;
//! * a fixed-delay flow fires only on the live holder of its ownership lease, on one node
//!   at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use cano_core::Instant;
use cano_core::cron::Cron;
use cano_core::persist::{
    ClaimState, DynFireLedger, Faults, FireLedger, FireRecord, MemoryFireLedger, NodeId,
};
use cano_core::schedule::{
    IntervalMode, MissedFirePolicy, OverlapPolicy, Schedule, SchedulePolicy,
};
use cano_core::scheduler::{
    Action, FireId, FleetConfig, FleetReport, FlowIndex, RunId, RunOutcome, SchedulerCore,
};
use futures::executor::block_on;
use futures::future::BoxFuture;
use jiff::Timestamp;

const START: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z, µs
const SEC: i64 = 1_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// How often a node scans for expired claims (the default is 5 s; a longer scan keeps a
/// month of simulation quick, and takeovers still come within a lease and a scan).
const SCAN_EVERY: Duration = Duration::from_secs(15);

fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap()
}

/// The flows every node runs: (id, schedule, interval mode, overlap, run length).
struct FlowSpec {
    id: &'static str,
    schedule: Schedule,
    aligned: bool,
    overlap: OverlapPolicy,
    run: i64,
    /// Every fire must run (not for `Skip` flows whose runs overlap their fires).
    every_fire: bool,
    period: i64,
}

fn flows() -> Vec<FlowSpec> {
    vec![
        FlowSpec {
            id: "minutely",
            schedule: Schedule::Cron(Cron::parse("* * * * *").unwrap()),
            aligned: false,
            overlap: OverlapPolicy::Skip,
            run: 20 * SEC,
            every_fire: true,
            period: MIN,
        },
        FlowSpec {
            id: "aligned",
            schedule: Schedule::Every(Duration::from_secs(300)),
            aligned: true,
            overlap: OverlapPolicy::AllowConcurrent(2),
            run: 100 * SEC, // renewed many times per run
            every_fire: true,
            period: 5 * MIN,
        },
        FlowSpec {
            id: "poller",
            schedule: Schedule::Every(Duration::from_secs(120)),
            aligned: false, // fixed delay: fired by the holder of its ownership lease
            overlap: OverlapPolicy::Skip,
            run: 30 * SEC,
            every_fire: false,
            period: 0,
        },
        FlowSpec {
            id: "skip",
            schedule: Schedule::Cron(Cron::parse("* * * * *").unwrap()),
            aligned: false,
            overlap: OverlapPolicy::Skip,
            run: 90 * SEC, // longer than its period: Skip must hold fleet-wide
            every_fire: false,
            period: MIN,
        },
    ]
}

struct Run {
    run: RunId,
    flow: FlowIndex,
    fire: FireId,
    fence: cano_core::persist::Fence,
    /// Ends on the node's monotonic clock.
    ends: Instant,
    /// Whether the node was suspended while it ran.
    suspended_during: bool,
}

struct Call {
    ready_at: i64,
    future: BoxFuture<'static, FleetReport>,
    report: Option<FleetReport>,
}

struct Node {
    id: NodeId,
    core: SchedulerCore,
    ledger: Arc<dyn DynFireLedger>,
    faults: Faults,
    /// Wall clock minus true time (µs).
    skew: i64,
    /// Time spent suspended (the monotonic clock stood still).
    suspended_for: i64,
    suspended: Option<(i64, i64)>,
    runs: Vec<Run>,
    calls: Vec<Call>,
}

impl Node {
    fn mono(&self, t: i64) -> Instant {
        Instant::from_micros((t - START - self.suspended_for) as u64)
    }
    fn wall(&self, t: i64) -> Timestamp {
        ts(t + self.skew)
    }
    fn true_at(&self, mono: Instant) -> i64 {
        (mono.as_micros() as i64)
            .saturating_add(START + self.suspended_for)
            .min(i64::MAX / 2)
    }
    fn is_suspended(&self, t: i64) -> bool {
        self.suspended
            .is_some_and(|(from, to)| (from..to).contains(&t))
    }
    /// When this node next has something to do (true time).
    fn next_event(&self) -> i64 {
        let mut next = self.core.next_wake().map_or(i64::MAX, |w| self.true_at(w));
        for run in &self.runs {
            next = next.min(self.true_at(run.ends));
        }
        for call in &self.calls {
            if call.report.is_some() {
                next = next.min(call.ready_at);
            }
        }
        next
    }
}

#[derive(Default)]
struct Log {
    /// Fires run to success, by (flow, fire µs), with how often.
    succeeded: BTreeMap<(String, i64), u32>,
    /// The last fresh (non-takeover) start per flow.
    fresh: HashMap<String, i64>,
    zombie_refused: u64,
    takeovers: u64,
    starts: u64,
    cancels: u64,
    max_skip_concurrency: usize,
    poller_runs_seen: bool,
}

fn poll_ready(call: &mut Call) {
    if call.report.is_none() {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        if let Poll::Ready(report) = Pin::new(&mut call.future).poll(&mut cx) {
            call.report = Some(report);
        }
    }
}

/// The fenced side-effect store: a run's write of its fire is accepted only while its
/// fence is the fire's current one in the ledger.
fn write_effect(store: &MemoryFireLedger, fire: &FireId, fence: cano_core::persist::Fence) -> bool {
    match record(store, fire) {
        Some(r) => r.fence == fence,
        // A fixed-delay flow's run writes under its ownership lease.
        None => {
            let flow = store.flow_of(fire.flow());
            flow.fence == fence && flow.owner.is_some_and(|(_, until)| store.now() < until)
        }
    }
}

/// The ledger's record of `fire`, read past any injected fault (the test's own view).
fn record(store: &MemoryFireLedger, fire: &FireId) -> Option<FireRecord> {
    store.record_of(fire)
}

/// Steps `node` at true time `t`: answers that came back, runs that ended, then the core's
/// actions until it waits.
/// Ledger calls answer at once (the store applies them when made); a held renewal
/// answers when released.
fn step(node: &mut Node, t: i64, store: &MemoryFireLedger, specs: &[FlowSpec], log: &mut Log) {
    let (now, wall) = (node.mono(t), node.wall(t));
    let mut spins = 0;
    loop {
        let mut answered = false;
        for call in &mut node.calls {
            poll_ready(call);
        }
        let mut i = 0;
        while i < node.calls.len() {
            if node.calls[i].report.is_some() && node.calls[i].ready_at <= t {
                let mut call = node.calls.swap_remove(i);
                node.core.fleet_done(call.report.take().unwrap(), now, wall);
                answered = true;
            } else {
                i += 1;
            }
        }
        if !answered && spins > 0 {
            break;
        }
        poll_core(node, t, store, specs, log, &mut spins);
    }
    end_runs(node, now, wall, store, log);
}

fn poll_core(
    node: &mut Node,
    t: i64,
    store: &MemoryFireLedger,
    specs: &[FlowSpec],
    log: &mut Log,
    spins: &mut u32,
) {
    let (now, wall) = (node.mono(t), node.wall(t));
    loop {
        *spins += 1;
        assert!(*spins < 100_000, "{}: the core never waits", node.id);
        match node.core.poll(now, wall) {
            Action::Start(d) => {
                log.starts += 1;
                let spec = &specs[d.flow.get()];
                if spec.period == 0 {
                    // A fixed-delay flow: only the holder of its live ownership lease fires.
                    let flow = store.flow_of(spec.id);
                    let owner = flow.owner.clone().expect("an owned flow has an owner");
                    assert!(
                        owner.0 == node.id && store.now() < owner.1 && flow.fence == d.fence,
                        "{}: fired {} without owning it ({flow:?})",
                        node.id,
                        d.fire
                    );
                    node.runs.push(Run {
                        run: d.run,
                        flow: d.flow,
                        fire: d.fire,
                        fence: d.fence,
                        ends: now + Duration::from_micros(spec.run as u64),
                        suspended_during: false,
                    });
                    continue;
                }
                let record = record(store, &d.fire)
                    .unwrap_or_else(|| panic!("{}: started {} without a claim", node.id, d.fire));
                assert_eq!(
                    (record.owner.clone(), record.fence, record.state),
                    (node.id.clone(), d.fence, ClaimState::Claimed),
                    "{}: started {} without holding its claim",
                    node.id,
                    d.fire
                );
                assert!(
                    store.now() < record.expires,
                    "{}: started {} on a lapsed claim",
                    node.id,
                    d.fire
                );
                assert!(
                    store.now() >= d.fire.scheduled(),
                    "{}: started {} early by the store's clock ({})",
                    node.id,
                    d.fire,
                    store.now()
                );
                let at = d.fire.scheduled().as_microsecond();
                if d.takeover {
                    log.takeovers += 1;
                } else {
                    assert_eq!(record.takeovers, 0);
                    let last = log.fresh.entry(spec.id.to_owned()).or_insert(i64::MIN);
                    assert!(
                        at > *last,
                        "{}: fresh start of {} at or below an earlier one ({})",
                        node.id,
                        d.fire,
                        ts(*last)
                    );
                    *last = at;
                }
                node.runs.push(Run {
                    run: d.run,
                    flow: d.flow,
                    fire: d.fire,
                    fence: d.fence,
                    ends: now + Duration::from_micros(spec.run as u64),
                    suspended_during: false,
                });
            }
            Action::Abort(run) => {
                log.cancels += 1;
                let p = node.runs.iter().position(|r| r.run == run).unwrap();
                let run = node.runs.swap_remove(p);
                // A write the run had in flight lands now: refused if it was taken over.
                if !write_effect(store, &run.fire, run.fence) {
                    log.zombie_refused += 1;
                }
                node.core
                    .finish(run.run, now, wall, RunOutcome::Cancelled)
                    .unwrap();
            }
            Action::Fleet(action) => {
                let mut call = Call {
                    ready_at: t,
                    future: action.perform_owned(node.ledger.clone(), node.id.clone()),
                    report: None,
                };
                poll_ready(&mut call);
                node.calls.push(call);
            }
            Action::Save(_) => unreachable!("no schedule store in this simulation"),
            Action::WakeAt(w) if w <= now => {}
            _ => break,
        }
    }
}

/// Runs that ended by now: their effect, then their outcome.
fn end_runs(
    node: &mut Node,
    now: Instant,
    wall: Timestamp,
    store: &MemoryFireLedger,
    log: &mut Log,
) {
    let mut i = 0;
    while i < node.runs.len() {
        if node.runs[i].ends <= now {
            let run = node.runs.swap_remove(i);
            if write_effect(store, &run.fire, run.fence) {
                *log.succeeded
                    .entry((
                        run.fire.flow().to_owned(),
                        run.fire.scheduled().as_microsecond(),
                    ))
                    .or_default() += 1;
            } else {
                assert!(
                    run.suspended_during,
                    "{}: {} reached its end without being cancelled, but its claim was taken over",
                    node.id, run.fire
                );
                log.zombie_refused += 1;
            }
            node.core.finish(run.run, now, wall, Ok(())).unwrap();
            let _ = run.flow;
        } else {
            i += 1;
        }
    }
}

fn make_node(name: &str, skew: i64, store: &MemoryFireLedger, specs: &[FlowSpec]) -> Node {
    let mut core = SchedulerCore::new();
    for spec in specs {
        let flow = core.add_flow(spec.id, spec.schedule.clone()).unwrap();
        let mut policy = SchedulePolicy {
            overlap: spec.overlap,
            missed: MissedFirePolicy::RunAll { max: 10 },
            ..SchedulePolicy::default()
        };
        if spec.aligned {
            policy.interval_mode = IntervalMode::EpochAligned {
                phase: Duration::ZERO,
            };
        }
        core.set_policy(flow, policy).unwrap();
    }
    let mut config = FleetConfig::default();
    config.scan_every = SCAN_EVERY;
    core.join_fleet(NodeId::new(name), config).unwrap();
    let view = store.view();
    let faults = view.faults().clone();
    Node {
        id: NodeId::new(name),
        core,
        ledger: Arc::new(view),
        faults,
        skew,
        suspended_for: 0,
        suspended: None,
        runs: Vec::new(),
        calls: Vec::new(),
    }
}

/// Fault switches, in true time: (at, what).
#[derive(Debug, Clone, Copy)]
enum Fault {
    LoseAck(usize),
    Hold(usize, bool),
    Partition(usize, bool),
    Restart,
}

fn schedule_faults(days: i64) -> Vec<(i64, Fault)> {
    let mut faults = Vec::new();
    let mut t = START + 10 * MIN;
    while t < START + days * DAY {
        faults.push((t, Fault::LoseAck(1)));
        t += 97 * MIN + 13 * SEC;
    }
    let mut t = START + HOUR + 7 * SEC;
    while t < START + days * DAY {
        // Short holds (trust survives) most of the time, one long hold a day (it does not).
        faults.push((t, Fault::Hold(2, true)));
        let long = (t - START) / (6 * HOUR) % 4 == 0;
        faults.push((
            t + if long { 45 * SEC } else { 4 * SEC },
            Fault::Hold(2, false),
        ));
        t += 6 * HOUR + 11 * SEC;
    }
    let mut t = START + 2 * DAY + 3 * HOUR + 17 * SEC;
    while t < START + days * DAY {
        faults.push((t, Fault::Partition(1, true)));
        faults.push((t + 10 * MIN, Fault::Partition(1, false)));
        t += 7 * DAY;
    }
    let mut t = START + 4 * DAY + 5 * HOUR + 29 * SEC;
    while t < START + days * DAY {
        faults.push((t, Fault::Restart));
        t += 10 * DAY;
    }
    faults.sort_by_key(|(t, _)| *t);
    faults
}

struct Outcome {
    log: Log,
    missing: Vec<(String, i64)>,
}

fn simulate(days: i64) -> Outcome {
    let clock = Arc::new(AtomicI64::new(START));
    let store = {
        let clock = clock.clone();
        MemoryFireLedger::new(move || ts(clock.load(Ordering::SeqCst)))
    };
    let specs = flows();
    let mut nodes = vec![
        make_node("fast", 2 * SEC, &store, &specs),
        make_node("exact", 0, &store, &specs),
        make_node("slow", -2 * SEC, &store, &specs),
    ];
    let end = START + days * DAY;
    let faults = schedule_faults(days);
    let mut next_fault = 0;
    let mut log = Log::default();
    for node in &mut nodes {
        let (now, wall) = (node.mono(START), node.wall(START));
        node.core.start(now, wall);
    }
    // Node "fast" is suspended for 8 hours, from the first moment on day 12 it runs a
    // fire of "aligned" (so a run is frozen mid-way and its claim taken over).
    let suspend_after = START + 12 * DAY;
    // What the ledger recorded done, gathered before each retention pass forgets it (a
    // deployment keeps done claims for a while; half an hour here keeps the ledger small).
    let mut done: BTreeSet<(String, i64)> = BTreeSet::new();
    let gather_done = |store: &MemoryFireLedger, done: &mut BTreeSet<(String, i64)>| {
        for r in store.records() {
            if r.state == ClaimState::Done(cano_core::persist::FireOutcome::Succeeded) {
                done.insert((
                    r.fire.flow().to_owned(),
                    r.fire.scheduled().as_microsecond(),
                ));
            }
        }
    };
    let mut retain_at = START + 10 * MIN;
    let mut t = START;
    while t < end {
        if t >= retain_at {
            gather_done(&store, &mut done);
            block_on(store.retain(ts(t - 30 * MIN))).unwrap();
            retain_at += 10 * MIN;
        }
        for node in &mut nodes {
            if node.suspended.is_some_and(|(_, to)| t >= to) {
                node.suspended = None;
            }
        }
        if nodes[0].suspended.is_none()
            && nodes[0].suspended_for == 0
            && t >= suspend_after
            && nodes[0].runs.iter().any(|r| r.fire.flow() == "aligned")
        {
            nodes[0].suspended = Some((t, t + 8 * HOUR));
            for run in &mut nodes[0].runs {
                run.suspended_during = true;
            }
        }
        while next_fault < faults.len() && faults[next_fault].0 <= t {
            match faults[next_fault].1 {
                Fault::LoseAck(n) => nodes[n].faults.lose_acks(1),
                Fault::Hold(n, on) => nodes[n].faults.hold_renewals(on),
                Fault::Partition(n, on) => nodes[n].faults.partition(on),
                Fault::Restart => store.restart(Duration::from_secs(120)),
            }
            next_fault += 1;
        }
        for node in &mut nodes {
            if node.is_suspended(t) {
                continue;
            }
            if node.next_event() <= t || next_fault_just_passed(&faults, next_fault, t) {
                step(node, t, &store, &specs, &mut log);
            }
        }
        // Never two live claims, and Skip at most one run, fleet-wide (awake nodes).
        let mut live: Vec<(&FireId, &NodeId)> = Vec::new();
        let mut skip = 0;
        let mut pollers = 0;
        for node in &nodes {
            if node.is_suspended(t) {
                continue;
            }
            // A run frozen by a suspend is a zombie once its claim is taken over: what it
            // may still do is checked by the fenced writes instead.
            for run in node.runs.iter().filter(|r| !r.suspended_during) {
                if let Some((_, other)) = live.iter().find(|(f, _)| **f == run.fire) {
                    panic!(
                        "{} runs on {} and {} at once ({})",
                        run.fire,
                        other,
                        node.id,
                        ts(t)
                    );
                }
                live.push((&run.fire, &node.id));
                if run.fire.flow() == "skip" {
                    skip += 1;
                }
                if run.fire.flow() == "poller" {
                    pollers += 1;
                }
            }
        }
        log.max_skip_concurrency = log.max_skip_concurrency.max(skip);
        assert!(skip <= 1, "Skip ran {skip} runs at once at {}", ts(t));
        assert!(
            pollers <= 1,
            "the owned flow ran on {pollers} nodes at {}",
            ts(t)
        );
        log.poller_runs_seen |= pollers > 0;
        // The next moment anything happens.
        let mut next = end;
        for node in &mut nodes {
            if let Some((from, to)) = node.suspended
                && t >= from
                && t < to
            {
                // Suspended: its monotonic clock stands still.
                next = next.min(to);
                continue;
            }
            next = next.min(node.next_event());
        }
        if next_fault < faults.len() {
            next = next.min(faults[next_fault].0);
        }
        next = next.min(retain_at);
        if nodes[0].suspended.is_none() && nodes[0].suspended_for == 0 && t >= suspend_after {
            next = next.min(t + SEC);
        }
        let next = next.max(t + 1);
        for node in &mut nodes {
            if let Some((from, to)) = node.suspended
                && t >= from
                && t < to
            {
                node.suspended_for += next.min(to) - t;
            }
        }
        t = next;
        clock.store(t, Ordering::SeqCst);
    }
    // Every fire of the month (but the last quarter hour, still in flight) ran to success.
    gather_done(&store, &mut done);
    let mut missing = Vec::new();
    for spec in specs.iter().filter(|s| s.every_fire) {
        let mut fire = START + spec.period;
        while fire < end - 15 * MIN {
            let key = (spec.id.to_owned(), fire);
            if !log.succeeded.contains_key(&key) || !done.contains(&key) {
                missing.push(key);
            }
            fire += spec.period;
        }
    }
    Outcome { log, missing }
}

fn next_fault_just_passed(faults: &[(i64, Fault)], next_fault: usize, t: i64) -> bool {
    next_fault > 0 && faults[next_fault - 1].0 == t
}

#[test]
fn three_nodes_for_two_days() {
    let Outcome { log, missing } = simulate(2);
    assert!(missing.is_empty(), "{:?}", &missing[..missing.len().min(5)]);
    eprintln!("{} starts", log.starts);
}

#[test]
fn three_nodes_for_a_month_with_faults_keep_every_fleet_invariant() {
    let Outcome { log, missing } = simulate(31);
    assert!(
        missing.is_empty(),
        "{} fires never ran to success, first: {:?}",
        missing.len(),
        missing
            .iter()
            .take(5)
            .map(|(f, t)| format!("{f}@{}", ts(*t)))
            .collect::<Vec<_>>()
    );
    // The faults were felt: takeovers happened, a zombie's writes were refused, Skip had
    // fires to skip.
    assert!(log.takeovers > 0, "no takeover in a month of faults");
    assert!(log.zombie_refused > 0, "no zombie write was attempted");
    assert_eq!(log.max_skip_concurrency, 1);
    assert!(log.poller_runs_seen, "the owned flow never ran");
    eprintln!(
        "starts {}, takeovers {}, cancels {}, zombie writes refused {}",
        log.starts, log.takeovers, log.cancels, log.zombie_refused
    );
}
