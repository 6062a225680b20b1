//! Instruction-set levels, detected once and optionally capped by `QUANTREC_ISA`.
//!
//! Levels are ordered: [`Isa::Scalar`] < [`Isa::Avx2`] (+FMA, F16C) < [`Isa::Avx512`] (F, BW, VL, DQ)
//! < [`Isa::Vnni`] (AVX512-VNNI; AVX512-BF16 is used where present, see [`has_avx512_bf16`]).
//! Each kernel family builds an ops table for a level by starting from the scalar oracle and overriding
//! entries for every level up to the requested one ("richest ISA last").

use std::sync::OnceLock;

use crate::{KernelError, Result};

/// An instruction-set level a kernel can be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, no SIMD intrinsics: the oracle every other level is tested against.
    Scalar,
    /// AVX2 with FMA and F16C (256-bit).
    Avx2,
    /// AVX-512 F, BW, VL and DQ (512-bit).
    Avx512,
    /// AVX-512 plus AVX512-VNNI (`vpdpbusd`).
    Vnni,
}

/// The name of the environment variable that caps the ISA level.
pub const ISA_ENV: &str = "QUANTREC_ISA";
/// Environment variable that turns AMX off (`0`, `off`, `false` or `no`): the AVX512-VNNI and
/// AVX512-BF16 kernels then run where the CPU has AMX, as on a CPU without it.
pub const AMX_ENV: &str = "QUANTREC_AMX";

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Vnni];

    /// The lower-case name used by `QUANTREC_ISA` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Vnni => "vnni",
        }
    }

    /// Parses a level name (`scalar`, `avx2`, `avx512`, `vnni`), case-insensitively.
    pub fn parse(s: &str) -> Result<Isa> {
        let lower = s.trim().to_ascii_lowercase();
        Isa::ALL
            .into_iter()
            .find(|l| l.name() == lower)
            .ok_or_else(|| KernelError::UnknownIsa {
                name: s.to_string(),
            })
    }

    /// The richest level this CPU supports (detected once, cached).
    pub fn detected() -> Isa {
        static DETECTED: OnceLock<Isa> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// The level requested through `QUANTREC_ISA`, checked against the CPU; the detected level when
    /// the variable is unset or empty. Asking for a level the CPU lacks, or an unknown name, is an error.
    pub fn from_env() -> Result<Isa> {
        match std::env::var(ISA_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                let wanted = Isa::parse(&v)?;
                let detected = Isa::detected();
                if wanted > detected {
                    Err(KernelError::IsaUnavailable {
                        requested: wanted,
                        detected,
                    })
                } else {
                    Ok(wanted)
                }
            }
            _ => Ok(Isa::detected()),
        }
    }

    /// The level every dispatching kernel uses: [`Isa::from_env`] when it is valid, otherwise the
    /// lower of the request and the detected level (programs should call [`Isa::from_env`] at start-up
    /// to report a bad request; the binary does). Cached after the first call.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| match Isa::from_env() {
            Ok(isa) => isa,
            Err(KernelError::IsaUnavailable { detected, .. }) => detected,
            Err(_) => Isa::detected(),
        })
    }

    /// Every level this CPU can run, lowest first (what the test harness iterates over).
    pub fn available() -> impl Iterator<Item = Isa> {
        let top = Isa::detected();
        Isa::ALL.into_iter().filter(move |l| *l <= top)
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// True when the CPU has AVX512-BF16 (`vdpbf16ps`); only consulted at level [`Isa::Vnni`].
pub fn has_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static BF16: OnceLock<bool> = OnceLock::new();
        *BF16.get_or_init(|| std::arch::is_x86_feature_detected!("avx512bf16"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the CPU has 256-bit AVX-VNNI (`vpdpbusd` on ymm with VEX encoding).
pub fn has_avx_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVXVNNI: OnceLock<bool> = OnceLock::new();
        *AVXVNNI.get_or_init(|| std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A one-line description of the CPU features in use, for `bench` and `inspect`.
pub fn describe() -> String {
    let active = Isa::active();
    let mut extra = Vec::new();
    if active >= Isa::Vnni && has_avx512_bf16() {
        extra.push("avx512bf16");
    }
    if has_avx_vnni() {
        extra.push("avxvnni");
    }
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(" (+{})", extra.join(", "))
    };
    format!("isa {active}{extra}; detected {}", Isa::detected())
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    use std::arch::is_x86_feature_detected as has;
    let avx2 = has!("avx2") && has!("fma") && has!("f16c");
    let avx512 =
        avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq");
    let vnni = avx512 && has!("avx512vnni");
    if vnni {
        Isa::Vnni
    } else if avx512 {
        Isa::Avx512
    } else if avx2 {
        Isa::Avx2
    } else {
        Isa::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Scalar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in Isa::ALL {
            assert_eq!(Isa::parse(l.name()).unwrap(), l);
            assert_eq!(Isa::parse(&l.name().to_uppercase()).unwrap(), l);
        }
        assert!(matches!(
            Isa::parse("sse9"),
            Err(KernelError::UnknownIsa { .. })
        ));
    }

    #[test]
    fn available_is_ordered_and_starts_with_scalar() {
        let levels: Vec<_> = Isa::available().collect();
        assert_eq!(levels[0], Isa::Scalar);
        assert!(levels.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(*levels.last().unwrap(), Isa::detected());
        assert!(Isa::active() <= Isa::detected());
    }
}
