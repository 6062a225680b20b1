//! Interaction kernels at every implementation against the scalar oracle (through
//! [`kernel_suite!`]): both pair orders, with and without self-interaction, F = 1..=27, d from 1 to
//! 129 (tails of every width), arbitrary pair lists, extreme values, and the DCN-v2 cross step;
//! both are row-wise (one output row per sample), so they also get the row-independence property.

use quantrec_kernels::interaction::{
    DotInput, InteractionFamily, PairOrder, cross_combine, dot_interaction, num_pairs, pairs,
    scalar,
};
use quantrec_kernels::registry::KernelFamily;
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise, SIMD_SIZES, extremes};
use quantrec_kernels::{Isa, KernelError, kernel_suite};

const DIMS: [usize; 15] = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 127, 128];

/// One dot-interaction call.
struct Dot {
    feats: Vec<f32>,
    batch: usize,
    f: usize,
    d: usize,
    pairs: Vec<(usize, usize)>,
    what: String,
}

struct DotSuite;

impl OracleSuite for DotSuite {
    type Family = InteractionFamily;
    type Case = Dot;
    type Elem = f32;

    fn cases(rng: &mut Rng) -> Vec<Dot> {
        let mut v = Vec::new();
        for f in 1..=27 {
            for &d in &DIMS {
                let batch = 1 + (f + d) % 3;
                let feats = rng.normal_vec(batch * f * d, 1.0);
                for order in [PairOrder::LowerByRow, PairOrder::UpperByRow] {
                    for self_int in [false, true] {
                        let pr = pairs(f, order, self_int);
                        assert_eq!(pr.len(), num_pairs(f, self_int));
                        v.push(Dot {
                            feats: feats.clone(),
                            batch,
                            f,
                            d,
                            pairs: pr,
                            what: format!("{order:?} self={self_int}"),
                        });
                    }
                }
            }
        }
        // Arbitrary pair lists, no pairs, an empty batch, extreme values.
        let (f, d) = (9, 20);
        let mut feats = rng.normal_vec(4 * f * d, 1.0);
        feats[5] = 3e18;
        feats[f * d + 3] = -2e-20;
        let arbitrary: Vec<(usize, usize)> = (0..37)
            .map(|_| (rng.below(f as u64) as usize, rng.below(f as u64) as usize))
            .collect();
        for (what, batch, pr) in [
            ("arbitrary", 4, arbitrary.clone()),
            ("no pairs", 4, Vec::new()),
            ("empty batch", 0, arbitrary),
        ] {
            v.push(Dot {
                feats: feats[..batch * f * d].to_vec(),
                batch,
                f,
                d,
                pairs: pr,
                what: what.into(),
            });
        }
        for (what, feats) in extremes(rng, 2 * 5 * 33, 1e15) {
            v.push(Dot {
                feats,
                batch: 2,
                f: 5,
                d: 33,
                pairs: pairs(5, PairOrder::LowerByRow, true),
                what: what.into(),
            });
        }
        v
    }

    fn describe(c: &Dot) -> String {
        format!("batch={} f={} d={} {}", c.batch, c.f, c.d, c.what)
    }

    fn reference(c: &Dot) -> Vec<f32> {
        let mut out = vec![0f32; c.batch * (c.d + c.pairs.len())];
        let input = DotInput {
            features: &c.feats,
            batch: c.batch,
            f: c.f,
            d: c.d,
            pairs: &c.pairs,
        };
        scalar::dot_interaction(&input, &mut out);
        out
    }

    fn run(index: usize, c: &Dot) -> Vec<f32> {
        let mut out = vec![f32::NAN; c.batch * (c.d + c.pairs.len())];
        InteractionFamily::get(index)
            .unwrap()
            .dot_interaction(&c.feats, c.batch, c.f, c.d, &c.pairs, &mut out)
            .unwrap();
        out
    }

    /// The dense part is copied exactly; each dot product is within `2·d·ε·Σ|x·y|` of the
    /// oracle's (two summation orders of the same products).
    fn check(c: &Dot, want: &[f32], got: &[f32]) -> Result<(), String> {
        let (f, d) = (c.f, c.d);
        let width = d + c.pairs.len();
        for b in 0..c.batch {
            let fe = &c.feats[b * f * d..(b + 1) * f * d];
            let row = &got[b * width..(b + 1) * width];
            if row[..d]
                .iter()
                .zip(&fe[..d])
                .any(|(g, x)| g.to_bits() != x.to_bits())
            {
                return Err(format!("batch {b}: dense part differs"));
            }
            for (p, &(i, j)) in c.pairs.iter().enumerate() {
                let mag: f32 = (0..d).map(|t| (fe[i * d + t] * fe[j * d + t]).abs()).sum();
                let tol = 2.0 * d as f32 * f32::EPSILON * mag + 1e-30;
                let (g, w) = (row[d + p], want[b * width + d + p]);
                if !((g - w).abs() <= tol || g == w) {
                    return Err(format!("batch {b} pair ({i},{j}): {g} vs {w}"));
                }
            }
        }
        Ok(())
    }
}

