//! Shared helpers for cano's conformance suite, differential tests and benchmarks.

pub mod harness;

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
