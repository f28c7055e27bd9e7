//! Resources, MemoryStore and observers (cano 0.12 §2.6–2.8, checklist item 6).

mod workflow_support;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use cano_core::testing::Simulation;
use cano_core::{
    CanoError, HealthStatus, MemoryStore, Resources, StoreError, Task, TaskConfig, TaskResult,
    Workflow,
};
use workflow_support::{Job, Probe, Recorder, St, run};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    Simulation::new().block_on(f)
}

#[test]
fn setup_is_fifo_and_teardown_lifo() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let res: Resources<&str> = ["a", "b", "c"]
        .into_iter()
        .try_fold(Resources::new(), |r, name| {
            r.insert(name, Probe::new(name, &log))
        })
        .unwrap();
    block_on(res.setup_all()).unwrap();
    assert!(block_on(res.teardown_all()).is_empty());
    assert_eq!(
        *log.lock().unwrap(),
        [
            "setup a",
            "setup b",
            "setup c",
            "teardown c",
            "teardown b",
            "teardown a"
        ]
    );
}

#[test]
fn a_failed_setup_tears_down_what_was_set_up_in_reverse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut c = Probe::new("c", &log);
    c.setup_fails = true;
    let res: Resources<&str> = Resources::new()
        .insert("a", Probe::new("a", &log))
        .unwrap()
        .insert("b", Probe::new("b", &log))
        .unwrap()
        .insert("c", c)
        .unwrap()
        .insert("d", Probe::new("d", &log))
        .unwrap();
    let err = block_on(res.setup_all()).unwrap_err();
    assert_eq!(err.message(), "c setup failed");
    assert_eq!(
        *log.lock().unwrap(),
        ["setup a", "setup b", "setup c", "teardown b", "teardown a"]
    );
    assert_eq!(res.holders(), 0);
}

#[test]
fn a_rollback_that_fails_too_reports_both_errors() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut a = Probe::new("a", &log);
    a.teardown_fails = true;
    let mut b = Probe::new("b", &log);
    b.setup_fails = true;
    let res: Resources<&str> = Resources::new()
        .insert("a", a)
        .unwrap()
        .insert("b", b)
        .unwrap();
    let err = block_on(res.setup_all()).unwrap_err();
    let CanoError::CompensationFailed { errors } = &err else {
        panic!("{err}")
    };
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].message(), "b setup failed");
    assert_eq!(errors[1].message(), "a teardown failed");
}

#[test]
fn teardown_continues_past_failures_and_reports_each() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut a = Probe::new("a", &log);
    a.teardown_fails = true;
    let mut c = Probe::new("c", &log);
    c.teardown_fails = true;
    let res: Resources<&str> = Resources::new()
        .insert("a", a)
        .unwrap()
        .insert("b", Probe::new("b", &log))
        .unwrap()
        .insert("c", c)
        .unwrap();
    block_on(res.setup_all()).unwrap();
    let errors = block_on(res.teardown_all());
    let messages: Vec<_> = errors.iter().map(|e| e.message().into_owned()).collect();
    assert_eq!(messages, ["c teardown failed", "a teardown failed"]);
    assert_eq!(
        log.lock().unwrap()[3..],
        ["teardown c", "teardown b", "teardown a"]
    );
}

#[test]
fn teardown_without_setup_is_an_error_not_a_double_teardown() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let res: Resources<&str> = Resources::new().insert("a", Probe::new("a", &log)).unwrap();
    let errors = block_on(res.teardown_all());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].category(), "configuration");
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn holds_are_counted() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let res: Resources<&str> = Resources::new().insert("a", Probe::new("a", &log)).unwrap();
    block_on(res.setup_all()).unwrap();
    block_on(res.setup_all()).unwrap();
    assert_eq!(res.holders(), 2);
    assert!(block_on(res.teardown_all()).is_empty());
    assert_eq!(*log.lock().unwrap(), ["setup a"]);
    assert!(block_on(res.teardown_all()).is_empty());
    assert_eq!(*log.lock().unwrap(), ["setup a", "teardown a"]);
}

#[test]
fn duplicate_keys_are_an_error_not_a_panic() {
    let res: Resources = Resources::new().insert("db", MemoryStore::new()).unwrap();
    let err = res.insert("db", MemoryStore::new()).unwrap_err();
    assert_eq!(err.category(), "resource_duplicate_key");
}

#[test]
fn get_checks_keys_and_types() {
    let res: Resources = Resources::new()
        .insert("store", MemoryStore::new())
        .unwrap();
    assert!(res.get::<MemoryStore, _>("store").is_ok());
    assert!(res.get_ref::<MemoryStore, _>("store").is_ok());
    assert_eq!(
        res.get::<MemoryStore, _>("nope").unwrap_err().category(),
        "resource_not_found"
    );
    let err = res
        .get::<cano_core::CircuitBreaker, _>("store")
        .unwrap_err();
    assert_eq!(err.category(), "resource_type_mismatch");
    assert!(err.message().contains("MemoryStore"), "{err}");
    assert_eq!(res.len(), 1);
}

#[test]
fn enum_keys_work_too() {
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    enum Key {
        Store,
    }
    let res: Resources<Key> = Resources::new()
        .insert(Key::Store, MemoryStore::new())
        .unwrap();
    assert!(res.get::<MemoryStore, _>(&Key::Store).is_ok());
}

