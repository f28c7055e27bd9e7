//! cano on embassy: the adapter lands with the embassy work; this crate is `no_std` already.
#![no_std]
