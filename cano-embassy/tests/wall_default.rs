//! Its own test binary, because the wall epoch is global to a program: here nothing has
//! set it yet.

use cano_embassy::jiff::{SignedDuration, Timestamp};
use cano_embassy::{Clock, EmbassyClock};
use cano_embassy_testkit::run_virtual;

#[test]
fn without_an_epoch_wall_time_starts_at_the_unix_epoch_at_tick_zero() {
    run_virtual(
        |_| {
            let clock = EmbassyClock::new();
            let since_tick_zero =
                SignedDuration::try_from(clock.now().elapsed_since_origin()).unwrap();
            assert_eq!(clock.wall_epoch(), Timestamp::UNIX_EPOCH);
            assert_eq!(clock.wall_now(), Timestamp::UNIX_EPOCH + since_tick_zero);
        },
        || true,
    );
}
