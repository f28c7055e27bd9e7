//! The recovery scan at `start()`: for every flow whose job keeps a durable log per run
//! ([`Job::recoverable`](super::Job::recoverable)), list the job's unfinished runs, let the
//! core decide ([`SchedulerCore::recover`]), and abandon the logs it hands back. The runs
//! it resumes start from the core's first polls ([`Action::Resume`](super::Action::Resume)),
//! as runs of their flows.

use super::core::{FlowMap, SchedulerCore};
use super::driver::FlowJob;
use crate::error::CanoResult;

/// Performs the scan for every flow of `core` (started already), in registration order.
///
/// # Errors
///
/// The first failing listing (a store's error): `start()` fails with it. A log that cannot
/// be abandoned is counted as failed instead.
pub(crate) async fn scan(core: &mut SchedulerCore, jobs: &FlowMap<FlowJob>) -> CanoResult<()> {
    for (flow, job) in jobs.iter() {
        let Some(recoverable) = job.recoverable() else {
            continue;
        };
        let unfinished = recoverable.unfinished_runs().await?;
        for run in core.recover(flow, &unfinished) {
            let finished = recoverable.abandon(&run).await.is_ok();
            core.recovery_abandoned(flow, finished);
        }
    }
    Ok(())
}
