//! [`EmbassyClock`]: cano's [`Clock`] on embassy-time, with a wall clock derived from an epoch.

use core::cell::Cell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use cano_core::jiff::{SignedDuration, Timestamp};
use cano_core::{Clock, Instant};
use critical_section::Mutex;
use embassy_time::{TICK_HZ, Timer};

use crate::ticks::{micros_to_ticks_ceil, ticks_to_micros};

/// Wall time at embassy tick 0. There is one time driver per program, hence one of these.
static WALL_EPOCH: Mutex<Cell<Timestamp>> = Mutex::new(Cell::new(Timestamp::UNIX_EPOCH));

/// cano's [`Clock`] on embassy-time: monotonic time is the embassy time driver's tick counter,
/// wall time is a configurable epoch plus that counter.
///
/// * **Monotonic** ([`Clock::now`]): microseconds since embassy tick 0 (usually boot),
///   converted exactly from the driver's tick rate, rounded down, saturating at
///   [`Instant::MAX`]. Every `EmbassyClock` in a program reads the same counter.
/// * **Wall** ([`Clock::wall_now`]): the wall epoch (the wall time at tick 0) plus the
///   monotonic reading. A microcontroller has no wall clock of its own, so **until the
///   application sets one, wall time starts at the Unix epoch (1970-01-01T00:00:00Z) at
///   tick 0**, and cron schedules fire against that. Set it at start-up with
///   [`EmbassyClock::with_wall_epoch`], and whenever a better source arrives (an RTC read,
///   SNTP, GPS) with [`EmbassyClock::set_wall_now`]. Like the time driver, the wall epoch is
///   global to the program: setting it through one `EmbassyClock` moves them all, which is
///   what the scheduler holding a clone needs to see.
/// * **Sleeping** ([`Clock::sleep_until`]): an [`embassy_time::Timer`] at the first tick at or
///   after the deadline, so `now()` after waking is never before the deadline. A deadline in
///   the past completes on the first poll; [`Instant::MAX`] (and any deadline beyond the
///   driver's tick range) never completes and registers no timer.
///
/// ```
/// use cano_embassy::{Clock, EmbassyClock};
/// use cano_embassy::jiff::{SignedDuration, Timestamp};
///
/// # cano_embassy_testkit::run_virtual(|_| {
/// let epoch: Timestamp = "2026-03-29T00:59:00Z".parse().unwrap();
/// let clock = EmbassyClock::with_wall_epoch(epoch);
/// let since_boot = SignedDuration::try_from(clock.now().elapsed_since_origin()).unwrap();
/// assert_eq!(clock.wall_now(), epoch + since_boot);
///
/// // Later, SNTP says the device's clock is 30 s behind: only wall time moves.
/// let before = clock.now();
/// let corrected = clock.wall_now() + SignedDuration::from_secs(30);
/// clock.set_wall_now(corrected);
/// assert_eq!(clock.wall_now(), corrected);
/// assert_eq!(clock.now(), before);
/// # }, || true);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbassyClock {
    _private: (),
}

impl EmbassyClock {
    /// A handle to embassy's clock. It does not change the wall epoch: wall time is what was
    /// last set, or the Unix epoch at tick 0 if nothing was.
    pub const fn new() -> Self {
        EmbassyClock { _private: () }
    }

    /// A handle to embassy's clock whose wall time at embassy tick 0 was `epoch`.
    ///
    /// This sets the program-wide wall epoch (see [`EmbassyClock::set_wall_epoch`]), so every
    /// other `EmbassyClock` follows it too.
    pub fn with_wall_epoch(epoch: Timestamp) -> Self {
        let clock = EmbassyClock::new();
        clock.set_wall_epoch(epoch);
        clock
    }

    /// Sets the wall time at embassy tick 0, for every `EmbassyClock` in the program.
    pub fn set_wall_epoch(&self, epoch: Timestamp) {
        critical_section::with(|cs| WALL_EPOCH.borrow(cs).set(epoch));
    }

    /// The wall time at embassy tick 0.
    pub fn wall_epoch(&self) -> Timestamp {
        critical_section::with(|cs| WALL_EPOCH.borrow(cs).get())
    }

    /// Sets the wall clock so that [`Clock::wall_now`] reads `now` at this moment, for every
    /// `EmbassyClock` in the program; use it when an RTC, SNTP or GPS reports the time.
    /// The monotonic clock is unaffected, so intervals and backoff carry on undisturbed.
    ///
    /// If `now` is so early that the epoch would fall before [`Timestamp::MIN`], the epoch
    /// saturates there and wall time reads slightly later than `now`.
    pub fn set_wall_now(&self, now: Timestamp) {
        critical_section::with(|cs| {
            let since_tick_zero = since_tick_zero(embassy_time::Instant::now().as_ticks());
            let epoch = now.checked_sub(since_tick_zero).unwrap_or(Timestamp::MIN);
            WALL_EPOCH.borrow(cs).set(epoch);
        });
    }
}

/// The monotonic time at embassy tick `ticks`.
fn instant_at(ticks: u64) -> Instant {
    Instant::from_micros(ticks_to_micros(ticks, TICK_HZ))
}

/// The time from embassy tick 0 to tick `ticks`, as jiff wants it for wall arithmetic.
fn since_tick_zero(ticks: u64) -> SignedDuration {
    let micros = ticks_to_micros(ticks, TICK_HZ);
    SignedDuration::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

impl Clock for EmbassyClock {
    type Sleep = EmbassySleep;

    fn now(&self) -> Instant {
        instant_at(embassy_time::Instant::now().as_ticks())
    }

    /// The wall epoch plus the time since embassy tick 0, saturating at [`Timestamp::MAX`].
    fn wall_now(&self) -> Timestamp {
        // One critical section, so that a concurrent `set_wall_now` (say from an interrupt)
        // is seen entirely or not at all.
        critical_section::with(|cs| {
            let epoch = WALL_EPOCH.borrow(cs).get();
            let since_tick_zero = since_tick_zero(embassy_time::Instant::now().as_ticks());
            epoch.checked_add(since_tick_zero).unwrap_or(Timestamp::MAX)
        })
    }

    fn sleep_until(&self, deadline: Instant) -> EmbassySleep {
        let wake = (deadline != Instant::MAX)
            .then(|| micros_to_ticks_ceil(deadline.as_micros(), TICK_HZ))
            .flatten()
            // Embassy's timer queues read `u64::MAX` as "no alarm".
            .filter(|&tick| tick != u64::MAX)
            .map(|tick| {
                let at = embassy_time::Instant::from_ticks(tick);
                Wake {
                    at,
                    timer: Timer::at(at),
                }
            });
        EmbassySleep { wake }
    }
}

/// The future returned by [`EmbassyClock::sleep_until`]: an embassy [`Timer`], or, for a
/// deadline that never comes, a future that stays pending without registering a timer.
#[derive(Debug)]
pub struct EmbassySleep {
    wake: Option<Wake>,
}

#[derive(Debug)]
struct Wake {
    at: embassy_time::Instant,
    timer: Timer,
}

impl Future for EmbassySleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(wake) = &mut self.wake else {
            return Poll::Pending;
        };
        // Checked first so that a deadline already reached completes without a trip through
        // the timer queue (embassy's `Timer` always yields once).
        if embassy_time::Instant::now() >= wake.at {
            return Poll::Ready(());
        }
        Pin::new(&mut wake.timer).poll(cx)
    }
}
