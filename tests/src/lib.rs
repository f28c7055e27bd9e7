//! Shared helpers for cano's conformance suite, differential tests and benchmarks.

pub mod crash;
pub mod fleet;
pub mod harness;
pub mod persist_conformance;
pub mod pg_server;
pub mod tcp_proxy;

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
