//! Embedding bags refuse bad input with typed errors, the same at every implementation as the
//! scalar oracle: bad ids (naming table, bag and id), remaps, bags, weights, outputs and tables,
//! batched calls (the first bad table and bag), and kernels stop at the first bad bag after
//! writing exactly the oracle's output for the bags before it.

mod bag_cases;

use bag_cases::{Case, Encoding, Owned, SENTINEL, assert_same, random_table};
use quantrec_kernels::embedding_bag::{
    Bags, EmbeddingBag, Indices, Lookup, Parallelism, Pooling, TableBag, pool_scalar,
    pool_tables_with_isa, pool_with_isa,
};
use quantrec_kernels::formats::{TableFormat, TableRef};
use quantrec_kernels::rng::Rng;
use quantrec_kernels::{Isa, KernelError};

fn f32_table(rows: usize, dim: usize) -> Vec<u8> {
    random_table(TableFormat::F32, rows, dim, &mut Rng::new(99))
}

/// Runs a call at every level and the oracle, and demands the same error from all.
fn expect_error(
    bag: &EmbeddingBag<'_>,
    lookup: &Lookup<'_>,
    out_len: usize,
    stride: usize,
) -> KernelError {
    let mut out = vec![0f32; out_len];
    let want =
        pool_scalar(bag, lookup, 3, &mut out, stride).expect_err("oracle accepted bad input");
    for isa in Isa::available() {
        let got = pool_with_isa(isa, bag, lookup, 3, &mut out, stride)
            .expect_err("kernel accepted bad input");
        assert_eq!(got, want, "{isa}");
    }
    want
}

fn simple<'a>(ids: &'a [i64], offsets: &'a [i64]) -> Lookup<'a> {
    Lookup {
        indices: Indices::I64(ids),
        bags: Bags::Offsets(Indices::I64(offsets)),
        num_bags: offsets.len(),
        per_sample_weights: None,
    }
}

#[test]
fn bad_ids_name_table_bag_and_id() {
    let data = f32_table(10, 16);
    let table = TableRef::new(TableFormat::F32, 10, 16, &data).unwrap();
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Sum,
        remap: None,
    };
    for (bad, bag_index) in [(-1i64, 1usize), (10, 2), (i64::MAX, 0), (i64::MIN, 2)] {
        let mut ids = vec![1i64, 2, 3, 4, 5, 6];
        let pos = match bag_index {
            0 => 1,
            1 => 3,
            _ => 5,
        };
        ids[pos] = bad;
        let offsets = [0i64, 2, 4];
        let err = expect_error(&bag, &simple(&ids, &offsets), 48, 16);
        assert_eq!(
            err,
            KernelError::IdOutOfRange {
                table: 3,
                bag: bag_index,
                id: bad,
                rows: 10
            }
        );
    }
    // i32 ids too.
    let ids = [0i32, 9, -7];
    let lookup = Lookup {
        indices: Indices::I32(&ids),
        bags: Bags::Lengths(Indices::I32(&[2, 1])),
        num_bags: 2,
        per_sample_weights: None,
    };
    let err = expect_error(&bag, &lookup, 32, 16);
    assert!(
        matches!(err, KernelError::IdOutOfRange { bag: 1, id: -7, .. }),
        "{err}"
    );
}

#[test]
fn bad_remaps_are_errors() {
    let data = f32_table(4, 8);
    let table = TableRef::new(TableFormat::F32, 4, 8, &data).unwrap();
    let remap = [0i32, -1, 3, 4, -2];
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Mean,
        remap: Some(&remap),
    };
    let offsets = [0i64, 2];
    // Past the remap.
    let err = expect_error(&bag, &simple(&[0, 1, 2, 5], &offsets), 16, 8);
    assert_eq!(
        err,
        KernelError::IdOutOfRange {
            table: 3,
            bag: 1,
            id: 5,
            rows: 5
        }
    );
    // Remapped past the table, and a negative remap value other than -1.
    let err = expect_error(&bag, &simple(&[3, 1, 2, 0], &offsets), 16, 8);
    assert_eq!(
        err,
        KernelError::IdOutOfRange {
            table: 3,
            bag: 0,
            id: 4,
            rows: 4
        }
    );
    let err = expect_error(&bag, &simple(&[1, 2, 4], &offsets), 16, 8);
    assert!(
        matches!(err, KernelError::IdOutOfRange { bag: 1, id: -2, .. }),
        "{err}"
    );
}

