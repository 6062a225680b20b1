//! Embedding bags at every implementation this CPU runs, against the scalar oracle (through
//! [`kernel_suite!`], with the row-independence property over bags): random tables in every
//! format, awkward dimensions and bag shapes, both id types, every bag encoding, every pooling mode,
//! pruning remaps, extreme rows and ids. The typed errors are in `embedding_bag_errors.rs`.
//!
//! Every level uses the oracle's operation order (FBGEMM's), so results must match bit for bit.

mod bag_cases;

use bag_cases::{Case, Encoding, Owned, SENTINEL, assert_same, random_table};
use quantrec_kernels::embedding_bag::{
    Bags, EmbeddingBag, EmbeddingBagFamily, Indices, Lookup, Parallelism, Pooling, TableBag,
    pool_scalar, pool_tables_with_isa, pool_with_isa, pool_with_ops,
};
use quantrec_kernels::formats::{TableFormat, TableRef};
use quantrec_kernels::registry::KernelFamily;
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise};
use quantrec_kernels::{Isa, kernel_suite};

/// Dimensions to test for a format (the fused sub-byte formats need even / multiple-of-4 rows).
fn dims(format: TableFormat) -> Vec<usize> {
    match format {
        TableFormat::Fused4 => vec![2, 6, 16, 18, 32, 62, 64, 128, 130, 1000],
        TableFormat::Fused2 => vec![4, 12, 16, 20, 36, 60, 64, 128, 132, 1000],
        _ => vec![1, 2, 3, 7, 16, 17, 32, 63, 64, 128, 1000],
    }
}

/// One pooling call in owned form: a table, its bags, encoding, id type, pooling and remap.
struct Pool {
    format: TableFormat,
    rows: usize,
    dim: usize,
    data: std::rc::Rc<Vec<u8>>,
    case: Case,
    enc: Encoding,
    wide: bool,
    pooling: Pooling,
    remap: Option<std::rc::Rc<Vec<i32>>>,
    what: String,
}

impl Pool {
    /// Output floats between bags (three more than `dim`, so stray writes hit the sentinel).
    fn stride(&self) -> usize {
        self.dim + 3
    }

    /// Runs `f` on the call's bag and lookup.
    fn with<T>(&self, f: impl FnOnce(&EmbeddingBag<'_>, &Lookup<'_>) -> T) -> T {
        let table = TableRef::new(self.format, self.rows, self.dim, &self.data).unwrap();
        let owned = Owned::new(&self.case, self.enc);
        let lookup = owned.lookup(&self.case, self.enc, self.wide);
        let bag = EmbeddingBag {
            table,
            pooling: self.pooling,
            remap: self.remap.as_deref().map(Vec::as_slice),
        };
        f(&bag, &lookup)
    }
}

/// Embedding bags at every implementation against [`pool_scalar`], bit for bit, through the
/// single-table API and the batched one (one thread and rayon).
struct BagSuite;

impl OracleSuite for BagSuite {
    type Family = EmbeddingBagFamily;
    type Case = Pool;
    type Elem = f32;

