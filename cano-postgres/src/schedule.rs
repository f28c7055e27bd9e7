//! [`ScheduleStore`] for [`PgStore`]: one row per flow in `cano_flow_records`.

use std::sync::Arc;

use cano_core::persist::{
    Fence, FlowRecord, PersistError, PersistResult, ScheduleHash, ScheduleStore, StoredFlow,
    check_flow_id, check_record, from_micros,
};

use crate::PgStore;
use crate::conn::{get, query_one};

fn fence_param(f: Fence) -> PersistResult<i64> {
    i64::try_from(f.0)
        .map_err(|_| PersistError::invalid(format!("{f} is beyond what the store keeps")))
}

fn fenced(row: &tokio_postgres::Row) -> PersistResult<PersistError> {
    let current: Option<i64> = get(row, "o_current")?;
    Ok(PersistError::Fenced {
        current: Fence(current.and_then(|c| u64::try_from(c).ok()).unwrap_or(0)),
    })
}

impl ScheduleStore for PgStore {
    async fn load_all(&self) -> PersistResult<Vec<StoredFlow>> {
        let live = self.link.live()?;
        let rows = live
            .client
            .query(&live.sql.load_all, &[])
            .await
            .map_err(crate::error::from_pg)?;
        rows.iter()
            .map(|row| {
                let mut record =
                    FlowRecord::new(ScheduleHash(get::<i64>(row, "schedule_hash")? as u64));
                record.last_fire = get::<Option<i64>>(row, "last_fire_us")?
                    .map(from_micros)
                    .transpose()?;
                record.streak = u32::try_from(get::<i64>(row, "streak")?)
                    .map_err(|_| PersistError::corrupt("a streak out of range"))?;
                record.next_eligible = get::<Option<i64>>(row, "next_eligible_us")?
                    .map(from_micros)
                    .transpose()?;
                record.paused = get(row, "paused")?;
                record.tripped = get(row, "tripped")?;
                record.buffered_trigger = get(row, "buffered_trigger")?;
                record.last_error = get::<Option<String>>(row, "last_error")?.map(Arc::from);
                let fence = u64::try_from(get::<i64>(row, "fence")?)
                    .map_err(|_| PersistError::corrupt("a negative fence"))?;
                Ok(StoredFlow {
                    flow: Arc::from(get::<String>(row, "flow")?),
                    record,
                    fence: Fence(fence),
                })
            })
            .collect()
    }

    async fn save(&self, flow: &str, record: &FlowRecord, fence: Fence) -> PersistResult<()> {
        check_record(flow, record)?;
        let live = self.link.live()?;
        let hash = record.schedule_hash.0 as i64; // bit for bit
        let last_fire = record.last_fire.map(|t| t.as_microsecond());
        let streak = i64::from(record.streak);
        let next_eligible = record.next_eligible.map(|t| t.as_microsecond());
        let last_error = record.last_error.as_deref();
        let row = query_one(
            &live,
            &live.sql.save_flow,
            &[
                &flow,
                &fence_param(fence)?,
                &hash,
                &last_fire,
                &streak,
                &next_eligible,
                &record.paused,
                &record.tripped,
                &record.buffered_trigger,
                &last_error,
            ],
        )
        .await?;
        if get::<bool>(&row, "o_ok")? {
            Ok(())
        } else {
            Err(fenced(&row)?)
        }
    }

    async fn delete(&self, flow: &str, fence: Fence) -> PersistResult<()> {
        check_flow_id(flow)?;
        let live = self.link.live()?;
        let row = query_one(&live, &live.sql.delete_flow, &[&flow, &fence_param(fence)?]).await?;
        if get::<bool>(&row, "o_ok")? {
            Ok(())
        } else {
            Err(fenced(&row)?)
        }
    }
}