#[test]
fn bad_bags_weights_outputs_and_tables_are_errors() {
    let data = f32_table(10, 4);
    let table = TableRef::new(TableFormat::F32, 10, 4, &data).unwrap();
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Sum,
        remap: None,
    };
    let ids = [1i64, 2, 3, 4];
    let bad_offsets: [&[i64]; 4] = [&[0, 3, 2], &[1, 2, 3], &[0, 2, 5], &[0, 5]];
    for offsets in bad_offsets {
        let err = expect_error(&bag, &simple(&ids, offsets), 64, 4);
        assert!(
            matches!(err, KernelError::BadBags { table: 3, .. }),
            "{offsets:?}: {err}"
        );
    }
    // Trailing offset that does not equal the id count; too many offsets.
    let lookup = Lookup {
        num_bags: 2,
        ..simple(&ids, &[0, 2, 3])
    };
    assert!(matches!(
        expect_error(&bag, &lookup, 64, 4),
        KernelError::BadBags { .. }
    ));
    let lookup = Lookup {
        num_bags: 1,
        ..simple(&ids, &[0, 2, 4])
    };
    assert!(matches!(
        expect_error(&bag, &lookup, 64, 4),
        KernelError::BadBags { .. }
    ));
    // Lengths: negative, wrong sum, a sum that would wrap around to the id count.
    for lengths in [[2i64, -1, 3], [1, 1, 1], [i64::MAX, i64::MAX, 6]] {
        let lookup = Lookup {
            indices: Indices::I64(&ids),
            bags: Bags::Lengths(Indices::I64(&lengths)),
            num_bags: 3,
            per_sample_weights: None,
        };
        assert!(matches!(
            expect_error(&bag, &lookup, 64, 4),
            KernelError::BadBags { .. }
        ));
    }
    // Weighted pooling without weights, or with the wrong number.
    let wbag = EmbeddingBag {
        pooling: Pooling::WeightedSum,
        ..bag
    };
    assert!(matches!(
        expect_error(&wbag, &simple(&ids, &[0, 2]), 64, 4),
        KernelError::BadBags { .. }
    ));
    let w = [1.0f32; 3];
    let lookup = Lookup {
        per_sample_weights: Some(&w),
        ..simple(&ids, &[0, 2])
    };
    assert!(matches!(
        expect_error(&wbag, &lookup, 64, 4),
        KernelError::Shape {
            expected: 4,
            found: 3,
            ..
        }
    ));
    // Output too short, stride below the dimension.
    assert!(matches!(
        expect_error(&bag, &simple(&ids, &[0, 2]), 7, 4),
        KernelError::Shape {
            expected: 8,
            found: 7,
            ..
        }
    ));
    assert!(matches!(
        expect_error(&bag, &simple(&ids, &[0, 2]), 64, 3),
        KernelError::Shape { .. }
    ));
    // A table whose bytes do not cover its rows (built without TableRef::new).
    let short = TableRef {
        data: &data[..data.len() - 1],
        ..table
    };
    let sbag = EmbeddingBag {
        table: short,
        ..bag
    };
    assert!(matches!(
        expect_error(&sbag, &simple(&ids, &[0, 2]), 64, 4),
        KernelError::Shape { .. }
    ));
    // Asking for a level this CPU lacks is an error, never a crash.
    if Isa::detected() < Isa::Vnni {
        let mut out = vec![0f32; 8];
        assert!(matches!(
            pool_with_isa(Isa::Vnni, &bag, &simple(&ids, &[0, 2]), 0, &mut out, 4),
            Err(KernelError::IsaUnavailable { .. })
        ));
    }
}

