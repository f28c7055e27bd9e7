//! [`FireLedger`] for [`PgStore`]: each call is one prepared statement.

use std::time::Duration;

use cano_core::persist::{
    ClaimOutcome, ClaimRequest, ClaimState, ExpiredClaim, Fence, FireClaim, FireLedger,
    FireOutcome, FireRecord, FleetCommand, FlowLease, FlowLeaseOutcome, HeardClaim, LedgerFlow,
    NodeId, PersistError, PersistResult, Stamped, TakeoverOutcome, check_flow_id, from_micros,
    lease_micros, to_micros,
};
use cano_core::scheduler::FireId;
use jiff::Timestamp;
use tokio_postgres::Row;

use crate::PgStore;
use crate::conn::{get, query_one};

fn key(fire: &FireId) -> PersistResult<(&str, i64)> {
    check_flow_id(fire.flow())?;
    Ok((fire.flow(), to_micros(fire.scheduled())?))
}

fn fence(value: i64) -> PersistResult<Fence> {
    u64::try_from(value)
        .map(Fence)
        .map_err(|_| PersistError::corrupt(format!("a negative fence {value}")))
}

fn fence_param(f: Fence) -> PersistResult<i64> {
    i64::try_from(f.0)
        .map_err(|_| PersistError::invalid(format!("{f} is beyond what the store keeps")))
}

fn count(value: i64, what: &str) -> PersistResult<u32> {
    u32::try_from(value).map_err(|_| PersistError::corrupt(format!("{what} {value} out of range")))
}

fn outcome(code: i16) -> PersistResult<FireOutcome> {
    u8::try_from(code)
        .ok()
        .and_then(FireOutcome::from_code)
        .ok_or_else(|| PersistError::corrupt(format!("unknown outcome code {code}")))
}

fn now(row: &Row, column: &str) -> PersistResult<Timestamp> {
    from_micros(get::<i64>(row, column)?)
}

fn time(row: &Row, column: &str) -> PersistResult<Timestamp> {
    from_micros(get::<i64>(row, column)?)
}

fn node(row: &Row, column: &str) -> PersistResult<NodeId> {
    Ok(NodeId::new(get::<String>(row, column)?))
}

fn claimed(row: &Row) -> PersistResult<FireClaim> {
    Ok(FireClaim {
        fence: fence(get(row, "o_fence")?)?,
        expires: time(row, "o_expires_us")?,
        takeovers: count(get(row, "o_takeovers")?, "takeovers")?,
    })
}

/// A [`FireRecord`] from a row with the columns of the fire queries (`owner`,
/// `fence`, `outcome`, `expires_us`, `takeovers`) and its `state` code.
fn record(row: &Row, fire: FireId, state: i16) -> PersistResult<FireRecord> {
    let state = match state {
        0 => ClaimState::Claimed,
        1 => ClaimState::Done(outcome(get(row, "outcome")?)?),
        2 => ClaimState::Abandoned,
        other => {
            return Err(PersistError::corrupt(format!(
                "unknown claim state {other}"
            )));
        }
    };
    Ok(FireRecord {
        fire,
        owner: node(row, "owner")?,
        fence: fence(get(row, "fence")?)?,
        state,
        expires: time(row, "expires_us")?,
        takeovers: count(get(row, "takeovers")?, "takeovers")?,
    })
}

/// The newest claims of a flow, with the database's time on every row (one row with a
/// null `state` when the flow has none).
const RECENT_FIRES_SQL: &str = "WITH n AS (SELECT clock_timestamp() AS t)
SELECT cano_us(n.t) AS now_us, k.scheduled_us, k.owner, k.fence, k.state, k.outcome,
       cano_us(k.lease_until) AS expires_us, k.takeovers
  FROM n LEFT JOIN LATERAL (
       SELECT * FROM cano_fire_claims c WHERE c.flow = $1
        ORDER BY c.scheduled_us DESC LIMIT $2) k ON true
 ORDER BY k.scheduled_us DESC";

