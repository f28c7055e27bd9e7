//! Injectable, seedable randomness for retry jitter.
//!
//! Jitter must be reproducible in tests and must not need an OS on a microcontroller, so
//! cano never reads a thread RNG. Anything that jitters takes a [`RandomSource`]; the default
//! is a [`SplitMix64`] with a per-workflow seed, and a test injects one with a fixed seed.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A source of uniformly distributed 64-bit values, shared between concurrent users.
///
/// Implement it to plug in another generator (a hardware RNG on a microcontroller, say).
///
/// ```
/// use cano_core::random::{RandomSource, SplitMix64};
///
/// let a = SplitMix64::new(7);
/// let b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64()); // same seed, same sequence
/// let x = a.next_symmetric();
/// assert!((-1.0..1.0).contains(&x));
/// ```
pub trait RandomSource: Send + Sync {
    /// The next value of the sequence.
    fn next_u64(&self) -> u64;

    /// A value in `[0, 1)` with 53 bits of precision.
    fn next_unit(&self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }

    /// A value in `[-1, 1)`: the factor jitter multiplies by.
    fn next_symmetric(&self) -> f64 {
        self.next_unit() * 2.0 - 1.0
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, statistically sound for jitter, and
/// lock-free to share because its state is a counter.
///
/// The n-th value is `mix(seed + n · γ)`, exactly the classic generator. The counter is a
/// pointer-sized atomic (available on every target cano supports, including Cortex-M), so
/// on 32-bit targets the sequence repeats after 2³² values.
#[derive(Debug)]
pub struct SplitMix64 {
    seed: u64,
    drawn: AtomicUsize,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    /// A generator starting from `seed`. Two generators with the same seed yield the same
    /// sequence.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 {
            seed,
            drawn: AtomicUsize::new(0),
        }
    }

    /// The seed this generator started from.
    pub const fn seed(&self) -> u64 {
        self.seed
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&self) -> u64 {
        let n = self.drawn.fetch_add(1, Ordering::Relaxed) as u64;
        mix(self
            .seed
            .wrapping_add(n.wrapping_add(1).wrapping_mul(GAMMA)))
    }
}

/// Where a workflow draws its retry jitter from: its own generator, held inline (the
/// default, so a plain workflow needs no allocation for it), or a source the user
/// injected and may share (kept with the workflow's rarely set settings, so it costs a
/// plain workflow no room). Derefs to the source.
#[derive(Clone, Copy)]
pub(crate) struct JitterSource<'a> {
    /// The workflow's own generator, drawn from unless `shared` is set.
    pub(crate) own: &'a SplitMix64,
    /// An injected source.
    pub(crate) shared: Option<&'a Arc<dyn RandomSource>>,
}

impl<'a> JitterSource<'a> {
    /// The source to draw from.
    pub(crate) fn get(self) -> &'a dyn RandomSource {
        match self.shared {
            Some(shared) => &**shared,
            None => self.own,
        }
    }

    /// An owned source for work that outlives a borrow of the workflow (a spawned split
    /// branch), without an allocation: the injected source itself, or a generator seeded
    /// from the next value of the workflow's own, so branches do not repeat each other's
    /// sequence.
    pub(crate) fn to_owned(self) -> OwnedJitter {
        match self.shared {
            Some(shared) => OwnedJitter::Shared(shared.clone()),
            None => OwnedJitter::Own(self.own.fork()),
        }
    }
}

/// A [`JitterSource`] owned by the work that draws from it (see
/// [`JitterSource::to_owned`]).
pub(crate) enum OwnedJitter {
    /// A fork of the workflow's own generator, held inline.
    Own(SplitMix64),
    /// The injected source.
    Shared(Arc<dyn RandomSource>),
}

impl OwnedJitter {
    /// The source to draw from.
    pub(crate) fn get(&self) -> &dyn RandomSource {
        match self {
            OwnedJitter::Own(own) => own,
            OwnedJitter::Shared(shared) => &**shared,
        }
    }
}

impl SplitMix64 {
    /// A generator seeded from this one's next value: a workflow's clone draws neither
    /// the original's sequence nor a seed from the process-wide one.
    pub(crate) fn fork(&self) -> SplitMix64 {
        SplitMix64::new(self.next_u64())
    }
}

/// SplitMix64's output function.
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fresh seed for a default generator: distinct per call within a process, and the same
/// sequence of seeds in every run of the same program.
pub(crate) fn next_default_seed() -> u64 {
    static CREATED: AtomicUsize = AtomicUsize::new(0);
    let n = CREATED.fetch_add(1, Ordering::Relaxed) as u64;
    mix(n.wrapping_mul(GAMMA) ^ 0x00C0_FFEE_CA70_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64_sequence() {
        // First outputs of SplitMix64 seeded with 1234567 (from the reference C code).
        let g = SplitMix64::new(1_234_567);
        assert_eq!(g.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(g.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn unit_and_symmetric_stay_in_range() {
        let g = SplitMix64::new(0);
        for _ in 0..10_000 {
            let u = g.next_unit();
            assert!((0.0..1.0).contains(&u));
            let s = g.next_symmetric();
            assert!((-1.0..1.0).contains(&s));
        }
    }
}
