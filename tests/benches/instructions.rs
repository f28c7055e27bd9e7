//! Instruction counts per operation, cano side by side with its peer, for
//! `tests/benches/callgrind.sh` (which runs this binary under `valgrind --tool=callgrind`).
//!
//! `instructions <operation> <n>` sets the operation up, then performs it `n` times. The
//! script runs each operation twice, with two values of `n`, and divides the difference in
//! instructions by the difference in `n`: set-up, runtime start and exit cancel out, and
//! what is left is the cost of one operation, insensitive to the machine's load.
//! `instructions list` prints the operations, one `<name> <peer-of>` pair a line.
//!
//! Run with no arguments (as `cargo bench` does) it performs every operation a few times
//! natively, as a smoke test that each one still completes.
#![allow(missing_docs)]

use std::hint::black_box;

use cano_core::cron::{Cron, CronOptions};
use cano_core::jiff::tz::TimeZone;
use cano_core::jiff::{Timestamp, ZonedDateTime};

/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;

/// 64 start instants spread over 2026 at odd times of day (as in `benches/cron.rs`).
fn starts() -> Vec<i64> {
    (0..64i64)
        .map(|i| START + i * 5 * 86_400 + (i * 7_919 % 86_400))
        .collect()
}

fn zoned_utc(seconds: i64) -> ZonedDateTime {
    Timestamp::from_second(seconds)
        .expect("in range")
        .to_zoned_datetime(TimeZone::UTC)
}

fn chrono_utc(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(seconds, 0).expect("in range")
}

/// `n` cano `next_after` calls cycling over [`starts`].
fn cron_cano(six: &str, options: CronOptions, n: u64) {
    let cron = Cron::parse_with(six, options).expect("valid");
    let starts: Vec<ZonedDateTime> = starts().into_iter().map(zoned_utc).collect();
    for i in 0..n {
        let at = &starts[i as usize % starts.len()];
        assert!(black_box(cron.next_after(black_box(at))).is_some());
    }
}

/// `n` cron-parser `next_after` calls cycling over [`starts`].
fn cron_parser(five: &str, n: u64) {
    let cron = cron_parser::Schedule::parse(five).expect("valid");
    let starts: Vec<_> = starts().into_iter().map(chrono_utc).collect();
    for i in 0..n {
        let at = &starts[i as usize % starts.len()];
        assert!(black_box(cron.next_after(black_box(at))).is_some());
    }
}

/// An operation: its name, the name of the operation it is compared with (empty for a
/// peer's own row), and its body.
struct Operation {
    name: &'static str,
    peer_of: &'static str,
    run: fn(u64),
}

const OPERATIONS: &[Operation] = &[
    Operation {
        name: "cron-next/feb-29/cano",
        peer_of: "",
        run: |n| cron_cano("0 0 0 29 2 *", CronOptions::new(), n),
    },
    Operation {
        name: "cron-next/feb-29/cron-parser-0.12",
        peer_of: "cron-next/feb-29/cano",
        run: |n| cron_parser("0 0 29 2 *", n),
    },
    Operation {
        name: "cron-next/dom-and-dow/cano-and",
        peer_of: "",
        run: |n| cron_cano("0 30 9 1-7 * MON", CronOptions::quartz(), n),
    },
    Operation {
        name: "cron-next/dom-and-dow/cron-parser-0.12",
        peer_of: "cron-next/dom-and-dow/cano-and",
        run: |n| cron_parser("30 9 1-7 * 1", n),
    },
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [list] if list == "list" => {
            for op in OPERATIONS {
                println!("{} {}", op.name, op.peer_of);
            }
        }
        [name, n] => {
            let n: u64 = n.parse().expect("a count");
            let op = OPERATIONS
                .iter()
                .find(|op| op.name == name)
                .unwrap_or_else(|| panic!("no operation {name}; try `list`"));
            (op.run)(n);
        }
        // `cargo bench` passes `--bench` (and maybe a filter): a smoke run of everything.
        _ => {
            for op in OPERATIONS {
                (op.run)(3);
            }
            println!("instructions: {} operations ran", OPERATIONS.len());
        }
    }
}