#[test]
fn batched_errors_name_the_first_bad_table_and_bag() {
    let mut rng = Rng::new(15);
    let batch = 2000;
    let data = f32_table(50, 8);
    let table = TableRef::new(TableFormat::F32, 50, 8, &data).unwrap();
    let lengths = vec![20usize; batch];
    let mut cases: Vec<Case> = (0..3)
        .map(|_| Case::new(lengths.clone(), 50, &mut rng))
        .collect();
    cases[2].ids[20 * 5 + 3] = 50; // table 2, bag 5
    cases[1].ids[20 * 1500] = -3; // table 1, bag 1500
    cases[1].ids[20 * 1700 + 19] = 77; // table 1, bag 1700 (later)
    let owned: Vec<Owned> = cases
        .iter()
        .map(|c| Owned::new(c, Encoding::Offsets))
        .collect();
    let tables: Vec<TableBag<'_>> = (0..3)
        .map(|t| TableBag {
            bag: EmbeddingBag {
                table,
                pooling: Pooling::Sum,
                remap: None,
            },
            lookup: owned[t].lookup(&cases[t], Encoding::Offsets, true),
            column: 8 * t,
        })
        .collect();
    for isa in Isa::available() {
        for par in [Parallelism::Single, Parallelism::Auto] {
            let mut out = vec![0f32; batch * 24];
            let err = pool_tables_with_isa(isa, &tables, &mut out, 24, par).unwrap_err();
            assert_eq!(
                err,
                KernelError::IdOutOfRange {
                    table: 1,
                    bag: 1500,
                    id: -3,
                    rows: 50
                },
                "{isa} {par:?}"
            );
        }
    }
    // Overlapping columns, columns past the stride, mismatched batch sizes.
    let mut overlap = tables.clone();
    overlap[1].column = 4;
    let mut out = vec![0f32; batch * 24];
    assert!(matches!(
        pool_tables_with_isa(Isa::Scalar, &overlap, &mut out, 24, Parallelism::Single),
        Err(KernelError::Shape { .. })
    ));
    assert!(matches!(
        pool_tables_with_isa(Isa::Scalar, &tables, &mut out, 20, Parallelism::Single),
        Err(KernelError::Shape { .. })
    ));
    let mut uneven = tables.clone();
    let short_offsets = &owned[2].b64[..10];
    uneven[2].lookup = Lookup {
        indices: Indices::I64(&owned[2].ids64[..200]),
        bags: Bags::Offsets(Indices::I64(short_offsets)),
        num_bags: 10,
        per_sample_weights: None,
    };
    assert!(matches!(
        pool_tables_with_isa(Isa::Scalar, &uneven, &mut out, 24, Parallelism::Single),
        Err(KernelError::Shape { .. })
    ));
}

/// Kernels check a bag's ids before reading its rows (one scan per bag without a remap): a bad id
/// in any bag, for every format, narrow and wide rows, stops at that bag with the oracle's error,
/// after writing exactly the oracle's output for the bags before it.
#[test]
fn bad_ids_stop_at_their_bag_after_writing_the_earlier_bags() {
    let mut rng = Rng::new(0xbad1d);
    let rows = 50;
    for format in TableFormat::ALL {
        for dim in [16usize, 64, 128, 260] {
            let data = random_table(format, rows, dim, &mut rng);
            let table = TableRef::new(format, rows, dim, &data).unwrap();
            let bag = EmbeddingBag {
                table,
                pooling: Pooling::Sum,
                remap: None,
            };
            let lengths = [3usize, 0, 40, 1, 7];
            let case = Case::new(lengths.to_vec(), rows, &mut rng);
            for (bad_bag, bad) in [(0usize, rows as i64), (2, -1), (3, i64::MAX), (4, 1 << 40)] {
                let mut ids = case.ids.clone();
                let start: usize = lengths[..bad_bag].iter().sum();
                ids[start + lengths[bad_bag] - 1] = bad;
                let offsets: Vec<i64> = lengths
                    .iter()
                    .scan(0i64, |s, &l| {
                        let o = *s;
                        *s += l as i64;
                        Some(o)
                    })
                    .collect();
                let lookup = simple(&ids, &offsets);
                let mut want = vec![SENTINEL; lengths.len() * dim];
                let want_err = pool_scalar(&bag, &lookup, 3, &mut want, dim).unwrap_err();
                assert!(
                    matches!(want_err, KernelError::IdOutOfRange { bag, .. } if bag == bad_bag),
                    "{want_err}"
                );
                for isa in Isa::available() {
                    let mut got = vec![SENTINEL; lengths.len() * dim];
                    let err = pool_with_isa(isa, &bag, &lookup, 3, &mut got, dim).unwrap_err();
                    let what = format!("{isa} {format:?} d={dim} bad bag {bad_bag}");
                    assert_eq!(err, want_err, "{what}");
                    assert_same(&want[..bad_bag * dim], &got[..bad_bag * dim], dim, &what);
                }
            }
        }
    }
}
