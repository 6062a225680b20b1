//! Tiered tables (several row-wise sub-tables of different formats plus a remap, pruned ids as
//! the zero row) at every implementation of the row-decoder family against the scalar oracle
//! `pool_tiered_scalar` (decode each row, pool in index order), bit for bit, through
//! [`kernel_suite!`] with the row-independence property over bags; plus ids and remaps that must
//! be refused, and the one-tier f32 table equal to the plain table.

use quantrec_kernels::embedding_bag::{
    Bags, EmbeddingBag, Indices, Lookup, Pooling, RowDecoder, TierRemap, TieredTable, pool_scalar,
    pool_tiered, pool_tiered_scalar, pool_tiered_with,
};
use quantrec_kernels::formats::decode::Decode;
use quantrec_kernels::formats::{QuantizeOptions, TableFormat, TableRef, quantize_table};
use quantrec_kernels::registry::KernelFamily;
use quantrec_kernels::rng::Rng;
use quantrec_kernels::testing::{OracleSuite, RowWise};
use quantrec_kernels::{KernelError, kernel_suite};

const SENTINEL: f32 = -12345.678;

/// Stored rows of random values, quantized by the formats module (greedy clipping for 4 and 2 bits).
fn random_rows(format: TableFormat, rows: usize, dim: usize, rng: &mut Rng) -> Vec<u8> {
    let values: Vec<f32> = (0..rows * dim)
        .map(|_| rng.uniform_f32(-2.0, 2.0))
        .collect();
    let opts = QuantizeOptions {
        greedy: matches!(format, TableFormat::Fused4 | TableFormat::Fused2),
        refine: false,
        name: "tier",
    };
    quantize_table(&values, rows, dim, format, &opts).unwrap()
}

/// One tiered pooling call in owned form.
struct Tiered {
    tiers: Vec<(TableFormat, usize, Vec<u8>)>,
    remap: Vec<i32>,
    narrow: bool,
    dim: usize,
    ids: Vec<i64>,
    lengths: Vec<usize>,
    weights: Vec<f32>,
    pooling: Pooling,
    by_lengths: bool,
    what: String,
}

impl Tiered {
    fn new(
        formats: &[TableFormat],
        dim: usize,
        rows: usize,
        bags: usize,
        pooling: Pooling,
        rng: &mut Rng,
    ) -> Tiered {
        // Split the stored rows among the tiers; about a quarter of the ids are pruned.
        let stored = if formats.is_empty() {
            0
        } else {
            rows - rows / 4
        };
        let mut tiers = Vec::new();
        let mut left = stored;
        for (k, &f) in formats.iter().enumerate() {
            let n = if k + 1 == formats.len() {
                left
            } else {
                rng.below(left as u64 + 1) as usize
            };
            left -= n;
            tiers.push((f, n, random_rows(f, n, dim, rng)));
        }
        let mut remap: Vec<i32> = (0..rows as i32)
            .map(|i| if (i as usize) < stored { i } else { -1 })
            .collect();
        for i in (1..remap.len()).rev() {
            remap.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let lengths: Vec<usize> = (0..bags).map(|_| rng.below(9) as usize).collect();
        let n: usize = lengths.iter().sum();
        let ids = (0..n).map(|_| rng.below(rows as u64) as i64).collect();
        let weights = (0..n).map(|_| rng.uniform_f32(-1.5, 1.5)).collect();
        Tiered {
            what: format!("{formats:?} dim {dim} rows {rows} bags {bags} {pooling:?}"),
            tiers,
            remap,
            narrow: rng.below(2) == 0,
            dim,
            ids,
            lengths,
            weights,
            pooling,
            by_lengths: rng.below(2) == 0,
        }
    }

    fn stride(&self) -> usize {
        self.dim + 3
    }

    fn with<T>(&self, f: impl FnOnce(&TieredTable<'_>, &Lookup<'_>) -> T) -> T {
        let refs: Vec<TableRef<'_>> = self
            .tiers
            .iter()
            .map(|(fmt, rows, data)| TableRef::new(*fmt, *rows, self.dim, data).unwrap())
            .collect();
        let narrow: Vec<i16> = self.remap.iter().map(|&r| r as i16).collect();
        let remap = if self.narrow {
            TierRemap::I16(&narrow)
        } else {
            TierRemap::I32(&self.remap)
        };
        let table = TieredTable {
            tiers: &refs,
            remap,
            dim: self.dim,
        };
        let bounds: Vec<i64> = if self.by_lengths {
            self.lengths.iter().map(|&l| l as i64).collect()
        } else {
            let mut acc = 0;
            self.lengths
                .iter()
                .map(|&l| {
                    let o = acc;
                    acc += l as i64;
                    o
                })
                .collect()
        };
        let lookup = Lookup {
            indices: Indices::I64(&self.ids),
            bags: if self.by_lengths {
                Bags::Lengths(Indices::I64(&bounds))
            } else {
                Bags::Offsets(Indices::I64(&bounds))
            },
            num_bags: self.lengths.len(),
            per_sample_weights: Some(&self.weights),
        };
        f(&table, &lookup)
    }

    fn output(
        &self,
        run: impl FnOnce(&TieredTable<'_>, &Lookup<'_>, &mut [f32], usize) -> Result<(), KernelError>,
    ) -> Vec<f32> {
        let stride = self.stride();
        let mut out = vec![SENTINEL; self.lengths.len() * stride];
        self.with(|t, l| run(t, l, &mut out, stride)).unwrap();
        out
    }
}

struct TieredSuite;

const COMBOS: [&[TableFormat]; 6] = [
    &[
        TableFormat::Fused8,
        TableFormat::Fused4,
        TableFormat::Fused2,
    ],
    &[TableFormat::Fused4, TableFormat::Fused2],
    &[TableFormat::Fused8],
    &[
        TableFormat::F32,
        TableFormat::Fused8Half,
        TableFormat::Fused2,
    ],
    &[TableFormat::F16, TableFormat::Bf16, TableFormat::Fused4],
    &[],
];

impl OracleSuite for TieredSuite {
    type Family = Decode;
    type Case = Tiered;
    type Elem = f32;