    fn cases(rng: &mut Rng) -> Vec<Pool> {
        let mut v = Vec::new();
        let encodings = [
            Encoding::Offsets,
            Encoding::OffsetsTrailing,
            Encoding::Lengths,
        ];
        let poolings = [Pooling::Sum, Pooling::Mean, Pooling::WeightedSum];
        // Every format, awkward dims and bag shapes, every encoding, both id types.
        let rows = 97;
        for format in TableFormat::ALL {
            for dim in dims(format) {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                for (p, lengths) in length_patterns(rng).into_iter().enumerate() {
                    // Keep the suite short: large dims get the small patterns only.
                    if dim >= 1000 && p == 5 {
                        continue;
                    }
                    let case = Case::new(lengths, rows, rng);
                    for (e, enc) in encodings.into_iter().enumerate() {
                        for wide in [false, true] {
                            v.push(Pool {
                                format,
                                rows,
                                dim,
                                data: data.clone(),
                                case: case.clone(),
                                enc,
                                wide,
                                pooling: poolings[(p + e) % 3],
                                remap: None,
                                what: format!("pattern {p}"),
                            });
                        }
                    }
                }
            }
        }
        // Every pooling mode on the common dims, longer random bags.
        let rows = 500;
        for format in TableFormat::ALL {
            for dim in [16, 32, 64, 128] {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                let lengths = (0..64).map(|_| rng.below(30) as usize).collect();
                let case = Case::new(lengths, rows, rng);
                for pooling in poolings {
                    v.push(Pool {
                        format,
                        rows,
                        dim,
                        data: data.clone(),
                        case: case.clone(),
                        enc: Encoding::Offsets,
                        wide: true,
                        pooling,
                        remap: None,
                        what: "common dims".into(),
                    });
                }
            }
        }
        // Pruned tables: every third original id is pruned, the rest map to a scrambled row.
        let (rows, original) = (40, 120);
        let remap = std::rc::Rc::new(
            (0..original)
                .map(|i| {
                    if i % 3 == 0 {
                        -1
                    } else {
                        ((i * 7) % rows) as i32
                    }
                })
                .collect::<Vec<i32>>(),
        );
        for format in TableFormat::ALL {
            for dim in [4, 16, 64, 1000] {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                let case = Case::new(vec![0, 5, 1, 17, 3, 0, 60], original, rng);
                for pooling in poolings {
                    v.push(Pool {
                        format,
                        rows,
                        dim,
                        data: data.clone(),
                        case: case.clone(),
                        enc: Encoding::OffsetsTrailing,
                        wide: false,
                        pooling,
                        remap: Some(remap.clone()),
                        what: "pruned".into(),
                    });
                }
            }
        }
        // Extremes: the largest id everywhere, all-equal rows of all-ones bytes (code 255 / 15 / 3,
        // the largest scale and bias bit patterns that stay finite), and a row of huge values.
        for format in TableFormat::ALL {
            for dim in [4, 64, 68, 132] {
                let rows = 33;
                let mut data = random_table(format, rows, dim, rng);
                let rb = format.row_bytes(dim);
                for r in 0..rows {
                    let row = &mut data[r * rb..(r + 1) * rb];
                    match format {
                        TableFormat::F32 => {
                            for (i, c) in row.chunks_exact_mut(4).enumerate() {
                                let v = if i % 2 == 0 { 1e30f32 } else { -3e29 };
                                c.copy_from_slice(&v.to_le_bytes());
                            }
                        }
                        TableFormat::F16 | TableFormat::Bf16 => row.fill(0x7b),
                        _ => row[..format.code_bytes(dim)].fill(0xff),
                    }
                }
                let mut case = Case::new(vec![1, 0, 7, 25], rows, rng);
                case.ids.iter_mut().for_each(|id| *id = rows as i64 - 1);
                for pooling in poolings {
                    v.push(Pool {
                        format,
                        rows,
                        dim,
                        data: std::rc::Rc::new(data.clone()),
                        case: case.clone(),
                        enc: Encoding::Lengths,
                        wide: true,
                        pooling,
                        remap: None,
                        what: "extremes".into(),
                    });
                }
            }
        }
        v
    }

    fn describe(c: &Pool) -> String {
        format!(
            "{} d={} {} {:?} {:?} wide={} bags={}",
            c.format,
            c.dim,
            c.what,
            c.enc,
            c.pooling,
            c.wide,
            c.case.lengths.len()
        )
    }

    fn reference(c: &Pool) -> Vec<f32> {
        let mut want = vec![SENTINEL; c.case.lengths.len() * c.stride()];
        c.with(|bag, lookup| pool_scalar(bag, lookup, 0, &mut want, c.stride()))
            .unwrap();
        want
    }

    fn run(index: usize, c: &Pool) -> Vec<f32> {
        let stride = c.stride();
        let len = c.case.lengths.len() * stride;
        let ops = EmbeddingBagFamily::get(index).unwrap();
        let isa = EmbeddingBagFamily::IMPLEMENTATIONS[index].isa;
        c.with(|bag, lookup| {
            let mut got = vec![SENTINEL; len];
            pool_with_ops(ops, bag, lookup, 0, &mut got, stride).unwrap();
            // The batched API (one table) must write exactly the same, on one thread or many.
            for par in [Parallelism::Single, Parallelism::Auto] {
                let mut batched = vec![SENTINEL; len];
                let tables = [TableBag {
                    bag: *bag,
                    lookup: *lookup,
                    column: 0,
                }];
                pool_tables_with_isa(isa, &tables, &mut batched, stride, par).unwrap();
                assert_same(&got, &batched, stride, &format!("batched {par:?} at {isa}"));
            }
            got
        })
    }
}

impl RowWise for BagSuite {
    fn row_cases(rng: &mut Rng) -> Vec<Pool> {
        let rows = 1000;
        let mut v = Vec::new();
        for format in TableFormat::ALL {
            for dim in [16, 36, 132] {
                let data = std::rc::Rc::new(random_table(format, rows, dim, rng));
                let lengths = (0..300).map(|_| rng.below(24) as usize).collect();
                let case = Case::new(lengths, rows, rng);
                v.push(Pool {
                    format,
                    rows,
                    dim,
                    data,
                    case,
                    enc: Encoding::Lengths,
                    wide: false,
                    pooling: Pooling::WeightedSum,
                    remap: None,
                    what: "rows".into(),
                });
            }
        }
        v
    }

    fn rows(c: &Pool) -> usize {
        c.case.lengths.len()
    }

