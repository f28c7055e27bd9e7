//! [`FakeClock`]: a monotonic clock and a wall clock that a test moves by hand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::vec::Vec;

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::runtime::Clock;
use crate::time::Instant;

/// A clock for tests. Clones share the same time.
///
/// * [`advance`](FakeClock::advance) moves both clocks together: normal time passing.
/// * [`suspend`](FakeClock::suspend) moves only the wall clock forward: a laptop lid closed
///   for eight hours (monotonic clocks stand still while suspended).
/// * [`step_wall`](FakeClock::step_wall) moves only the wall clock, either way: an NTP step.
/// * [`advance_monotonic`](FakeClock::advance_monotonic) moves only the monotonic clock.
///
/// Moving the monotonic clock wakes every [`FakeSleep`] whose deadline has come. Tests
/// usually let [`Simulation`](crate::testing::Simulation) move the clock instead.
///
/// ```
/// use cano_core::testing::FakeClock;
/// use cano_core::{Clock, Instant};
/// use core::time::Duration;
/// use jiff::{SignedDuration, Timestamp};
///
/// let start: Timestamp = "2026-03-08T06:00:00Z".parse().unwrap();
/// let clock = FakeClock::new(start);
/// clock.suspend(Duration::from_secs(8 * 3600));
/// assert_eq!(clock.now(), Instant::ZERO);
/// assert_eq!(clock.wall_now(), "2026-03-08T14:00:00Z".parse::<Timestamp>().unwrap());
/// clock.step_wall(SignedDuration::from_hours(-1));
/// assert_eq!(clock.wall_now(), "2026-03-08T13:00:00Z".parse::<Timestamp>().unwrap());
/// ```
#[derive(Clone)]
pub struct FakeClock {
    state: Arc<Mutex<ClockState>>,
}

struct ClockState {
    now: Instant,
    wall: Timestamp,
    next_key: u64,
    /// Pending sleeps by (deadline, registration key).
    timers: BTreeMap<(Instant, u64), Waker>,
}

