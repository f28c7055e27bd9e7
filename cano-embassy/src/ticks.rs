//! Exact conversion between embassy-time ticks and cano's microseconds.
//!
//! The tick rate belongs to the application's time driver (`TICK_HZ`, often 1 kHz or
//! 32.768 kHz on a microcontroller, 1 MHz on the host). embassy's own `as_micros` and
//! `from_micros` multiply before they divide, so they overflow (a panic in debug builds, a
//! wrapped value in release) long before `u64` ticks run out. These functions split the value
//! into a quotient and a remainder so that no intermediate product can overflow, round in the
//! direction that keeps cano's guarantees, and saturate at the ends.

const MICROS_PER_SEC: u64 = 1_000_000;

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `value * num / den`, rounded down (or up if `round_up`), in exact integer arithmetic;
/// `None` if the result does not fit in a `u64`.
///
/// `num` and `den` must be coprime and their product must fit in a `u64`, which holds for
/// every tick rate against one million (the rates embassy offers stay below 2^44).
const fn scale(value: u64, num: u64, den: u64, round_up: bool) -> Option<u64> {
    let whole = value / den;
    let remainder = value % den;
    // remainder < den, so remainder * num < den * num: no overflow.
    let part = remainder * num;
    let part = if round_up {
        part.div_ceil(den)
    } else {
        part / den
    };
    match whole.checked_mul(num) {
        Some(whole) => whole.checked_add(part),
        None => None,
    }
}

/// Whole microseconds in `ticks` at `tick_hz`, rounded down; `u64::MAX` if they overflow.
///
/// Rounding down means a clock reading never runs ahead of the tick counter.
pub(crate) const fn ticks_to_micros(ticks: u64, tick_hz: u64) -> u64 {
    let divisor = gcd(MICROS_PER_SEC, tick_hz);
    match scale(ticks, MICROS_PER_SEC / divisor, tick_hz / divisor, false) {
        Some(micros) => micros,
        None => u64::MAX,
    }
}

/// The first tick at or after `micros` at `tick_hz` (rounded up, so a deadline is never
/// reported as reached early); `None` if that tick does not fit in a `u64`.
pub(crate) const fn micros_to_ticks_ceil(micros: u64, tick_hz: u64) -> Option<u64> {
    let divisor = gcd(MICROS_PER_SEC, tick_hz);
    scale(micros, tick_hz / divisor, MICROS_PER_SEC / divisor, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 Hz up to embassy's fastest rates, including ones that share few factors with 10^6.
    const RATES: [u64; 8] = [
        1,
        1_000,
        32_768,
        1_000_000,
        12_500_000,
        16_777_216,
        1_000_000_000,
        5_000_000_000,
    ];

    #[test]
    fn common_rates_convert_exactly() {
        assert_eq!(ticks_to_micros(1, 1_000), 1_000);
        assert_eq!(ticks_to_micros(32_768, 32_768), 1_000_000);
        assert_eq!(ticks_to_micros(1, 32_768), 30); // 30.517..., rounded down
        assert_eq!(micros_to_ticks_ceil(30, 32_768), Some(1)); // 0.98 ticks, rounded up
        assert_eq!(micros_to_ticks_ceil(31, 32_768), Some(2));
        assert_eq!(micros_to_ticks_ceil(1_500, 1_000), Some(2));
        assert_eq!(micros_to_ticks_ceil(2_000, 1_000), Some(2));
        assert_eq!(ticks_to_micros(123_456_789, 1_000_000), 123_456_789);
        assert_eq!(micros_to_ticks_ceil(1, 1_000_000_000), Some(1_000));
        assert_eq!(ticks_to_micros(1_999, 1_000_000_000), 1);
    }

    #[test]
    fn extremes_saturate_instead_of_overflowing() {
        // At 1 kHz, embassy's own `as_micros` overflows past 2^64 / 1000 ticks.
        assert_eq!(ticks_to_micros(u64::MAX, 1_000), u64::MAX);
        assert_eq!(
            ticks_to_micros(u64::MAX / 1_000, 1_000),
            u64::MAX / 1_000 * 1_000
        );
        assert_eq!(ticks_to_micros(u64::MAX / 1_000 + 1, 1_000), u64::MAX);
        // Below 1 MHz every microsecond count has a tick; above it the far end does not.
        assert_eq!(
            micros_to_ticks_ceil(u64::MAX, 1_000),
            Some(u64::MAX / 1_000 + 1)
        );
        assert_eq!(micros_to_ticks_ceil(u64::MAX, 1_000_000), Some(u64::MAX));
        assert_eq!(micros_to_ticks_ceil(u64::MAX, 32_768_000), None);
        assert_eq!(
            micros_to_ticks_ceil(u64::MAX / 1_000, 1_000_000_000),
            Some(u64::MAX / 1_000 * 1_000)
        );
        assert_eq!(
            micros_to_ticks_ceil(u64::MAX / 1_000 + 1, 1_000_000_000),
            None
        );
        for hz in RATES {
            assert_eq!(ticks_to_micros(0, hz), 0);
            assert_eq!(micros_to_ticks_ceil(0, hz), Some(0));
            // Never a panic, whatever the input.
            let _ = ticks_to_micros(u64::MAX, hz);
            let _ = micros_to_ticks_ceil(u64::MAX, hz);
        }
    }

    #[test]
    fn a_deadline_tick_never_reads_as_earlier_than_the_deadline() {
        // The guarantee `sleep_until` relies on: once the tick counter reaches the deadline's
        // tick, `now()` is at or after the deadline, and one tick earlier it is not.
        for hz in RATES {
            for micros in (0..2_000u64).chain([999_999, 1_000_001, 86_400_000_000, 1 << 40]) {
                let tick = micros_to_ticks_ceil(micros, hz).unwrap();
                assert!(
                    ticks_to_micros(tick, hz) >= micros,
                    "{micros} µs at {hz} Hz"
                );
                if tick > 0 {
                    assert!(
                        ticks_to_micros(tick - 1, hz) < micros,
                        "{micros} µs at {hz} Hz"
                    );
                }
            }
        }
    }
}
