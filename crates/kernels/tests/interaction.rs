//! Interaction kernels at every ISA level against the scalar oracle: both pair orders, with and
//! without self-interaction, F = 1..=27, d from 1 to 128 (tails of every width), arbitrary pair lists,
//! and the DCN-v2 cross step.

use quantrec_kernels::interaction::{
    InteractionOps, PairOrder, cross_combine, dot_interaction, num_pairs, pairs, scalar,
};
use quantrec_kernels::rng::Rng;
use quantrec_kernels::{Isa, KernelError};

const DIMS: [usize; 15] = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 127, 128];

fn check(
    ops: &InteractionOps,
    feats: &[f32],
    batch: usize,
    f: usize,
    d: usize,
    pr: &[(usize, usize)],
    ctx: &str,
) {
    let width = d + pr.len();
    let mut want = vec![0f32; batch * width];
    scalar::dot_interaction(feats, batch, f, d, pr, &mut want);
    let mut got = vec![f32::NAN; batch * width];
    ops.dot_interaction(feats, batch, f, d, pr, &mut got)
        .unwrap();
    for b in 0..batch {
        let fe = &feats[b * f * d..(b + 1) * f * d];
        assert_eq!(
            &got[b * width..b * width + d],
            &fe[..d],
            "{ctx}: dense part"
        );
        for (p, &(i, j)) in pr.iter().enumerate() {
            let mag: f32 = (0..d).map(|t| (fe[i * d + t] * fe[j * d + t]).abs()).sum();
            let tol = 2.0 * d as f32 * f32::EPSILON * mag + 1e-30;
            let (g, w) = (got[b * width + d + p], want[b * width + d + p]);
            assert!(
                (g - w).abs() <= tol,
                "{ctx}: batch {b} pair ({i},{j}): {g} vs {w}"
            );
        }
    }
}

#[test]
fn dot_interaction_matches_oracle_at_every_level() {
    let mut rng = Rng::new(21);
    for isa in Isa::available() {
        let ops = InteractionOps::for_isa(isa).unwrap();
        for f in 1..=27 {
            for &d in &DIMS {
                let batch = 1 + (f + d) % 3;
                let feats = rng.normal_vec(batch * f * d, 1.0);
                for order in [PairOrder::LowerByRow, PairOrder::UpperByRow] {
                    for self_int in [false, true] {
                        let pr = pairs(f, order, self_int);
                        assert_eq!(pr.len(), num_pairs(f, self_int));
                        let ctx = format!("{isa} f={f} d={d} {order:?} self={self_int}");
                        check(ops, &feats, batch, f, d, &pr, &ctx);
                    }
                }
            }
        }
    }
}

#[test]
fn arbitrary_pairs_extremes_and_empty_batches() {
    let mut rng = Rng::new(22);
    let (f, d) = (9, 20);
    let mut feats = rng.normal_vec(4 * f * d, 1.0);
    feats[5] = 3e18;
    feats[f * d + 3] = -2e-20;
    let pr: Vec<(usize, usize)> = (0..37)
        .map(|_| (rng.below(f as u64) as usize, rng.below(f as u64) as usize))
        .collect();
    for isa in Isa::available() {
        let ops = InteractionOps::for_isa(isa).unwrap();
        check(ops, &feats, 4, f, d, &pr, &format!("{isa} arbitrary"));
        check(ops, &feats, 4, f, d, &[], &format!("{isa} no pairs"));
        check(ops, &[], 0, f, d, &pr, &format!("{isa} empty batch"));
    }
}

#[test]
fn default_entry_point_and_errors() {
    let mut rng = Rng::new(23);
    let (b, f, d) = (3, 27, 16);
    let feats = rng.normal_vec(b * f * d, 1.0);
    let pr = pairs(f, PairOrder::UpperByRow, false);
    let mut out = vec![0f32; b * (d + pr.len())];
    dot_interaction(&feats, b, f, d, &pr, &mut out).unwrap();
    let mut want = vec![0f32; out.len()];
    let active = InteractionOps::for_isa(Isa::active()).unwrap();
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

#[test]
fn cross_combine_is_bit_exact_at_every_level() {
    let mut rng = Rng::new(24);
    for isa in Isa::available() {
        let ops = InteractionOps::for_isa(isa).unwrap();
        for n in [0usize, 1, 7, 8, 15, 16, 17, 100, 479] {
            let (x0, u, x) = (
                rng.normal_vec(n, 1.0),
                rng.normal_vec(n, 1.0),
                rng.normal_vec(n, 1.0),
            );
            let mut want = vec![0f32; n];
            scalar::cross_combine(&x0, &u, &x, &mut want);
            let mut got = vec![f32::NAN; n];
            ops.cross_combine(&x0, &u, &x, &mut got).unwrap();
            assert_eq!(got, want, "{isa} n={n}");
        }
    }
}
