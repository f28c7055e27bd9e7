//! The stack's high-water mark, by painting: at boot the unused stack is filled with a
//! pattern, and at the end the lowest word no longer holding it marks how deep the stack
//! went. A lower bound (a frame may skip words it never writes), but a close one.
//!
//! The stack is cortex-m-rt's: from `_stack_start` (the top of RAM) down to `_stack_end`
//! (the end of the static data, heap included).

use core::ptr::{addr_of, read_volatile, write_volatile};

/// What an unused stack word holds.
const PAINT: u32 = 0xCA5C_ADE5;
/// Left unpainted below the stack pointer at `paint` (the painting loop's own frame).
const MARGIN: usize = 256;

unsafe extern "C" {
    static _stack_start: u32;
    static _stack_end: u32;
}

fn bounds() -> (usize, usize) {
    // Only the symbols' addresses are taken (cortex-m-rt's linker script defines them).
    (
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    )
}

/// Paints the stack below the current stack pointer; call it first thing in `main`.
#[inline(never)]
pub fn paint() {
    let (bottom, _) = bounds();
    let sp: usize;
    // SAFETY: reads the stack pointer; no memory is touched.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp) };
    let mut word = bottom;
    while word + MARGIN < sp {
        // SAFETY: between the end of the statics and below the live stack: unused RAM.
        unsafe { write_volatile(word as *mut u32, PAINT) };
        word += 4;
    }
}

/// The most stack used since [`paint`], in bytes.
pub fn high_water() -> usize {
    let (bottom, top) = bounds();
    let mut word = bottom;
    // SAFETY: reads words of the stack region, which is RAM.
    while word < top && unsafe { read_volatile(word as *const u32) } == PAINT {
        word += 4;
    }
    top - word
}

/// The stack's size, in bytes.
pub fn size() -> usize {
    let (bottom, top) = bounds();
    top - bottom
}
