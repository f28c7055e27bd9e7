//! Paths that moved when the workflow and scheduler wings got their folders keep working
//! through re-exports: each is named here at its old place, and the type at the old place is
//! the type at the new one.

use core::any::TypeId;

fn same<A: 'static, B: 'static>() -> bool {
    TypeId::of::<A>() == TypeId::of::<B>()
}

#[test]
fn moved_paths_name_the_same_items() {
    assert!(same::<
        cano_core::backoff::BackoffPolicy,
        cano_core::scheduler::backoff::BackoffPolicy,
    >());
    assert!(same::<
        cano_core::flow::Status,
        cano_core::scheduler::flow::Status,
    >());
    assert!(same::<
        cano_core::schedule::Schedule,
        cano_core::scheduler::schedule::Schedule,
    >());
    assert!(same::<
        cano_core::join::JoinStrategy,
        cano_core::workflow::join::JoinStrategy,
    >());
    assert!(same::<
        cano_core::retry::RetryMode,
        cano_core::workflow::retry::RetryMode,
    >());
    assert!(same::<
        cano_core::retry::TaskConfig,
        cano_core::workflow::retry::TaskConfig,
    >());
    assert!(same::<
        cano_core::task::TaskResult<()>,
        cano_core::workflow::task::TaskResult<()>,
    >());
    assert!(same::<
        cano_core::observer::TaskId<'static>,
        cano_core::workflow::observer::TaskId<'static>,
    >());
    assert!(same::<
        cano_core::scheduler::DynClock,
        cano_core::runtime::DynClock,
    >());
    assert!(same::<
        cano_core::workflow::NoSpawner,
        cano_core::runtime::NoSpawner,
    >());
    assert!(same::<cano_core::NoSpawner, cano_core::runtime::NoSpawner>());
}
