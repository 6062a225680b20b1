//! Writes a random DLRM artifact with Criteo Kaggle table cardinalities (capped) for the
//! remote-table benchmark: `cargo run --release -p quantrec-tables --example bench_artifact --
//! OUT.safetensors f32|fused4 [CAP] [DIM]`. Rows are uniform random values encoded in the format.

use std::path::PathBuf;

use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;
use quantrec_model::artifact::Provenance;
use quantrec_model::config::{DotOrder, Interaction, Naming, PoolingMode, TableConfig};
use quantrec_model::weights::{Linear, TableData};
use quantrec_model::{LayerPrecision, ModelConfig, Plan, Weights};

const KAGGLE: [usize; 26] = [
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: bench_artifact OUT.safetensors f32|fused4 [CAP] [DIM]".into());
    }
    let out = PathBuf::from(&args[1]);
    let format = TableFormat::parse(&args[2]).ok_or("unknown table format")?;
    let cap: usize = args.get(3).map_or(Ok(50_000), |s| s.parse())?;
    let d: usize = args.get(4).map_or(Ok(64), |s| s.parse())?;
    let config = ModelConfig {
        dense_features: 13,
        bottom_mlp: vec![256, d],
        tables: KAGGLE
            .iter()
            .map(|&n| TableConfig {
                rows: n.min(cap),
                dim: d,
                pooling: PoolingMode::Sum,
            })
            .collect(),
        interaction: Interaction::Dot {
            order: DotOrder::LowerByRow,
            self_interaction: false,
        },
        top_mlp: vec![256, 1],
        naming: Naming::Dlrm,
    };
    let mut rng = Rng::new(7);
    let mut linear = |(n, k): (usize, usize)| Linear {
        out: n,
        inp: k,
        weight: (0..n * k)
            .map(|_| rng.uniform_f32(-1.0, 1.0) / (k as f32).sqrt())
            .collect(),
        bias: (0..n).map(|_| rng.uniform_f32(-0.1, 0.1)).collect(),
    };
    let bottom = config
        .bottom_shapes()
        .into_iter()
        .map(&mut linear)
        .collect();
    let top = config.top_shapes().into_iter().map(&mut linear).collect();
    let mut rng = Rng::new(8);
    let tables = config
        .tables
        .iter()
        .enumerate()
        .map(|(t, tc)| {
            let values: Vec<f32> = (0..tc.rows * d)
                .map(|_| rng.uniform_f32(-0.05, 0.05))
                .collect();
            let bytes =
                quantrec_model::tables::encode_table(t, format, tc.rows, d, &values, false)?;
            Ok(TableData::Encoded { format, bytes })
        })
        .collect::<quantrec_model::Result<Vec<_>>>()?;
    let weights = Weights {
        bottom,
        tables,
        table_names: Vec::new(),
        cross: Vec::new(),
        top,
    };
    let plan = Plan::uniform(&config, LayerPrecision::F32, format);
    quantrec_model::artifact::save(&out, &config, &weights, &plan, &Provenance::default())?;
    println!("{}", out.display());
    Ok(())
}
