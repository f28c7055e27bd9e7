//! Processing models beyond a plain [`Task`](crate::Task): router, poll, batch, timer and
//! stream tasks (cano 0.12's `RouterTask`, `PollTask`, `BatchTask` and cano 0.15's
//! `TimerTask`, `StreamTask`), each driven on the run's [`Clock`] so it behaves
//! the same on tokio, smol, embassy and the fake clock.
//!
//! A shape that sleeps (poll, batch retries, timer, stream windows) is registered through a
//! *runner* that holds the clock and is itself a [`Task`](crate::Task):
//! `workflow.register(State::Wait, PollRunner::new(MyPoll, clock.clone()))`. A router needs
//! no clock and has its own registration,
//! [`Workflow::register_router`](crate::Workflow::register_router), so the engine knows it
//! only decides (it writes no checkpoint row).
//!
//! Each shape has a `Dyn…` companion (boxed futures, object-safe) so shapes of different
//! types can be held together; `Box<dyn Dyn…>` and `Arc<dyn Dyn…>` implement the shape.

pub mod batch;
pub mod poll;
pub mod router;
pub mod stream;
pub mod timer;

use core::task::Poll;
use core::time::Duration;

use crate::runtime::Clock;

/// Gives the executor a turn: pending once, waking itself at once.
pub(crate) async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Sleeps `pause` on `clock`; a zero pause yields instead, so a loop of zero pauses still
/// lets timers, cancellation and other tasks run.
pub(crate) async fn pause<C: Clock>(clock: &C, pause: Duration) {
    if pause.is_zero() {
        yield_now().await;
    } else {
        clock.sleep_until(clock.now() + pause).await;
    }
}