    fn cases(rng: &mut Rng) -> Vec<Tiered> {
        let mut cases = Vec::new();
        for formats in COMBOS {
            for dim in [4, 8, 12, 16, 20, 32, 36, 64, 128, 132, 1000] {
                for pooling in [Pooling::Sum, Pooling::Mean, Pooling::WeightedSum] {
                    let rows = 1 + rng.below(200) as usize;
                    cases.push(Tiered::new(formats, dim, rows, 13, pooling, rng));
                }
            }
        }
        cases
    }

    fn describe(case: &Tiered) -> String {
        case.what.clone()
    }

    fn reference(case: &Tiered) -> Vec<f32> {
        case.output(|t, l, o, s| pool_tiered_with(RowDecoder::Oracle, t, case.pooling, l, 4, o, s))
    }

    fn run(index: usize, case: &Tiered) -> Vec<f32> {
        let ops = Decode::get(index).unwrap();
        case.output(|t, l, o, s| {
            pool_tiered_with(RowDecoder::Ops(ops), t, case.pooling, l, 4, o, s)
        })
    }
}

impl RowWise for TieredSuite {
    fn row_cases(rng: &mut Rng) -> Vec<Tiered> {
        vec![
            Tiered::new(COMBOS[0], 16, 500, 300, Pooling::Sum, rng),
            Tiered::new(COMBOS[3], 36, 300, 300, Pooling::Mean, rng),
        ]
    }

    fn rows(case: &Tiered) -> usize {
        case.lengths.len()
    }

    fn take_rows(case: &Tiered, start: usize, len: usize) -> Tiered {
        let skip: usize = case.lengths[..start].iter().sum();
        let take: usize = case.lengths[start..start + len].iter().sum();
        Tiered {
            tiers: case.tiers.clone(),
            remap: case.remap.clone(),
            narrow: case.narrow,
            dim: case.dim,
            ids: case.ids[skip..skip + take].to_vec(),
            lengths: case.lengths[start..start + len].to_vec(),
            weights: case.weights[skip..skip + take].to_vec(),
            pooling: case.pooling,
            by_lengths: case.by_lengths,
            what: case.what.clone(),
        }
    }

