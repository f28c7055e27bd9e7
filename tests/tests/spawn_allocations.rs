//! How many allocations a spawn costs: `Spawner::spawn_future` hands the future to tokio as
//! it is, so a task is the runtime's one allocation (tokio, smol); through `spawn` it is boxed first, and every
//! scheduled run and spawned split branch paid for both (issue 15).
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cano_core::Spawner;
use cano_tokio::TokioSpawner;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts this thread's allocations (the current-thread runtime spawns on this thread).
struct Counting;

// A global allocator can only be written with `unsafe`; it forwards to `System` unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the counter may already be gone while the thread exits.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_of(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn a_future_spawned_on_tokio_is_one_allocation_not_two() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let spawner = TokioSpawner::current();
        // Warm up: the runtime's queues grow on their first tasks.
        for _ in 0..4 {
            spawner.spawn_future(async {}).unwrap();
            tokio::task::yield_now().await;
        }
        let payload = [7u8; 64];
        let unboxed = allocations_of(|| {
            spawner
                .spawn_future(async move {
                    std::hint::black_box(payload);
                })
                .unwrap()
        });
        tokio::task::yield_now().await;
        let boxed = allocations_of(|| {
            spawner
                .spawn(Box::pin(async move {
                    std::hint::black_box(payload);
                }))
                .unwrap()
        });
        tokio::task::yield_now().await;
        assert_eq!(unboxed, 1, "spawn_future: the task's own allocation only");
        assert_eq!(boxed, 2, "spawn: the box and the task");
    });
}

#[test]
fn a_future_spawned_on_smol_is_one_allocation_not_two() {
    let executor = std::sync::Arc::new(async_executor::Executor::new());
    let spawner = cano_smol::SmolSpawner::new(executor.clone());
    // Warm up: the executor's task table and queue grow on their first tasks.
    for _ in 0..4 {
        spawner.spawn_future(async {}).unwrap();
        while executor.try_tick() {}
    }
    let payload = [7u8; 64];
    let unboxed = allocations_of(|| {
        spawner
            .spawn_future(async move {
                std::hint::black_box(payload);
            })
            .unwrap()
    });
    while executor.try_tick() {}
    let boxed = allocations_of(|| {
        spawner
            .spawn(Box::pin(async move {
                std::hint::black_box(payload);
            }))
            .unwrap()
    });
    while executor.try_tick() {}
    assert_eq!(unboxed, 1, "spawn_future: the task's own allocation only");
    assert_eq!(boxed, 2, "spawn: the box and the task");
}
