//! The oracle test harness every kernel family shares: [`kernel_suite!`](crate::kernel_suite).
//!
//! Modelled on memchr's naive-oracle tests: a family describes **one table of cases** (random data,
//! the awkward shapes of [`SIMD_SIZES`], extreme values from [`extremes`]) and how to run a case on
//! its plain scalar reference and on implementation `i` of its [`KernelFamily`]; the harness runs
//! every case against every implementation this CPU has (so at every `QUANTREC_ISA` level) and
//! compares bit for bit, or within the tolerance the family states in [`OracleSuite::check`].
//!
//! Row-wise families (GEMMs, interaction, embedding bags) also implement [`RowWise`]: output row
//! `i` of an `m`-row call must be bit-identical to the same row computed alone (`m = 1`) and inside
//! batches of every size in [`ROW_COUNTS`], at every implementation ([`check_rows`]).
//!
//! ```ignore
//! struct Cross;
//! impl OracleSuite for Cross { /* cases, reference, run */ }
//! impl RowWise for Cross { /* rows, take_rows, row_len */ }
//! quantrec_kernels::kernel_suite!(cross: Cross, rows);
//! ```

use crate::registry::KernelFamily;
use crate::rng::Rng;

/// Lengths around every SIMD width the kernels use (8, 16, 32 and 64 lanes or columns), plus 0 and 1.
pub const SIMD_SIZES: [usize; 20] = [
    0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129,
];

/// Batch sizes the row-independence property is checked at (the largest is the whole case).
pub const ROW_COUNTS: [usize; 6] = [1, 7, 16, 17, 64, 300];

/// An output element compared by its bits (`-0.0 != 0.0`, NaNs by payload).
pub trait Bits: Copy + std::fmt::Debug {
    /// The element's bits, widened.
    fn bits(self) -> u64;
}

impl Bits for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Bits for i32 {
    fn bits(self) -> u64 {
        u64::from(self as u32)
    }
}

impl Bits for u32 {
    fn bits(self) -> u64 {
        u64::from(self)
    }
}

impl Bits for u8 {
    fn bits(self) -> u64 {
        u64::from(self)
    }
}

impl Bits for (f32, f32) {
    fn bits(self) -> u64 {
        (u64::from(self.0.to_bits()) << 32) | u64::from(self.1.to_bits())
    }
}

/// One family's oracle suite: a table of cases, the scalar reference, and how to run a case on
/// one implementation.
pub trait OracleSuite {
    /// The registry family whose implementations are tested.
    type Family: KernelFamily;
    /// One test case (inputs and options).
    type Case;
    /// One output element.
    type Elem: Bits;

    /// The table of cases (random data, awkward shapes, extreme values).
    fn cases(rng: &mut Rng) -> Vec<Self::Case>;

    /// A short description of a case for failure messages.
    fn describe(case: &Self::Case) -> String;

    /// The plain scalar reference's output.
    fn reference(case: &Self::Case) -> Vec<Self::Elem>;

    /// The output of implementation `index` of [`OracleSuite::Family`].
    fn run(index: usize, case: &Self::Case) -> Vec<Self::Elem>;

    /// Compares an implementation's output with the reference; the default is bit-exact.
    fn check(case: &Self::Case, want: &[Self::Elem], got: &[Self::Elem]) -> Result<(), String> {
        let _ = case;
        exact(want, got)
    }
}

/// A row-wise family: every output row depends only on its own input row.
pub trait RowWise: OracleSuite {
    /// The cases the property is checked on (each with at least 300 rows, see [`ROW_COUNTS`]).
    fn row_cases(rng: &mut Rng) -> Vec<Self::Case>;

    /// Number of rows (batch size, bags) of a case.
    fn rows(case: &Self::Case) -> usize;

    /// The case made of rows `start..start + len` of `case`, every other input unchanged.
    fn take_rows(case: &Self::Case, start: usize, len: usize) -> Self::Case;

    /// Output elements per row.
    fn row_len(case: &Self::Case) -> usize;
}

/// Bit-exact comparison: `Ok` or the first differing element.
pub fn exact<E: Bits>(want: &[E], got: &[E]) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    match want.iter().zip(got).position(|(w, g)| w.bits() != g.bits()) {
        None => Ok(()),
        Some(i) => Err(format!("element {i}: got {:?}, want {:?}", got[i], want[i])),
    }
}

