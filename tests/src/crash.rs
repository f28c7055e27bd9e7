//! What the crash and fleet tests share with their child processes: a seeded generator for
//! kill delays, a scratch directory removed at the end, a child killed even when the test
//! panics, and the children's append-only effect log.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;

/// SplitMix64: a tiny deterministic generator, so that a seed replays the same kill plan.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `range` (panics on an empty range: a test's own mistake).
    pub fn in_range(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next_u64() % (range.end - range.start)
    }
}

/// A directory removed, with what it holds, when dropped (also when the test panics).
#[derive(Debug)]
pub struct ScratchDir(pub PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped, so that a failing test leaves no process behind.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child's effect log: `effects.log` in its directory, one line per effect, appended by
/// every process that ever runs there.
#[derive(Debug)]
pub struct EffectLog {
    file: Mutex<File>,
    sync: bool,
}

impl EffectLog {
    /// Opens (or creates) `dir/effects.log` for appending. With `sync`, every line reaches
    /// the disk before [`record`](Self::record) returns (for a test that compares the log
    /// with the store after a kill); without it, the line reaches the OS's page cache,
    /// which a SIGKILL does not lose.
    ///
    /// # Panics
    /// If the file cannot be opened: the child cannot do its job without it.
    pub fn open(dir: &Path, sync: bool) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("effects.log"))
            .expect("open the effect log");
        EffectLog {
            file: Mutex::new(file),
            sync,
        }
    }

    /// Appends `line` and a newline in one write.
    ///
    /// # Panics
    /// If the write (or the sync) fails: a lost effect would make the test's check wrong.
    pub fn record(&self, line: std::fmt::Arguments<'_>) {
        let line = format!("{line}\n");
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        (&*file)
            .write_all(line.as_bytes())
            .and_then(|()| if self.sync { file.sync_data() } else { Ok(()) })
            .expect("record an effect");
    }
}