    fn take_rows(c: &Pool, start: usize, len: usize) -> Pool {
        let first: usize = c.case.lengths[..start].iter().sum();
        let lengths = c.case.lengths[start..start + len].to_vec();
        let count: usize = lengths.iter().sum();
        Pool {
            case: Case {
                ids: c.case.ids[first..first + count].to_vec(),
                weights: c.case.weights[first..first + count].to_vec(),
                lengths,
            },
            data: c.data.clone(),
            remap: c.remap.clone(),
            what: c.what.clone(),
            ..*c
        }
    }

    fn row_len(c: &Pool) -> usize {
        c.stride()
    }
}

kernel_suite!(bags: BagSuite, rows);

/// Bag-length patterns: none, empty bags, short random bags, one huge bag.
fn length_patterns(rng: &mut Rng) -> Vec<Vec<usize>> {
    vec![
        vec![],
        vec![0, 0, 0],
        vec![1],
        (0..9).map(|_| rng.below(6) as usize).collect(),
        vec![0, 3, 0, 1, 40, 0],
        vec![3000],
    ]
}

#[test]
fn pruned_tables_skip_minus_one_and_mean_counts_pruned_ids() {
    let mut rng = Rng::new(13);
    let rows = 40;
    let remap: Vec<i32> = (0..120)
        .map(|i| {
            if i % 3 == 0 {
                -1
            } else {
                ((i * 7) % rows) as i32
            }
        })
        .collect();
    // A bag of only pruned ids is zero; its mean divides by all its ids (FBGEMM's rule).
    let data = random_table(TableFormat::F32, rows, 4, &mut rng);
    let table = TableRef::new(TableFormat::F32, rows, 4, &data).unwrap();
    let ids = [0i64, 3, 1];
    let lookup = Lookup {
        indices: Indices::I64(&ids),
        bags: Bags::Offsets(Indices::I64(&[0, 2])),
        num_bags: 2,
        per_sample_weights: None,
    };
    let bag = EmbeddingBag {
        table,
        pooling: Pooling::Mean,
        remap: Some(&remap),
    };
    for isa in Isa::available() {
        let mut out = vec![SENTINEL; 8];
        pool_with_isa(isa, &bag, &lookup, 0, &mut out, 4).unwrap();
        assert_eq!(&out[..4], &[0.0; 4], "{isa}");
        let row = (7 % rows) * 16;
        let v0 = f32::from_le_bytes(data[row..row + 4].try_into().unwrap());
        assert_eq!(out[4], v0, "{isa}: a one-id bag's mean is the row");
    }
}

#[test]
fn batched_tables_fill_their_columns_at_every_isa() {
    let mut rng = Rng::new(14);
    let batch = 700;
    let specs = [
        (TableFormat::Fused4, 64, 300),
        (TableFormat::F32, 17, 50),
        (TableFormat::Fused8, 128, 1000),
        (TableFormat::Bf16, 3, 20),
        (TableFormat::Fused2, 16, 5000),
        (TableFormat::F16, 32, 64),
        (TableFormat::Fused8Half, 7, 9),
    ];
    let datas: Vec<Vec<u8>> = specs
        .iter()
        .map(|&(f, d, r)| random_table(f, r, d, &mut rng))
        .collect();
    let cases: Vec<Case> = specs
        .iter()
        .map(|&(_, _, r)| {
            let lengths = (0..batch).map(|_| rng.below(40) as usize).collect();
            Case::new(lengths, r, &mut rng)
        })
        .collect();
    let owned: Vec<Owned> = cases
        .iter()
        .map(|c| Owned::new(c, Encoding::Lengths))
        .collect();
    let poolings = [Pooling::Sum, Pooling::Mean, Pooling::WeightedSum];
    let mut tables = Vec::new();
    // Columns in a scrambled order with a gap, to check the column offsets.
    let mut column = 5;
    for (t, &(f, d, r)) in specs.iter().enumerate().rev() {
        tables.push(TableBag {
            bag: EmbeddingBag {
                table: TableRef::new(f, r, d, &datas[t]).unwrap(),
                pooling: poolings[t % 3],
                remap: None,
            },
            lookup: owned[t].lookup(&cases[t], Encoding::Lengths, t % 2 == 0),
            column,
        });
        column += d;
    }
    let stride = column + 2;
    let mut want = vec![SENTINEL; batch * stride];
    for (t, tb) in tables.iter().enumerate() {
        pool_scalar(&tb.bag, &tb.lookup, t, &mut want[tb.column..], stride).unwrap();
    }
    for isa in Isa::available() {
        for par in [Parallelism::Single, Parallelism::Auto] {
            let mut got = vec![SENTINEL; batch * stride];
            pool_tables_with_isa(isa, &tables, &mut got, stride, par).unwrap();
            assert_same(&want, &got, stride, &format!("batched {par:?} at {isa}"));
        }
    }
}
