//! cano's demo on tokio.
//!
//! For now this shows the runtime contract the scheduler is built on: a monotonic clock and a
//! wall clock read separately, sleeps to deadlines, and concurrent spawned work. The
//! scheduler demo (interval, cron and manual flows) replaces it as the scheduler lands.
//!
//! Run with `cargo run -p cano-tokio --example quickstart`.

use std::time::Duration;

use cano_tokio::{Clock, Spawner, TokioClock, TokioSpawner};
use futures::StreamExt;
use futures::channel::mpsc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let clock = TokioClock::new();
    let spawner = TokioSpawner::current();
    println!(
        "wall clock: {}  monotonic: {:?}",
        clock.wall_now(),
        clock.now()
    );

    let (tx, mut rx) = mpsc::unbounded();
    for (name, every_ms, times) in [("fast", 100u64, 5u32), ("slow", 250, 2)] {
        let (clock, tx) = (clock, tx.clone());
        spawner
            .spawn(Box::pin(async move {
                let mut deadline = clock.now();
                for n in 1..=times {
                    deadline += Duration::from_millis(every_ms);
                    clock.sleep_until(deadline).await;
                    let _ = tx.unbounded_send(format!(
                        "{:>8.3}s  {name} tick {n}/{times} (due {:?})",
                        clock.now().as_micros() as f64 / 1e6,
                        deadline
                    ));
                }
            }))
            .expect("spawn on a running tokio runtime");
    }
    drop(tx);
    while let Some(line) = rx.next().await {
        println!("{line}");
    }
    println!("done at {:?}", clock.now());
}