#[test]
fn health_is_reported_per_resource_and_aggregated_as_the_worst() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut slow = Probe::new("slow", &log);
    slow.health = HealthStatus::Degraded(Cow::Borrowed("p99 high"));
    let mut down = Probe::new("down", &log);
    down.health = HealthStatus::Unhealthy(Cow::Borrowed("refused"));
    let res: Resources<&str> = Resources::new()
        .insert("ok", Probe::new("ok", &log))
        .unwrap()
        .insert("slow", slow)
        .unwrap()
        .insert("down", down)
        .unwrap();
    let each = block_on(res.check_all_health());
    assert_eq!(
        each.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["ok", "slow", "down"]
    );
    assert!(each[0].1.is_healthy());
    assert_eq!(
        block_on(res.aggregate_health()),
        HealthStatus::Unhealthy(Cow::Borrowed("refused"))
    );
    assert_eq!(
        block_on(Resources::<&str>::new().aggregate_health()),
        HealthStatus::Healthy
    );
}

#[test]
fn memory_store_operations() {
    let store = MemoryStore::new();
    assert!(store.is_empty());
    store.put("a", 1u8).unwrap();
    store.put("a", 2u8).unwrap();
    assert_eq!(store.get::<u8>("a"), Ok(2));
    assert_eq!(*store.get_shared::<u8>("a").unwrap(), 2);
    assert!(matches!(
        store.get::<u8>("b"),
        Err(StoreError::KeyNotFound(_))
    ));
    assert!(matches!(
        store.get::<u16>("a"),
        Err(StoreError::TypeMismatch(_))
    ));
    assert_eq!(
        store.get::<u8>("b").unwrap_err().to_string(),
        "Key 'b' not found in store"
    );
    assert!(matches!(
        store.append("a", 3u8),
        Err(StoreError::AppendTypeMismatch(_))
    ));
    assert_eq!(
        store.get::<u8>("a"),
        Ok(2),
        "a failed append leaves the value alone"
    );
    store.append("list", 1u32).unwrap();
    store.append("list", 2u32).unwrap();
    assert_eq!(store.get::<Vec<u32>>("list"), Ok(vec![1, 2]));
    let mut keys: Vec<String> = store.keys().iter().map(|k| k.to_string()).collect();
    keys.sort();
    assert_eq!(keys, ["a", "list"]);
    assert!(store.contains_key("a"));
    store.remove("a").unwrap();
    store.remove("a").unwrap(); // missing is fine
    assert_eq!(store.len(), 1);
    let clone = store.clone();
    clone.clear();
    assert!(store.is_empty(), "clones share data");
    let err: CanoError = StoreError::KeyNotFound("k".into()).into();
    assert_eq!(err.category(), "store");
}

#[test]
fn concurrent_appends_lose_nothing() {
    let store = MemoryStore::new();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..250u32 {
                    store.append("n", t * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(store.get::<Vec<u32>>("n").unwrap().len(), 1000);
}

#[test]
fn observers_see_the_success_path_in_order() {
    let recorder = Arc::new(Recorder::default());
    let wf = Workflow::bare()
        .register(St::A, Job::ok(St::B).named("first"))
        .register(St::B, Job::ok(St::Done).named("second"))
        .add_exit_state(St::Done)
        .with_observer(recorder.clone());
    assert_eq!(run(&wf, St::A).0, Ok(St::Done));
    assert_eq!(
        recorder.events(),
        [
            "enter A",
            "start first",
            "success first",
            "enter B",
            "start second",
            "success second",
            "enter Done",
        ]
    );
}

#[test]
fn observers_see_retries_and_the_final_failure() {
    let recorder = Arc::new(Recorder::default());
    let job = Job::fail("down")
        .with_config(TaskConfig::new().with_fixed_retry(2, std::time::Duration::ZERO));
    let wf = Workflow::bare()
        .register(St::A, job)
        .add_exit_state(St::Done)
        .with_observer(recorder.clone())
        .with_observer(recorder.clone());
    assert!(run(&wf, St::A).0.is_err());
    let events = recorder.events();
    // Two observers, notified in order: every event twice in a row.
    let once: Vec<_> = events
        .chunks(2)
        .map(|pair| {
            assert_eq!(pair[0], pair[1]);
            pair[0].clone()
        })
        .collect();
    assert_eq!(
        once,
        [
            "enter A",
            "start job",
            "retry job #1",
            "retry job #2",
            "failure job: retry_exhausted"
        ]
    );
}

#[test]
fn the_default_task_name_is_the_type_name() {
    struct Named;
    impl Task<St> for Named {
        async fn run_bare(&self) -> Result<TaskResult<St>, CanoError> {
            Ok(TaskResult::Single(St::Done))
        }
    }
    let recorder = Arc::new(Recorder::default());
    let wf = Workflow::bare()
        .register(St::A, Named)
        .add_exit_state(St::Done)
        .with_observer(recorder.clone());
    run(&wf, St::A).0.unwrap();
    assert!(recorder.events()[1].starts_with("start ") && recorder.events()[1].ends_with("Named"));
}