impl RowWise for DotSuite {
    fn row_cases(rng: &mut Rng) -> Vec<Dot> {
        [(27, 16), (27, 128), (9, 7), (4, 33)]
            .into_iter()
            .map(|(f, d)| Dot {
                feats: rng.normal_vec(300 * f * d, 1.0),
                batch: 300,
                f,
                d,
                pairs: pairs(f, PairOrder::LowerByRow, false),
                what: "rows".into(),
            })
            .collect()
    }

    fn rows(c: &Dot) -> usize {
        c.batch
    }

    fn take_rows(c: &Dot, start: usize, len: usize) -> Dot {
        let per = c.f * c.d;
        Dot {
            feats: c.feats[start * per..(start + len) * per].to_vec(),
            batch: len,
            f: c.f,
            d: c.d,
            pairs: c.pairs.clone(),
            what: c.what.clone(),
        }
    }

    fn row_len(c: &Dot) -> usize {
        c.d + c.pairs.len()
    }
}

/// One DCN cross step on `rows` rows of `d` values.
struct Cross {
    x0: Vec<f32>,
    u: Vec<f32>,
    x: Vec<f32>,
    d: usize,
    what: &'static str,
}

struct CrossSuite;

impl OracleSuite for CrossSuite {
    type Family = InteractionFamily;
    type Case = Cross;
    type Elem = f32;

    fn cases(rng: &mut Rng) -> Vec<Cross> {
        let mut v = Vec::new();
        for n in SIMD_SIZES.into_iter().chain([100, 479]) {
            v.push(Cross {
                x0: rng.normal_vec(n, 1.0),
                u: rng.normal_vec(n, 1.0),
                x: rng.normal_vec(n, 1.0),
                d: n.max(1),
                what: "random",
            });
        }
        for (what, e) in extremes(rng, 67, 1e19) {
            v.push(Cross {
                x0: e.clone(),
                u: e.iter().rev().copied().collect(),
                x: e,
                d: 67,
                what,
            });
        }
        v
    }

    fn describe(c: &Cross) -> String {
        format!("n={} {}", c.x0.len(), c.what)
    }

    fn reference(c: &Cross) -> Vec<f32> {
        let mut out = vec![0f32; c.x0.len()];
        scalar::cross_combine(&c.x0, &c.u, &c.x, &mut out);
        out
    }

    fn run(index: usize, c: &Cross) -> Vec<f32> {
        let mut out = vec![f32::NAN; c.x0.len()];
        InteractionFamily::get(index)
            .unwrap()
            .cross_combine(&c.x0, &c.u, &c.x, &mut out)
            .unwrap();
        out
    }
}

impl RowWise for CrossSuite {
    fn row_cases(rng: &mut Rng) -> Vec<Cross> {
        [13usize, 64, 479]
            .into_iter()
            .map(|d| Cross {
                x0: rng.normal_vec(300 * d, 1.0),
                u: rng.normal_vec(300 * d, 1.0),
                x: rng.normal_vec(300 * d, 1.0),
                d,
                what: "rows",
            })
            .collect()
    }

    fn rows(c: &Cross) -> usize {
        c.x0.len() / c.d
    }

    fn take_rows(c: &Cross, start: usize, len: usize) -> Cross {
        let r = start * c.d..(start + len) * c.d;
        Cross {
            x0: c.x0[r.clone()].to_vec(),
            u: c.u[r.clone()].to_vec(),
            x: c.x[r].to_vec(),
            d: c.d,
            what: c.what,
        }
    }

    fn row_len(c: &Cross) -> usize {
        c.d
    }
}

kernel_suite!(dot: DotSuite, rows);
kernel_suite!(cross: CrossSuite, rows);

#[test]
fn default_entry_point_and_errors() {
    let mut rng = Rng::new(23);
    let (b, f, d) = (3, 27, 16);
    let feats = rng.normal_vec(b * f * d, 1.0);
    let pr = pairs(f, PairOrder::UpperByRow, false);
    let mut out = vec![0f32; b * (d + pr.len())];
    dot_interaction(&feats, b, f, d, &pr, &mut out).unwrap();
    let mut want = vec![0f32; out.len()];
    let active = InteractionFamily::for_level(Isa::active()).unwrap();
    active
        .dot_interaction(&feats, b, f, d, &pr, &mut want)
        .unwrap();
    assert_eq!(out, want);
    assert!(matches!(
        dot_interaction(&feats, b, f, d, &[(0, 27)], &mut out),
        Err(KernelError::Shape { .. })
    ));
    assert!(matches!(
        dot_interaction(&feats[1..], b, f, d, &pr, &mut out),
        Err(KernelError::Shape { .. })
    ));
    assert!(matches!(
        dot_interaction(&feats, b, f, d, &pr, &mut out[1..]),
        Err(KernelError::Shape { .. })
    ));
    assert!(matches!(
        cross_combine(&[1.0; 3], &[1.0; 2], &[1.0; 3], &mut [0.0; 3]),
        Err(KernelError::Shape { .. })
    ));
}
