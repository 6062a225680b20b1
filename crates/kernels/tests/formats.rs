//! Byte-for-byte agreement with PyTorch 2.15 / FBGEMM on every tensor of
//! `shared/fixtures/rowwise_formats.safetensors`, at every ISA level of this CPU.

use std::collections::BTreeMap;

use quantrec_kernels::Isa;
use quantrec_kernels::formats::{
    QuantizeOptions, TableFormat, TableRef, dequantize_table, quantize_table_with, row_scale_bias,
};
use quantrec_testkit::Tensor;

const DIMS: [usize; 6] = [4, 8, 16, 32, 64, 128];

fn fixture() -> BTreeMap<String, Tensor> {
    let path = quantrec_testkit::fixture(env!("CARGO_MANIFEST_DIR"), "rowwise_formats.safetensors");
    quantrec_testkit::tensors(&path)
}

/// Panics with the first differing row and byte.
fn assert_same_bytes(what: &str, ours: &[u8], theirs: &[u8], row_bytes: usize) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    if let Some(i) = ours.iter().zip(theirs).position(|(a, b)| a != b) {
        let r = i / row_bytes;
        panic!(
            "{what}: first difference at row {r}, byte {} (ours {}, PyTorch {});\n ours row {:?}\n PyTorch  {:?}",
            i % row_bytes,
            ours[i],
            theirs[i],
            &ours[r * row_bytes..(r + 1) * row_bytes],
            &theirs[r * row_bytes..(r + 1) * row_bytes],
        );
    }
}

/// `(fixture prefix, format, greedy)` of every packed tensor in the fixture.
const CASES: [(&str, TableFormat, bool); 5] = [
    ("byte", TableFormat::Fused8, false),
    ("nbit4", TableFormat::Fused4, false),
    ("nbit2", TableFormat::Fused2, false),
    ("nbit4opt", TableFormat::Fused4, true),
    ("nbit2opt", TableFormat::Fused2, true),
];

#[test]
fn quantized_tables_match_pytorch_at_every_isa_level() {
    let t = fixture();
    let mut checked = 0;
    for isa in Isa::available() {
        for d in DIMS {
            let w = &t[&format!("w_d{d}")];
            let rows = w.shape[0];
            assert_eq!(w.shape[1], d);
            let src = w.f32s();
            for (prefix, format, greedy) in CASES {
                let name = format!("{prefix}_d{d}");
                let Some(expected) = t.get(&name) else {
                    continue;
                };
                let row_bytes = format.row_bytes(d);
                assert_eq!(expected.shape, [rows, row_bytes], "{name} shape");
                let opts = QuantizeOptions {
                    greedy,
                    refine: false,
                    name: &name,
                };
                let mut ours = vec![0u8; rows * row_bytes];
                quantize_table_with(isa, &src, rows, d, format, &opts, &mut ours).unwrap();
                assert_same_bytes(
                    &format!("{name} at {isa}"),
                    &ours,
                    &expected.bytes,
                    row_bytes,
                );
                checked += 1;
            }
        }
    }
    // Every D has byte, nbit4, nbit2 and both opt variants in the fixture.
    assert_eq!(checked, 30 * Isa::available().count(), "tensors checked");
}

#[test]
fn dequantized_fixture_tables_stay_within_half_a_step() {
    let t = fixture();
    for d in DIMS {
        let src = t[&format!("w_d{d}")].f32s();
        for (prefix, format, greedy) in CASES {
            if greedy {
                continue; // clipped values may lie outside the range
            }
            let Some(packed) = t.get(&format!("{prefix}_d{d}")) else {
                continue;
            };
            let rows = packed.shape[0];
            let table = TableRef::new(format, rows, d, &packed.bytes).unwrap();
            let mut out = vec![0f32; rows * d];
            dequantize_table(&table, &mut out).unwrap();
            for r in 0..rows {
                let (scale, _) = row_scale_bias(format, d, table.row(r));
                for c in 0..d {
                    let (x, y) = (src[r * d + c], out[r * d + c]);
                    // Half a step, plus the f16 rounding of the bias and the scale's effect on the top code.
                    let tol = scale * 0.5 + x.abs().max(y.abs()) * 2e-3 + 1e-6;
                    assert!(
                        (x - y).abs() <= tol || scale == 1.0,
                        "{prefix}_d{d} row {r} col {c}: {x} decoded as {y} (scale {scale})"
                    );
                }
            }
        }
    }
}

/// The branch-free half conversion the row decoders use equals `half`'s for every one of the
/// 65,536 bit patterns (NaNs: NaN with the same payload and sign).
#[test]
fn f16_bits_to_f32_is_exact_for_every_half() {
    for h in 0..=u16::MAX {
        let ours = quantrec_kernels::formats::f16_bits_to_f32(h);
        let want = half::f16::from_bits(h).to_f32();
        if want.is_nan() {
            assert!(ours.is_nan(), "{h:#06x}: {ours}");
            assert_eq!(
                ours.to_bits() & 0x803f_ffff,
                want.to_bits() & 0x803f_ffff,
                "{h:#06x}"
            );
        } else {
            assert_eq!(ours.to_bits(), want.to_bits(), "{h:#06x}: {ours} vs {want}");
        }
    }
}