impl FakeClock {
    /// A clock whose monotonic time starts at [`Instant::ZERO`] and wall time at `wall_start`.
    pub fn new(wall_start: Timestamp) -> Self {
        FakeClock {
            state: Arc::new(Mutex::new(ClockState {
                now: Instant::ZERO,
                wall: wall_start,
                next_key: 0,
                timers: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        // A panicking test thread must not poison the clock for the assertions after it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves both clocks forward by `d` and wakes the sleeps that are due.
    pub fn advance(&self, d: Duration) {
        let target = self.now() + d;
        self.advance_to(target);
    }

    /// Moves the monotonic clock to `target` (if it is later) and the wall clock by the same
    /// amount, and wakes the sleeps that are due.
    pub fn advance_to(&self, target: Instant) {
        let due = {
            let mut s = self.lock();
            if target > s.now {
                let delta = target - s.now;
                s.wall = add_wall(s.wall, delta);
                s.now = target;
            }
            s.take_due()
        };
        due.into_iter().for_each(Waker::wake);
    }

    /// Moves only the monotonic clock forward, and wakes the sleeps that are due.
    pub fn advance_monotonic(&self, d: Duration) {
        let due = {
            let mut s = self.lock();
            s.now += d;
            s.take_due()
        };
        due.into_iter().for_each(Waker::wake);
    }

    /// Moves only the wall clock forward by `d`: the machine was suspended for `d`.
    pub fn suspend(&self, d: Duration) {
        let mut s = self.lock();
        s.wall = add_wall(s.wall, d);
    }

    /// Moves only the wall clock, forwards or backwards: an NTP step or a manual change.
    pub fn step_wall(&self, by: SignedDuration) {
        let mut s = self.lock();
        s.wall = s.wall.checked_add(by).unwrap_or(if by.is_negative() {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        });
    }

    /// Sets the wall clock to `wall` without touching the monotonic clock.
    pub fn set_wall(&self, wall: Timestamp) {
        self.lock().wall = wall;
    }

    /// The earliest deadline any pending sleep waits for.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock()
            .timers
            .keys()
            .next()
            .map(|(deadline, _)| *deadline)
    }

    /// How many sleeps are pending.
    pub fn pending_sleeps(&self) -> usize {
        self.lock().timers.len()
    }
}

impl ClockState {
    fn take_due(&mut self) -> Vec<Waker> {
        let later = self.timers.split_off(&(self.now, u64::MAX));
        let due = core::mem::replace(&mut self.timers, later);
        due.into_values().collect()
    }
}

fn add_wall(wall: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| wall.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

impl core::fmt::Debug for FakeClock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.lock();
        f.debug_struct("FakeClock")
            .field("now", &s.now)
            .field("wall", &s.wall)
            .field("pending_sleeps", &s.timers.len())
            .finish()
    }
}

impl Clock for FakeClock {
    type Sleep = FakeSleep;

    fn now(&self) -> Instant {
        self.lock().now
    }

    fn wall_now(&self) -> Timestamp {
        self.lock().wall
    }

    fn sleep_until(&self, deadline: Instant) -> FakeSleep {
        FakeSleep {
            clock: self.clone(),
            deadline,
            key: None,
        }
    }
}

/// The future returned by [`FakeClock::sleep_until`]. Dropping it unregisters it, so a
/// cancelled sleep never makes a simulation jump to its deadline.
pub struct FakeSleep {
    clock: FakeClock,
    deadline: Instant,
    key: Option<u64>,
}

impl Future for FakeSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut s = this.clock.lock();
        if s.now >= this.deadline {
            if let Some(key) = this.key.take() {
                s.timers.remove(&(this.deadline, key));
            }
            return Poll::Ready(());
        }
        if this.deadline == Instant::MAX {
            // Never due: registering it would only make a simulation jump to the end of time.
            return Poll::Pending;
        }
        let key = *this.key.get_or_insert_with(|| {
            s.next_key += 1;
            s.next_key
        });
        s.timers.insert((this.deadline, key), cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for FakeSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.clock.lock().timers.remove(&(self.deadline, key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn wall_and_monotonic_move_independently() {
        let clock = FakeClock::new(t("2026-01-01T00:00:00Z"));
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), Instant::from_secs(60));
        assert_eq!(clock.wall_now(), t("2026-01-01T00:01:00Z"));

        // Suspend: wall +8 h, monotonic +0.
        clock.suspend(Duration::from_secs(8 * 3600));
        assert_eq!(clock.now(), Instant::from_secs(60));
        assert_eq!(clock.wall_now(), t("2026-01-01T08:01:00Z"));

        // NTP step backwards: wall −1 h, monotonic +0.
        clock.step_wall(SignedDuration::from_hours(-1));
        assert_eq!(clock.now(), Instant::from_secs(60));
        assert_eq!(clock.wall_now(), t("2026-01-01T07:01:00Z"));

        // The reverse: monotonic moves, wall stands still.
        clock.advance_monotonic(Duration::from_secs(30));
        assert_eq!(clock.now(), Instant::from_secs(90));
        assert_eq!(clock.wall_now(), t("2026-01-01T07:01:00Z"));

        // Normal time again moves both by the same amount.
        clock.advance(Duration::from_secs(10));
        assert_eq!(clock.now(), Instant::from_secs(100));
        assert_eq!(clock.wall_now(), t("2026-01-01T07:01:10Z"));
    }

    #[test]
    fn dropped_sleeps_unregister() {
        let clock = FakeClock::new(Timestamp::UNIX_EPOCH);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut sleep = clock.sleep_until(Instant::from_secs(5));
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        assert_eq!(clock.pending_sleeps(), 1);
        assert_eq!(clock.next_deadline(), Some(Instant::from_secs(5)));
        drop(sleep);
        assert_eq!(clock.pending_sleeps(), 0);

        let mut never = clock.sleep_until(Instant::MAX);
        assert!(Pin::new(&mut never).poll(&mut cx).is_pending());
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn sleep_completes_exactly_at_its_deadline() {
        let clock = FakeClock::new(Timestamp::UNIX_EPOCH);
        let mut cx = Context::from_waker(Waker::noop());
        let mut sleep = clock.sleep_until(Instant::from_millis(1500));
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        clock.advance(Duration::from_micros(1_499_999));
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_pending());
        clock.advance(Duration::from_micros(1));
        assert!(Pin::new(&mut sleep).poll(&mut cx).is_ready());
        assert_eq!(clock.pending_sleeps(), 0);
    }
}
