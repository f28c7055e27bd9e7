//! Talking to the host through semihosting: its clock, and the exit code.

use cortex_m_semihosting::nr;

/// Milliseconds on the host's monotonic clock (semihosting SYS_ELAPSED / SYS_TICKFREQ).
///
/// SYS_CLOCK would be QEMU's CPU time, not wall time. Returns `None` if the host does not
/// implement these calls.
pub fn elapsed_ms() -> Option<u64> {
    let mut ticks = [0u32; 2];
    // A raw pointer, so the compiler knows the host writes into `ticks`.
    // SAFETY: SYS_ELAPSED writes two words to the address it is given.
    let status =
        unsafe { cortex_m_semihosting::syscall1(nr::ELAPSED, ticks.as_mut_ptr() as usize) };
    // SAFETY: SYS_TICKFREQ takes no argument.
    let per_second = unsafe { cortex_m_semihosting::syscall1(nr::TICKFREQ, 0) } as u64;
    if status != 0 || per_second == 0 {
        return None;
    }
    let ticks = (u64::from(ticks[1]) << 32) | u64::from(ticks[0]);
    Some((u128::from(ticks) * 1000 / u128::from(per_second)) as u64)
}

/// Ends the emulation; QEMU exits with `code` (semihosting SYS_EXIT_EXTENDED).
///
/// `cortex_m_semihosting::debug::exit` can only say success or failure; SYS_EXIT_EXTENDED
/// carries any code, so a panic (101) is told apart from a failed check (1).
pub fn exit(code: u32) -> ! {
    const SYS_EXIT_EXTENDED: usize = 0x20;
    const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, code];
    // SAFETY: SYS_EXIT_EXTENDED reads the two-word block; it does not return under QEMU.
    unsafe { cortex_m_semihosting::syscall(SYS_EXIT_EXTENDED, &block) };
    loop {
        cortex_m::asm::bkpt();
    }
}