    fn row_len(case: &Tiered) -> usize {
        case.stride()
    }
}

kernel_suite!(tiered: TieredSuite, rows);

/// A two-row f32 table split in two tiers with id 2 pruned.
fn small() -> (Vec<u8>, Vec<u8>, Vec<i32>) {
    let a: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let b: Vec<u8> = [10.0f32, 20.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    (a, b, vec![1, 0, -1])
}

fn pool_ids(remap: &[i32], ids: &[i64]) -> Result<Vec<f32>, KernelError> {
    let (a, b, _) = small();
    let tiers = [
        TableRef::new(TableFormat::F32, 1, 2, &a).unwrap(),
        TableRef::new(TableFormat::F32, 1, 2, &b).unwrap(),
    ];
    let table = TieredTable {
        tiers: &tiers,
        remap: TierRemap::I32(remap),
        dim: 2,
    };
    let offsets = [0i64];
    let lookup = Lookup {
        indices: Indices::I64(ids),
        bags: Bags::Offsets(Indices::I64(&offsets)),
        num_bags: 1,
        per_sample_weights: None,
    };
    let mut out = vec![SENTINEL; 2];
    pool_tiered(&table, Pooling::Mean, &lookup, 3, &mut out, 2)?;
    Ok(out)
}

#[test]
fn pruned_ids_are_the_zero_row_and_count_in_the_mean() {
    let (_, _, remap) = small();
    // Ids 0 → tier 1 row 0 (10, 20), 1 → tier 0 row 0 (1, 2), 2 → pruned.
    assert_eq!(pool_ids(&remap, &[0, 1, 2, 2]).unwrap(), vec![2.75, 5.5]);
    assert_eq!(pool_ids(&remap, &[2]).unwrap(), vec![0.0, 0.0]);
}

#[test]
fn ids_past_the_table_and_bad_remaps_are_errors() {
    let (_, _, remap) = small();
    match pool_ids(&remap, &[0, 3]) {
        Err(KernelError::IdOutOfRange {
            table: 3,
            bag: 0,
            id: 3,
            rows: 3,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pool_ids(&remap, &[-1]),
        Err(KernelError::IdOutOfRange { id: -1, .. })
    ));
    for bad in [2, -2] {
        match pool_ids(&[bad, 0, 1], &[0]) {
            Err(KernelError::IdOutOfRange { id, rows: 2, .. }) => assert_eq!(id, i64::from(bad)),
            other => panic!("remap {bad}: {other:?}"),
        }
    }
}

#[test]
fn a_one_tier_f32_table_pools_like_the_plain_table() {
    let mut rng = Rng::new(11);
    let (rows, dim) = (50, 20);
    let data = random_rows(TableFormat::F32, rows, dim, &mut rng);
    let table = TableRef::new(TableFormat::F32, rows, dim, &data).unwrap();
    let remap: Vec<i32> = (0..rows as i32).collect();
    let ids: Vec<i64> = (0..40).map(|_| rng.below(rows as u64) as i64).collect();
    let offsets = [0i64, 7, 7, 20, 33];
    let lookup = Lookup {
        indices: Indices::I64(&ids),
        bags: Bags::Offsets(Indices::I64(&offsets)),
        num_bags: 5,
        per_sample_weights: None,
    };
    for pooling in [Pooling::Sum, Pooling::Mean] {
        let mut plain = vec![0f32; 5 * dim];
        let bag = EmbeddingBag {
            table,
            pooling,
            remap: None,
        };
        pool_scalar(&bag, &lookup, 0, &mut plain, dim).unwrap();
        let tiers = [table];
        let tiered = TieredTable {
            tiers: &tiers,
            remap: TierRemap::I32(&remap),
            dim,
        };
        let mut got = vec![0f32; 5 * dim];
        pool_tiered(&tiered, pooling, &lookup, 0, &mut got, dim).unwrap();
        let mut oracle = vec![0f32; 5 * dim];
        pool_tiered_scalar(&tiered, pooling, &lookup, 0, &mut oracle).unwrap();
        assert_eq!(
            oracle.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(
            plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn tiers_of_the_wrong_dimension_or_size_are_refused() {
    let data = vec![0u8; 2 * TableFormat::Fused8.row_bytes(8)];
    let tiers = [TableRef {
        format: TableFormat::Fused8,
        rows: 2,
        dim: 8,
        data: &data,
    }];
    let remap = [0i32, 1];
    let table = TieredTable {
        tiers: &tiers,
        remap: TierRemap::I32(&remap),
        dim: 16,
    };
    assert!(matches!(
        table.check(5),
        Err(KernelError::Shape { index: Some(5), .. })
    ));
    let short = TableRef {
        format: TableFormat::Fused8,
        rows: 3,
        dim: 8,
        data: &data,
    };
    let tiers = [short];
    let table = TieredTable {
        tiers: &tiers,
        remap: TierRemap::I32(&remap),
        dim: 8,
    };
    assert!(table.check(0).is_err());
}
