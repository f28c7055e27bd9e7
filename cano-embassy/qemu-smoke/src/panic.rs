//! The panic handler: reports the panic over semihosting and exits QEMU with 101.

use cortex_m_semihosting::hprintln;

use crate::host;

/// By default the message is not printed: formatting it keeps every panic message in the
/// program, with the `Debug` code of whatever they print (about 25 KiB of flash here).
/// Build with `--features panic-message` to see it.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if cfg!(feature = "panic-message") {
        hprintln!("PANIC: {}", info);
    } else {
        hprintln!("PANIC (build with --features panic-message to see where and why)");
    }
    host::exit(101);
}
