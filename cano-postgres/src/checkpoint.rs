//! [`CheckpointStore`] for [`PgStore`]: one row per unfinished run, one per checkpoint row.
//!
//! A finished run's rows are deleted with it (no tombstone), so [`CheckpointStore::load`] of
//! a finished run is [`RunLog::Unknown`]; its fence can never write again, because fences
//! come from one sequence and a restarted run gets a new one.

use std::borrow::Cow;

use cano_core::checkpoint::{
    CheckpointError, CheckpointRow, CheckpointStore, Fence, RunId, RunLog, RunOutcome, decode_row,
    encode_row,
};
use cano_core::persist::PersistError;

use crate::PgStore;
use crate::conn::{Live, get, query_one};

type CheckpointResult<T> = Result<T, CheckpointError>;

fn message(m: &str) -> Cow<'static, str> {
    Cow::Owned(m.to_owned())
}

fn from_persist(e: PersistError) -> CheckpointError {
    match e {
        PersistError::Unavailable(m) => CheckpointError::Unavailable(message(&m)),
        PersistError::Corrupt(m) => CheckpointError::Corrupt(message(&m)),
        other => CheckpointError::Backend(Cow::Owned(other.to_string())),
    }
}

fn sequence(value: u64) -> CheckpointResult<i64> {
    i64::try_from(value)
        .map_err(|_| CheckpointError::Backend(message("a sequence beyond what the store keeps")))
}

fn fence_param(f: Fence) -> CheckpointResult<i64> {
    i64::try_from(f.0)
        .map_err(|_| CheckpointError::Backend(message("a fence beyond what the store keeps")))
}

fn fence_of(value: i64) -> CheckpointResult<Fence> {
    u64::try_from(value)
        .map(Fence)
        .map_err(|_| CheckpointError::Corrupt(message("a negative fence")))
}

impl PgStore {
    fn checkpoint_live(&self) -> CheckpointResult<std::sync::Arc<Live>> {
        self.link.live().map_err(from_persist)
    }
}

impl CheckpointStore for PgStore {
    async fn start(&self, run: &RunId, first: &CheckpointRow) -> CheckpointResult<Fence> {
        let bytes = encode_row(first);
        let live = self.checkpoint_live()?;
        let row = query_one(
            &live,
            &live.sql.checkpoint_start,
            &[&run.as_str(), &sequence(first.sequence)?, &bytes],
        )
        .await
        .map_err(from_persist)?;
        match get::<i16>(&row, "o_status").map_err(from_persist)? {
            0 => fence_of(get(&row, "o_fence").map_err(from_persist)?),
            _ if first.sequence != 0 => Err(CheckpointError::Conflict {
                run: run.clone(),
                detail: message("a log starts at sequence 0"),
            }),
            _ => Err(CheckpointError::Conflict {
                run: run.clone(),
                detail: message("the run has an unfinished log"),
            }),
        }
    }

    async fn resume(&self, run: &RunId) -> CheckpointResult<Fence> {
        let live = self.checkpoint_live()?;
        let row = query_one(&live, &live.sql.checkpoint_resume, &[&run.as_str()])
            .await
            .map_err(from_persist)?;
        match get::<i16>(&row, "o_status").map_err(from_persist)? {
            0 => fence_of(get(&row, "o_fence").map_err(from_persist)?),
            _ => Err(CheckpointError::NotFound { run: run.clone() }),
        }
    }

    async fn append(&self, run: &RunId, fence: Fence, row: &CheckpointRow) -> CheckpointResult<()> {
        let bytes = encode_row(row);
        let live = self.checkpoint_live()?;
        let answer = query_one(
            &live,
            &live.sql.checkpoint_append,
            &[
                &run.as_str(),
                &fence_param(fence)?,
                &sequence(row.sequence)?,
                &bytes,
            ],
        )
        .await
        .map_err(from_persist)?;
        match get::<i16>(&answer, "o_status").map_err(from_persist)? {
            0 => Ok(()),
            1 => {
                let last: i64 = get(&answer, "o_last").map_err(from_persist)?;
                Err(CheckpointError::Conflict {
                    run: run.clone(),
                    detail: Cow::Owned(format!(
                        "sequence {} after {last}: appends go at last + 1",
                        row.sequence
                    )),
                })
            }
            _ => Err(CheckpointError::Fenced {
                run: run.clone(),
                presented: fence,
                current: get::<Option<i64>>(&answer, "o_current")
                    .map_err(from_persist)?
                    .map(fence_of)
                    .transpose()?,
            }),
        }
    }

    async fn load(&self, run: &RunId) -> CheckpointResult<RunLog> {
        let live = self.checkpoint_live()?;
        let rows = live
            .client
            .query(&live.sql.checkpoint_load, &[&run.as_str()])
            .await
            .map_err(|e| from_persist(crate::error::from_pg(e)))?;
        if rows.is_empty() {
            return Ok(RunLog::Unknown);
        }
        let mut log = Vec::with_capacity(rows.len());
        for row in &rows {
            let bytes: Vec<u8> = get(row, "row_bytes").map_err(from_persist)?;
            log.push(decode_row(&bytes)?);
        }
        Ok(RunLog::Unfinished(log))
    }

    async fn finish(
        &self,
        run: &RunId,
        fence: Fence,
        _outcome: RunOutcome,
    ) -> CheckpointResult<()> {
        let live = self.checkpoint_live()?;
        let answer = query_one(
            &live,
            &live.sql.checkpoint_finish,
            &[&run.as_str(), &fence_param(fence)?],
        )
        .await
        .map_err(from_persist)?;
        match get::<i16>(&answer, "o_status").map_err(from_persist)? {
            0 => Ok(()),
            _ => Err(CheckpointError::Fenced {
                run: run.clone(),
                presented: fence,
                current: get::<Option<i64>>(&answer, "o_current")
                    .map_err(from_persist)?
                    .map(fence_of)
                    .transpose()?,
            }),
        }
    }

    async fn list_unfinished(&self) -> CheckpointResult<Vec<RunId>> {
        let live = self.checkpoint_live()?;
        let rows = live
            .client
            .query(&live.sql.checkpoint_list, &[])
            .await
            .map_err(|e| from_persist(crate::error::from_pg(e)))?;
        rows.iter()
            .map(|row| Ok(RunId::new(get::<String>(row, "run").map_err(from_persist)?)))
            .collect()
    }
}