impl PgStore {
    /// The newest `limit` fires of `flow` in the fleet's ledger, newest scheduled time
    /// first, whichever node ran them: for each, the node that holds (or last held) its
    /// claim, its state ([`ClaimState::Claimed`] while running or until a takeover,
    /// `Done` with the outcome, or `Abandoned`), the fence, when the lease ends (compare
    /// it with the answer's [`Stamped::store_now`], the database clock: a `Claimed` fire whose
    /// lease has ended is waiting for a takeover) and how often it was taken over. Any
    /// node can ask, so an operator on one node sees what the whole fleet ran. Fires
    /// whose claims were pruned by `retain` are not listed.
    ///
    /// ```no_run
    /// # async fn show(store: &cano_postgres::PgStore) -> cano_core::persist::PersistResult<()> {
    /// let recent = store.recent_fires("report", 10).await?;
    /// for fire in &recent.value {
    ///     println!("{} {} {:?} by {}", fire.fire.scheduled(), fire.fence, fire.state, fire.owner);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// `Invalid` for an empty flow id; `Unavailable` while disconnected; `Corrupt` for a
    /// row this crate cannot read.
    pub async fn recent_fires(
        &self,
        flow: &str,
        limit: usize,
    ) -> PersistResult<Stamped<Vec<FireRecord>>> {
        check_flow_id(flow)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let live = self.link.live()?;
        // An operator's read, not on the fire path: not one of the prepared statements.
        let rows = live
            .client
            .query(RECENT_FIRES_SQL, &[&flow, &limit])
            .await
            .map_err(crate::error::from_pg)?;
        let first = rows
            .first()
            .ok_or_else(|| PersistError::corrupt("the recent fires query returned no row"))?;
        let store_now = now(first, "now_us")?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(state) = get::<Option<i16>>(row, "state")? else {
                continue; // the one row of an empty result
            };
            let fire = FireId::new(flow, time(row, "scheduled_us")?);
            records.push(record(row, fire, state)?);
        }
        Ok(Stamped::new(records, store_now))
    }
}

impl PgStore {
    /// The claim statement of [`FireLedger::claim_batch`] for `sent` (`(index, flow, µs,
    /// max_live)`, in lock order): one answer per fire, in that order.
    async fn claim_sent(
        &self,
        sent: &[(usize, &str, i64, i64)],
        node_id: &NodeId,
        lease: Duration,
    ) -> PersistResult<Vec<PersistResult<Stamped<ClaimOutcome>>>> {
        let lease = lease_micros(lease)?;
        let flows: Vec<&str> = sent.iter().map(|s| s.1).collect();
        let ats: Vec<i64> = sent.iter().map(|s| s.2).collect();
        let limits: Vec<i64> = sent.iter().map(|s| s.3).collect();
        let live = self.link.live()?;
        let rows = live
            .client
            .query(
                &live.sql.claim_batch,
                &[
                    &flows,
                    &ats,
                    &node_id.as_str(),
                    &lease,
                    &limits,
                    &self.link.channel,
                ],
            )
            .await
            .map_err(crate::error::from_pg)?;
        if rows.len() != sent.len() {
            return Err(PersistError::corrupt(format!(
                "the claim statement answered {} rows for {} fires",
                rows.len(),
                sent.len()
            )));
        }
        Ok(rows.iter().map(claim_outcome).collect())
    }
}

fn unknown_status(status: i16) -> PersistError {
    PersistError::corrupt(format!("unknown claim status {status}"))
}

/// The answer of a claim statement's row (`cano_claim`'s columns).
fn claim_outcome(row: &Row) -> PersistResult<Stamped<ClaimOutcome>> {
    let status: i16 = get(row, "o_status")?;
    let value = match status {
        0 => ClaimOutcome::Claimed(claimed(row)?),
        1 => ClaimOutcome::Taken {
            owner: node(row, "o_owner")?,
            expires: time(row, "o_expires_us")?,
        },
        2 => ClaimOutcome::Done {
            outcome: outcome(get(row, "o_outcome")?)?,
        },
        3 => ClaimOutcome::Abandoned {
            takeovers: count(get(row, "o_takeovers")?, "takeovers")?,
        },
        4 => ClaimOutcome::Stale {
            high_water: time(row, "o_high_water_us")?,
        },
        6 => ClaimOutcome::AtLimit {
            live: u32::try_from(get::<i64>(row, "o_live")?).unwrap_or(u32::MAX),
        },
        other => return Err(unknown_status(other)),
    };
    Ok(Stamped::new(value, now(row, "o_now_us")?))
}

