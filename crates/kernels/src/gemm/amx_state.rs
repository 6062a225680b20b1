//! AMX tile state: whether this process may execute AMX instructions at all.
//!
//! Shared by the bf16 (`tdpbf16ps`) and int8 (`tdpbusd`) kernels, which each check their own CPUID
//! bit on top. The tile state is usable when the CPU has AMX-TILE, the OS has enabled the tile
//! registers in XCR0 (bits 17–18, readable because OSXSAVE is set) and, on Linux, grants this process
//! the tile-data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)`). Checked and requested once.

use std::arch::asm;
use std::arch::x86_64::{__cpuid, __cpuid_count};
use std::sync::OnceLock;

/// CPUID leaf 7 EDX bit of AMX-BF16.
pub(crate) const AMX_BF16: u32 = 1 << 22;
/// CPUID leaf 7 EDX bit of AMX-INT8.
pub(crate) const AMX_INT8: u32 = 1 << 25;

/// True when the CPU has the AMX feature bit `feature` (one of [`AMX_BF16`], [`AMX_INT8`]), the
/// tile state is enabled by the OS and granted to this process, and `QUANTREC_AMX` does not turn
/// AMX off.
pub(crate) fn usable(feature: u32) -> bool {
    allowed() && __cpuid_count(7, 0).edx & feature != 0 && tile_state()
}

/// Whether `QUANTREC_AMX` ([`crate::isa::AMX_ENV`]) leaves AMX on: unset, or anything but
/// `0` / `off` / `false` / `no`. Turning it off runs the AVX512-VNNI / AVX512-BF16 kernels on an
/// AMX machine, to measure what a CPU without AMX would do.
fn allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        std::env::var(crate::isa::AMX_ENV).map_or(true, |v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "off" | "false" | "no"
            )
        })
    })
}

fn tile_state() -> bool {
    static STATE: OnceLock<bool> = OnceLock::new();
    *STATE.get_or_init(|| {
        let amx_tile = __cpuid_count(7, 0).edx & (1 << 24) != 0;
        // Leaf 1 ECX bit 27 is OSXSAVE (xgetbv usable).
        let osxsave = __cpuid(1).ecx & (1 << 27) != 0;
        if !(amx_tile && osxsave) {
            return false;
        }
        let (lo, _hi): (u32, u32);
        // SAFETY: OSXSAVE is set, so xgetbv with ecx = 0 (XCR0) is permitted in user mode.
        unsafe {
            asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") _hi, options(nomem, nostack, preserves_flags))
        };
        lo & (0b11 << 17) == 0b11 << 17 && request_permission()
    })
}

#[cfg(target_os = "linux")]
fn request_permission() -> bool {
    const SYS_ARCH_PRCTL: usize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    let ret: isize;
    // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) only changes this process's permitted
    // extended state and reads no memory; the syscall clobbers rcx and r11 as declared.
    unsafe {
        asm!("syscall",
            inlateout("rax") SYS_ARCH_PRCTL as isize => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _, lateout("r11") _,
            options(nostack))
    };
    ret == 0
}

#[cfg(not(target_os = "linux"))]
fn request_permission() -> bool {
    false
}
