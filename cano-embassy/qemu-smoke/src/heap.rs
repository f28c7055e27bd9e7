//! The global allocator: embedded-alloc's linked-list heap, remembering its peak use.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

/// A heap that records the most it ever had in use, to size the heap from measurements.
pub struct PeakHeap {
    heap: LlffHeap,
    peak: AtomicUsize,
}

impl PeakHeap {
    pub const fn empty() -> Self {
        PeakHeap {
            heap: LlffHeap::empty(),
            peak: AtomicUsize::new(0),
        }
    }

    /// Hands the heap its memory (called by `embedded_alloc::init!`).
    ///
    /// # Safety
    ///
    /// Once, before any allocation, with memory used for nothing else.
    pub unsafe fn init(&self, start_addr: usize, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.heap.init(start_addr, size) }
    }

    /// Bytes in use now.
    pub fn used(&self) -> usize {
        self.heap.used()
    }

    /// The most bytes in use at once since the start, or since the last [`Self::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts measuring the peak afresh from what is in use now.
    pub fn reset_peak(&self) {
        self.peak.store(self.used(), Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to LlffHeap, which upholds GlobalAlloc's contract.
unsafe impl GlobalAlloc for PeakHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let block = unsafe { self.heap.alloc(layout) };
        if !block.is_null() {
            self.peak.fetch_max(self.heap.used(), Ordering::Relaxed);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.heap.dealloc(block, layout) }
    }
}
