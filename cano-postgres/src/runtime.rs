//! [`IoRuntime`]: a small tokio runtime on its own thread, for programs not on tokio.

use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// A one-thread tokio runtime that drives cano-postgres' connections, for programs that run
/// on another executor (smol, async-std, embassy on a host, plain threads).
///
/// `tokio-postgres` needs a tokio runtime for its socket and for the reconnect timer, but
/// only there: the [`PgStore`](crate::PgStore)'s own futures talk to the connection through
/// channels, so they can be awaited on any executor. Start one `IoRuntime` per process, keep
/// it alive as long as the stores, and connect with
/// [`PgStore::connect_on`](crate::PgStore::connect_on):
///
/// ```no_run
/// use cano_postgres::{IoRuntime, PgConfig, PgStore};
///
/// let io = IoRuntime::start()?;
/// let config = PgConfig::new("postgres://cano@localhost/cano")?;
/// // On smol: smol::block_on(...), or .await inside a smol task.
/// let store = futures::executor::block_on(PgStore::connect_on(io.handle(), config))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping it stops the runtime: the connections it drove close, and the stores answer
/// [`Unavailable`](cano_core::persist::PersistError::Unavailable) from then on.
#[derive(Debug)]
pub struct IoRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl IoRuntime {
    /// Starts the runtime on a thread named `cano-postgres-io`.
    ///
    /// # Errors
    ///
    /// The operating system's error when the runtime or its thread cannot be created.
    pub fn start() -> std::io::Result<IoRuntime> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cano-postgres-io".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(IoRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The runtime's handle, for [`PgStore::connect_on`](crate::PgStore::connect_on).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
