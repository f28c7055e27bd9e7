//! Shared helpers for cano's conformance suite, differential tests and benchmarks.