impl FireLedger for PgStore {
    async fn claim_limited(
        &self,
        fire: &FireId,
        node_id: &NodeId,
        lease: Duration,
        max_live: u32,
    ) -> PersistResult<Stamped<ClaimOutcome>> {
        if max_live == 0 {
            return Err(PersistError::invalid("max_live must be at least 1"));
        }
        let max_live = i64::from(max_live);
        let (flow, at) = key(fire)?;
        let lease = lease_micros(lease)?;
        let live = self.link.live()?;
        let row = query_one(
            &live,
            &live.sql.claim,
            &[
                &flow,
                &at,
                &node_id.as_str(),
                &lease,
                &max_live,
                &self.link.channel,
            ],
        )
        .await?;
        claim_outcome(&row)
    }

    /// All of `claims` in one statement (one transaction, one round trip), sent in
    /// (flow, time) order so that two nodes claiming overlapping batches lock the flows
    /// in the same order and never deadlock. A request the store cannot take (an empty
    /// flow id, `max_live == 0`, a sub-microsecond time) is answered `Invalid` on its
    /// own; the others go out.
    async fn claim_batch(
        &self,
        claims: &[ClaimRequest],
        node_id: &NodeId,
        lease: Duration,
    ) -> Vec<PersistResult<Stamped<ClaimOutcome>>> {
        let mut answers: Vec<PersistResult<Stamped<ClaimOutcome>>> = (0..claims.len())
            .map(|_| Err(PersistError::unavailable("not sent")))
            .collect();
        let mut sent: Vec<(usize, &str, i64, i64)> = Vec::with_capacity(claims.len());
        for (k, claim) in claims.iter().enumerate() {
            match key(&claim.fire) {
                Err(e) => answers[k] = Err(e),
                Ok(_) if claim.max_live == 0 => {
                    answers[k] = Err(PersistError::invalid("max_live must be at least 1"));
                }
                Ok((flow, at)) => sent.push((k, flow, at, i64::from(claim.max_live))),
            }
        }
        if sent.is_empty() {
            return answers;
        }
        // Stable: two fires of one flow keep the order asked (oldest first).
        sent.sort_by(|a, b| (a.1, a.2).cmp(&(b.1, b.2)));
        let result = self.claim_sent(&sent, node_id, lease).await;
        match result {
            Ok(rows) => {
                for ((k, ..), answer) in sent.iter().zip(rows) {
                    answers[*k] = answer;
                }
            }
            Err(e) => {
                for (k, ..) in &sent {
                    answers[*k] = Err(e.clone());
                }
            }
        }
        answers
    }

    async fn renew(
        &self,
        fire: &FireId,
        held: Fence,
        lease: Duration,
    ) -> PersistResult<Stamped<Timestamp>> {
        let (flow, at) = key(fire)?;
        let lease = lease_micros(lease)?;
        let live = self.link.live()?;
        let row = query_one(
            &live,
            &live.sql.renew,
            &[&flow, &at, &fence_param(held)?, &lease],
        )
        .await?;
        if !get::<bool>(&row, "o_ok")? {
            return Err(PersistError::Fenced {
                current: fence(get(&row, "o_current")?)?,
            });
        }
        Ok(Stamped::new(
            time(&row, "o_expires_us")?,
            now(&row, "o_now_us")?,
        ))
    }

    async fn complete(
        &self,
        fire: &FireId,
        held: Fence,
        ended: FireOutcome,
    ) -> PersistResult<Stamped<()>> {
        let (flow, at) = key(fire)?;
        let live = self.link.live()?;
        let code = i16::from(ended.code());
        let row = query_one(
            &live,
            &live.sql.complete,
            &[&flow, &at, &fence_param(held)?, &code],
        )
        .await?;
        if !get::<bool>(&row, "o_ok")? {
            return Err(PersistError::Fenced {
                current: fence(get(&row, "o_current")?)?,
            });
        }
        Ok(Stamped::new((), now(&row, "o_now_us")?))
    }

