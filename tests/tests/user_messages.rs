//! Error messages as a `cano_tokio` user reads them: they name the key and the types
//! involved, the way the user's code spells them (no `cano_core::`, `alloc::` or other
//! module paths), and a misconfigured task is reported at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use cano_tokio::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Store,
    Breaker,
}

#[test]
fn a_wrong_resource_key_is_named_in_the_error() {
    let resources: Resources = Resources::new()
        .insert("store", MemoryStore::new())
        .unwrap();
    let err = resources.get::<MemoryStore, _>("stroe").unwrap_err();
    assert_eq!(err.category(), "resource_not_found");
    assert_eq!(
        err.to_string(),
        r#"Resource not found: no resource under key "stroe" (requested type: MemoryStore)"#
    );
    let err = resources.get_ref::<MemoryStore, _>("").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Resource not found: no resource under key "" (requested type: MemoryStore)"#
    );
}

#[test]
fn a_wrong_resource_type_names_the_key_and_both_types() {
    let breaker = CircuitBreaker::new(CircuitPolicy::default()).unwrap();
    let resources: Resources<Key> = Resources::new()
        .insert(Key::Store, MemoryStore::new())
        .unwrap()
        .insert(Key::Breaker, breaker)
        .unwrap();
    let err = resources.get::<CircuitBreaker, _>(&Key::Store).unwrap_err();
    assert_eq!(err.category(), "resource_type_mismatch");
    assert_eq!(
        err.to_string(),
        "Resource type mismatch: the resource under key Store is of type MemoryStore, not \
         CircuitBreaker"
    );
    let err = resources
        .get_ref::<MemoryStore, _>(&Key::Breaker)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Resource type mismatch: the resource under key Breaker is of type CircuitBreaker, not \
         MemoryStore"
    );
}

#[test]
fn a_memory_store_type_mismatch_names_the_stored_and_the_requested_type() {
    let store = MemoryStore::new();
    store.put("count", 1u32).unwrap();
    store.put("names", vec![String::from("a")]).unwrap();
    assert_eq!(
        store.get::<String>("count").unwrap_err().to_string(),
        "Type mismatch: key 'count' holds a value of type u32, not String"
    );
    assert_eq!(
        store
            .get_shared::<Vec<u32>>("names")
            .unwrap_err()
            .to_string(),
        "Type mismatch: key 'names' holds a value of type Vec<String>, not Vec<u32>"
    );
    assert_eq!(
        store
            .append("count", String::from("x"))
            .unwrap_err()
            .to_string(),
        "Append type mismatch: key 'count' holds a value of type u32, not Vec<String>"
    );
    assert_eq!(
        store.get::<u32>("missing").unwrap_err().to_string(),
        "Key 'missing' not found in store"
    );
    // Through `?` in a task the same text arrives as a store error.
    let as_cano: CanoError = store.get::<String>("count").unwrap_err().into();
    assert_eq!(
        as_cano.to_string(),
        "Store error: Type mismatch: key 'count' holds a value of type u32, not String"
    );
}

/// The class: for any pair of types, the message names both as written in user code and
/// carries no module path.
#[test]
fn type_mismatch_messages_never_carry_module_paths() {
    fn check<Stored: Clone + Send + Sync + 'static, Requested: Clone + Send + Sync + 'static>(
        stored: Stored,
        stored_name: &str,
        requested_name: &str,
    ) {
        let store = MemoryStore::new();
        store.put("k", stored).unwrap();
        let Err(error) = store.get::<Requested>("k") else {
            panic!("{requested_name} read back as a {stored_name}");
        };
        let message = error.to_string();
        assert_eq!(
            message,
            format!(
                "Type mismatch: key 'k' holds a value of type {stored_name}, not {requested_name}"
            )
        );
        assert!(!message.contains("::"), "{message}");

        let resources: Resources = Resources::new().insert("k", MemoryStore::new()).unwrap();
        let message = resources
            .get::<CircuitBreaker, _>("k")
            .unwrap_err()
            .to_string();
        assert!(!message.contains("::"), "{message}");
    }
    check::<u32, String>(7, "u32", "String");
    check::<String, u32>(String::new(), "String", "u32");
    check::<Vec<String>, Vec<u8>>(Vec::new(), "Vec<String>", "Vec<u8>");
    check::<Option<Arc<str>>, Option<String>>(None, "Option<Arc<str>>", "Option<String>");
    check::<BTreeMap<String, Vec<u64>>, (u8, String)>(
        BTreeMap::new(),
        "BTreeMap<String, Vec<u64>>",
        "(u8, String)",
    );
    check::<MemoryStore, Arc<MemoryStore>>(MemoryStore::new(), "MemoryStore", "Arc<MemoryStore>");
    check::<Result<u8, CanoError>, [u8; 4]>(Ok(1), "Result<u8, CanoError>", "[u8; 4]");
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Start,
    Done,
}

struct Unfinished;
impl Task<Step> for Unfinished {}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_task_with_neither_run_nor_run_bare_fails_at_once_with_its_name() {
    let workflow = Workflow::bare()
        .register(Step::Start, Unfinished)
        .add_exit_state(Step::Done);
    let started = tokio::time::Instant::now();
    let err = workflow.orchestrate(Step::Start).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Configuration error: task Unfinished: neither `run` nor `run_bare` is implemented"
    );
    // The default config would retry 3 times with 100 ms, 200 ms, 400 ms pauses.
    assert_eq!(started.elapsed(), std::time::Duration::ZERO);
}
