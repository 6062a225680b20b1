//! `quantrec gen`: write a synthetic Criteo-like data set and report its teacher's NE
//! ([`quantrec_data::synth::generate`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use quantrec_data::synth::generate::{GenFormat, GenOptions, generate};
use quantrec_data::synth::{self, DriftConfig, Split, SynthConfig};

/// Output format of `quantrec gen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenFormatArg {
    /// Criteo DAC TSV (gzip when the name ends in .gz); read back with the Criteo preset.
    Tsv,
    /// A safetensors batch file (held in memory while generating).
    Batch,
}

/// Which split to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenSplit {
    /// Training rows.
    Train,
    /// Calibration rows.
    Calibration,
    /// Evaluation rows.
    Evaluation,
}

/// Arguments of `quantrec gen`.
#[derive(Args, Debug)]
pub struct GenArgs {
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Number of rows.
    #[arg(long)]
    pub rows: u64,
    /// Seed (the same seed gives the same teacher and the same rows).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GenFormatArg::Tsv)]
    pub format: GenFormatArg,
    /// Which independent stream of rows.
    #[arg(long, value_enum, default_value_t = GenSplit::Train)]
    pub split: GenSplit,
    /// Criteo Kaggle table sizes capped at this many rows.
    #[arg(long, default_value_t = synth::DEFAULT_MAX_TABLE_ROWS)]
    pub max_table_rows: usize,
    /// Explicit table sizes, comma separated (overrides --max-table-rows).
    #[arg(long, value_delimiter = ',')]
    pub table_rows: Option<Vec<usize>>,
    /// Mean ids per bag (1 = one-hot; above 1 every table is multi-hot, comma-separated in TSV).
    #[arg(long, default_value_t = 1.0)]
    pub pooling_factor: f64,
    /// Zipf exponent of id popularity.
    #[arg(long, default_value_t = synth::DEFAULT_ZIPF)]
    pub zipf: f64,
    /// Mean click probability.
    #[arg(long, default_value_t = 0.25)]
    pub ctr: f64,
    /// Scale of the teacher's logit.
    #[arg(long, default_value_t = 1.0)]
    pub signal: f64,
    /// Day-2 data: concept drift, the weight in [0, 1] of a second teacher blended into the
    /// labels; also the fraction of every table's ids whose popularity is reshuffled (unless
    /// --trending is given). Rows are fresh samples (see --drift-seed).
    #[arg(long)]
    pub drift: Option<f64>,
    /// Seed of the drift (second teacher, trending ids, fresh rows): one per day.
    #[arg(long, default_value_t = 1, requires = "drift")]
    pub drift_seed: u64,
    /// Fraction of every table's ids whose popularity is reshuffled (default: --drift).
    #[arg(long, requires = "drift")]
    pub trending: Option<f64>,
    /// Also write the schema JSON that reads the TSV back (needed for multi-hot).
    #[arg(long)]
    pub schema_out: Option<PathBuf>,
    /// Also write what was generated (config, table rows, teacher metrics) as JSON.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
}

/// Runs `quantrec gen`.
pub fn run(args: GenArgs) -> Result<()> {
    let table_rows = args
        .table_rows
        .clone()
        .unwrap_or_else(|| synth::criteo_table_rows(args.max_table_rows));
    let config = SynthConfig {
        seed: args.seed,
        table_rows,
        zipf_exponent: args.zipf,
        pooling_factor: args.pooling_factor,
        target_ctr: args.ctr,
        signal: args.signal,
        drift: args.drift.map(|w| DriftConfig {
            trending: args.trending.unwrap_or(w),
            ..DriftConfig::new(args.drift_seed, w)
        }),
        ..SynthConfig::default()
    };
    let options = GenOptions {
        config,
        split: match args.split {
            GenSplit::Train => Split::Train,
            GenSplit::Calibration => Split::Calibration,
            GenSplit::Evaluation => Split::Evaluation,
        },
        rows: args.rows,
        output: args.output.clone(),
        format: match args.format {
            GenFormatArg::Tsv => GenFormat::Tsv,
            GenFormatArg::Batch => GenFormat::Batch,
        },
        schema_out: args.schema_out.clone(),
    };
    let summary =
        generate(&options).with_context(|| format!("generating {}", args.output.display()))?;
    println!("{summary}");
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(&serde_json::to_value(&summary)?)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