    async fn expired(&self, limit: usize) -> PersistResult<Stamped<Vec<ExpiredClaim>>> {
        let live = self.link.live()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = live
            .client
            .query(&live.sql.expired, &[&limit])
            .await
            .map_err(crate::error::from_pg)?;
        let first = rows
            .first()
            .ok_or_else(|| PersistError::corrupt("the expired query returned no row"))?;
        let store_now = now(first, "now_us")?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(flow) = get::<Option<String>>(row, "flow")? else {
                continue; // the one row of an empty result
            };
            expired.push(ExpiredClaim {
                fire: FireId::new(flow, time(row, "scheduled_us")?),
                owner: node(row, "owner")?,
                fence: fence(get(row, "fence")?)?,
                expired_at: time(row, "expired_us")?,
                takeovers: count(get(row, "takeovers")?, "takeovers")?,
            });
        }
        Ok(Stamped::new(expired, store_now))
    }

    async fn take_over_limited(
        &self,
        fire: &FireId,
        node_id: &NodeId,
        lease: Duration,
        max_takeovers: u32,
        max_live: u32,
    ) -> PersistResult<Stamped<TakeoverOutcome>> {
        let (flow, at) = key(fire)?;
        let lease = lease_micros(lease)?;
        if max_live == 0 {
            return Err(PersistError::invalid("max_live must be at least 1"));
        }
        let max = i64::from(max_takeovers);
        let max_live = i64::from(max_live);
        let live = self.link.live()?;
        let row = query_one(
            &live,
            &live.sql.take_over,
            &[
                &flow,
                &at,
                &node_id.as_str(),
                &lease,
                &max,
                &max_live,
                &self.link.channel,
            ],
        )
        .await?;
        let status: i16 = get(&row, "o_status")?;
        let value = match status {
            0 => TakeoverOutcome::Claimed(claimed(&row)?),
            1 => TakeoverOutcome::Live {
                owner: node(&row, "o_owner")?,
                expires: time(&row, "o_expires_us")?,
            },
            2 => TakeoverOutcome::Done {
                outcome: outcome(get(&row, "o_outcome")?)?,
            },
            3 => TakeoverOutcome::Abandoned {
                takeovers: count(get(&row, "o_takeovers")?, "takeovers")?,
            },
            5 => TakeoverOutcome::Missing,
            6 => TakeoverOutcome::AtLimit {
                live: count(get(&row, "o_live")?, "live claims")?,
            },
            other => return Err(unknown_status(other)),
        };
        Ok(Stamped::new(value, now(&row, "o_now_us")?))
    }

    async fn retain(&self, ended_before: Timestamp) -> PersistResult<Stamped<u64>> {
        let cutoff = ended_before.as_microsecond();
        let live = self.link.live()?;
        let row = query_one(&live, &live.sql.retain, &[&cutoff]).await?;
        let pruned = u64::try_from(get::<i64>(&row, "pruned")?).unwrap_or(0);
        Ok(Stamped::new(pruned, now(&row, "now_us")?))
    }

    async fn fire(&self, fire: &FireId) -> PersistResult<Stamped<Option<FireRecord>>> {
        let (flow, at) = key(fire)?;
        let live = self.link.live()?;
        let row = query_one(&live, &live.sql.fire, &[&flow, &at]).await?;
        let store_now = now(&row, "now_us")?;
        let Some(state) = get::<Option<i16>>(&row, "state")? else {
            return Ok(Stamped::new(None, store_now));
        };
        let record = record(&row, fire.clone(), state)?;
        Ok(Stamped::new(Some(record), store_now))
    }

    async fn flow(&self, flow: &str) -> PersistResult<Stamped<LedgerFlow>> {
        check_flow_id(flow)?;
        let live = self.link.live()?;
        let row = query_one(&live, &live.sql.flow, &[&flow]).await?;
        let store_now = now(&row, "now_us")?;
        let Some(issued) = get::<Option<i64>>(&row, "fence")? else {
            return Ok(Stamped::new(LedgerFlow::default(), store_now));
        };
        let owner = match (
            get::<Option<String>>(&row, "owner")?,
            get::<Option<i64>>(&row, "owner_until_us")?,
        ) {
            (Some(owner), Some(until)) => Some((NodeId::new(owner), from_micros(until)?)),
            _ => None,
        };
        let value = LedgerFlow {
            high_water: get::<Option<i64>>(&row, "high_water_us")?
                .map(from_micros)
                .transpose()?,
            abandoned: u64::try_from(get::<i64>(&row, "abandoned")?).unwrap_or(0),
            fence: fence(issued)?,
            owner,
        };
        Ok(Stamped::new(value, store_now))
    }

    async fn acquire_flow(
        &self,
        flow: &str,
        node_id: &NodeId,
        lease: Duration,
    ) -> PersistResult<Stamped<FlowLeaseOutcome>> {
        check_flow_id(flow)?;
        let lease = lease_micros(lease)?;
        let live = self.link.live()?;
        let row = query_one(
            &live,
            &live.sql.acquire_flow,
            &[&flow, &node_id.as_str(), &lease],
        )
        .await?;
        let value = if get::<bool>(&row, "o_owned")? {
            FlowLeaseOutcome::Owned(FlowLease {
                fence: fence(get(&row, "o_fence")?)?,
                expires: time(&row, "o_expires_us")?,
            })
        } else {
            FlowLeaseOutcome::HeldBy {
                owner: node(&row, "o_owner")?,
                expires: time(&row, "o_expires_us")?,
            }
        };
        Ok(Stamped::new(value, now(&row, "o_now_us")?))
    }

    async fn renew_flow(
        &self,
        flow: &str,
        held: Fence,
        lease: Duration,
    ) -> PersistResult<Stamped<Timestamp>> {
        check_flow_id(flow)?;
        let lease = lease_micros(lease)?;
        let live = self.link.live()?;
        let row = query_one(
            &live,
            &live.sql.renew_flow,
            &[&flow, &fence_param(held)?, &lease],
        )
        .await?;
        if !get::<bool>(&row, "o_ok")? {
            return Err(PersistError::Fenced {
                current: fence(get(&row, "o_current")?)?,
            });
        }
        Ok(Stamped::new(
            time(&row, "o_expires_us")?,
            now(&row, "o_now_us")?,
        ))
    }

    /// Appends the command to the `cano_fleet_commands` log and sends a `NOTIFY` (a
    /// wake-up only) in the same statement. The log keeps the last
    /// [`PgConfig::commands_kept`](crate::PgConfig::commands_kept) commands.
    async fn publish(&self, command: &FleetCommand) -> PersistResult<()> {
        crate::conn::publish(&self.link, command).await.map(|_| ())
    }

    /// The logged commands after `cursor`, oldest first, at most 1 024 per call. Cursor 0
    /// (a scheduler that has read nothing yet) reads from the end of the log as it was
    /// when this store connected: a node starting fresh does not replay last week's
    /// pauses, and one that was disconnected reads what it missed from its cursor.
    async fn commands_after(&self, cursor: u64) -> PersistResult<Vec<(u64, FleetCommand)>> {
        let floor = self.link.floor.load(std::sync::atomic::Ordering::Relaxed);
        crate::commands::read_after(&self.link, cursor.max(floor))
            .await
            .map(|read| read.commands)
    }

    /// Completes at the next notification on this schema's channel (or reconnect).
    fn command_signal(&self) -> Option<futures::future::BoxFuture<'static, ()>> {
        let mut rx = self.link.wake.subscribe();
        Some(Box::pin(async move {
            let _ = rx.recv().await;
        }))
    }

    /// The claims announced on this schema's channel: the claim and takeover statements
    /// send a `NOTIFY` when they grant one (in the same statement, no extra round trip).
    fn claims_heard_after(&self, cursor: u64) -> Option<Vec<(u64, HeardClaim)>> {
        Some(self.link.heard_after(cursor))
    }

    async fn release_flow(&self, flow: &str, held: Fence) -> PersistResult<Stamped<()>> {
        check_flow_id(flow)?;
        let live = self.link.live()?;
        let row = query_one(&live, &live.sql.release_flow, &[&flow, &fence_param(held)?]).await?;
        Ok(Stamped::new((), now(&row, "now_us")?))
    }
}
