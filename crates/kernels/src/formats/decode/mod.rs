//! Whole-row decoding to f32 for every [`TableFormat`]; [`crate::formats::dequantize_row`] is the
//! scalar oracle, and every level returns its exact bits (fused values are `fma(code, scale, bias)`,
//! one rounding, as the oracle's `mul_add`).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

use std::sync::OnceLock;

use super::{TableFormat, dequantize_row, row_code, row_scale_bias};
use crate::{Isa, KernelError, Result};

/// `(format, stored row, out)`; `out.len()` is the row dimension.
type DecodeFn = fn(TableFormat, &[u8], &mut [f32]);

/// The row decoders of one ISA level.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOps {
    /// The level this table was built for.
    pub isa: Isa,
    decode: DecodeFn,
}

impl DecodeOps {
    /// The table for `isa`: the scalar oracle, overridden level by level up to `isa`. Asking for a
    /// level this CPU lacks is an error.
    pub fn for_isa(isa: Isa) -> Result<DecodeOps> {
        let detected = Isa::detected();
        if isa > detected {
            return Err(KernelError::IsaUnavailable {
                requested: isa,
                detected,
            });
        }
        #[allow(unused_mut)]
        let mut ops = DecodeOps {
            isa,
            decode: dequantize_row,
        };
        #[cfg(target_arch = "x86_64")]
        {
            if isa >= Isa::Avx2 {
                ops.decode = avx2::decode;
            }
            if isa >= Isa::Avx512 {
                ops.decode = avx512::decode;
            }
        }
        Ok(ops)
    }

    /// The table for [`Isa::active`], built once.
    pub fn active() -> &'static DecodeOps {
        static OPS: OnceLock<DecodeOps> = OnceLock::new();
        OPS.get_or_init(|| DecodeOps::for_isa(Isa::active()).expect("the active level is detected"))
    }

    /// Decodes one stored row of `format` into `out` (`out.len()` values); `row` must hold
    /// `format.row_bytes(out.len())` bytes.
    pub fn decode(&self, format: TableFormat, row: &[u8], out: &mut [f32]) -> Result<()> {
        format.check_dim(out.len())?;
        let expected = format.row_bytes(out.len());
        if row.len() != expected {
            return Err(KernelError::Shape {
                what: format!("{format} row of dimension {}", out.len()),
                expected,
                found: row.len(),
            });
        }
        (self.decode)(format, row, out);
        Ok(())
    }

    /// [`DecodeOps::decode`] for callers that validated the table (a [`crate::formats::TableRef`]).
    #[inline]
    pub(crate) fn decode_checked(&self, format: TableFormat, row: &[u8], out: &mut [f32]) {
        assert_eq!(row.len(), format.row_bytes(out.len()), "row length");
        (self.decode)(format, row, out);
    }
}

/// The oracle for elements `from..` of a fused row (the vector kernels' tails).
pub(crate) fn fused_tail(format: TableFormat, row: &[u8], out: &mut [f32], from: usize) {
    let (scale, bias) = row_scale_bias(format, out.len(), row);
    for (i, o) in out.iter_mut().enumerate().skip(from) {
        *o = f32::from(row_code(format, row, i)).mul_add(scale, bias);
    }
}
