//! A `defmt` global logger that keeps the last 256 encoded bytes in RAM and sends them
//! nowhere: the firmware links cano's defmt logs (feature `defmt`) with a real encoder and a
//! real write path, so their flash cost can be measured without a probe or a host decoder.
//! An application would link a transport instead (RTT, semihosting, a UART).

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

const SIZE: usize = 256;

static RING: [AtomicU8; SIZE] = [const { AtomicU8::new(0) }; SIZE];
static HEAD: AtomicUsize = AtomicUsize::new(0);
static TAKEN: AtomicBool = AtomicBool::new(false);
static ENCODER: critical_section::Mutex<core::cell::RefCell<defmt::Encoder>> =
    critical_section::Mutex::new(core::cell::RefCell::new(defmt::Encoder::new()));

#[defmt::global_logger]
struct RingLogger;

fn push(bytes: &[u8]) {
    for &byte in bytes {
        let at = HEAD.fetch_add(1, Ordering::Relaxed) % SIZE;
        RING[at].store(byte, Ordering::Relaxed);
    }
}

// SAFETY: defmt's contract: `acquire`/`release` bracket one frame and are not re-entered
// (TAKEN guards it, and the frame is written inside one critical section per call).
unsafe impl defmt::Logger for RingLogger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt logger re-entered");
        }
        critical_section::with(|cs| ENCODER.borrow_ref_mut(cs).start_frame(push));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        critical_section::with(|cs| ENCODER.borrow_ref_mut(cs).end_frame(push));
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        critical_section::with(|cs| ENCODER.borrow_ref_mut(cs).write(bytes, push));
    }
}

/// How many encoded bytes cano's logs have produced so far.
pub fn bytes_logged() -> usize {
    HEAD.load(Ordering::Relaxed)
}