/// Runs every case of `S` on every implementation this CPU runs against the reference.
pub fn check_oracle<S: OracleSuite>(seed: u64) {
    let cases = S::cases(&mut Rng::new(seed));
    assert!(!cases.is_empty(), "{}: no cases", S::Family::NAME);
    let imps: Vec<_> = S::Family::available().collect();
    for (c, case) in cases.iter().enumerate() {
        let want = S::reference(case);
        for &(index, imp) in &imps {
            let got = S::run(index, case);
            if let Err(e) = S::check(case, &want, &got) {
                panic!(
                    "{} {imp} case {c} ({}): {e}",
                    S::Family::NAME,
                    S::describe(case)
                );
            }
        }
    }
}

/// Checks the row-independence property of `S` at every implementation: each row of a 300-row
/// case equals the same row run alone and inside windows of every size in [`ROW_COUNTS`].
pub fn check_rows<S: RowWise>(seed: u64) {
    let cases = S::row_cases(&mut Rng::new(seed));
    assert!(!cases.is_empty(), "{}: no row cases", S::Family::NAME);
    for case in &cases {
        let rows = S::rows(case);
        let width = S::row_len(case);
        assert!(
            rows >= ROW_COUNTS[ROW_COUNTS.len() - 1],
            "row cases need 300 rows"
        );
        for (index, imp) in S::Family::available() {
            let full = S::run(index, case);
            assert_eq!(full.len(), rows * width);
            for m in ROW_COUNTS {
                // Windows of m rows at several offsets (every row for m = 1, a few for the rest).
                let starts: Vec<usize> = if m == 1 {
                    (0..rows).collect()
                } else {
                    let last = rows - m;
                    let mut s = vec![0, last / 3, (last / 2 + 1).min(last), last];
                    s.dedup();
                    s
                };
                for start in starts {
                    let sub = S::take_rows(case, start, m);
                    let got = S::run(index, &sub);
                    let want = &full[start * width..(start + m) * width];
                    if let Err(e) = exact(want, &got) {
                        panic!(
                            "{} {imp} ({}): rows {start}..{} computed as a batch of {m} differ \
                             from the same rows in a batch of {rows}: {e}",
                            S::Family::NAME,
                            S::describe(case),
                            start + m
                        );
                    }
                }
            }
        }
    }
}

/// Vectors of `len` values that stress a kernel: random normal, all equal, all zero, huge and tiny
/// magnitudes mixed, and alternating signs near `±limit` (the largest magnitude the caller's
/// kernel accepts).
pub fn extremes(rng: &mut Rng, len: usize, limit: f32) -> Vec<(&'static str, Vec<f32>)> {
    let normal = rng.normal_vec(len, 1.0);
    let mixed = (0..len)
        .map(|i| match i % 4 {
            0 => limit * 0.5,
            1 => -1e-30,
            2 => 1e-3 * rng.normal() as f32,
            _ => -limit * 0.25,
        })
        .collect();
    let alternating = (0..len)
        .map(|i| if i % 2 == 0 { limit } else { -limit })
        .collect();
    vec![
        ("normal", normal),
        ("all equal", vec![3.25; len]),
        ("all zero", vec![0.0; len]),
        ("mixed magnitudes", mixed),
        ("alternating extremes", alternating),
    ]
}

/// Generates the oracle suite (and, with `rows`, the row-independence property) of an
/// [`OracleSuite`] as `#[test]` functions in a module `name`:
///
/// ```ignore
/// quantrec_kernels::kernel_suite!(dot: DotSuite, rows);
/// quantrec_kernels::kernel_suite!(codes: CodesSuite);
/// ```
#[macro_export]
macro_rules! kernel_suite {
    ($name:ident: $suite:ty) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn matches_the_oracle_at_every_implementation() {
                $crate::testing::check_oracle::<$suite>(0x5eed ^ line!() as u64);
            }
        }
    };
    ($name:ident: $suite:ty, rows) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn matches_the_oracle_at_every_implementation() {
                $crate::testing::check_oracle::<$suite>(0x5eed ^ line!() as u64);
            }

            #[test]
            fn rows_are_independent_of_the_batch() {
                $crate::testing::check_rows::<$suite>(0xba7c4 ^ line!() as u64);
            }
        }
    };
}
