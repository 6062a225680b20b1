//! `quantrec gen`: write a synthetic Criteo-like data set and report its teacher's NE.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use quantrec_data::synth::{self, DriftConfig, Generator, Split, SynthConfig};
use quantrec_data::{BatchSource, source::read_all, write_batch_file};

/// Up to this many rows the teacher's exact AUC is reported too (it keeps every score).
const AUC_MAX_ROWS: u64 = 20_000_000;

/// Output format of `quantrec gen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenFormat {
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
    #[arg(long, value_enum, default_value_t = GenFormat::Tsv)]
    pub format: GenFormat,
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
    let cfg = SynthConfig {
        seed: args.seed,
        table_rows: table_rows.clone(),
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
    let start = Instant::now();
    let generator = Generator::new(cfg)?;
    let setup = start.elapsed().as_secs_f64();
    let split = match args.split {
        GenSplit::Train => Split::Train,
        GenSplit::Calibration => Split::Calibration,
        GenSplit::Evaluation => Split::Evaluation,
    };
    let mut stream = generator.stream(split, args.rows, 4096);
    if args.rows <= AUC_MAX_ROWS {
        stream = stream.with_teacher_auc();
    }
    let start = Instant::now();
    let written = match args.format {
        GenFormat::Tsv => synth::write_tsv_file(&mut stream, &args.output)?,
        GenFormat::Batch => {
            let batch = read_all(&mut stream)?;
            write_batch_file(&args.output, &batch)?;
            batch.size as u64
        }
    };
    let secs = start.elapsed().as_secs_f64();
    if written != args.rows {
        bail!("wrote {written} rows, expected {}", args.rows);
    }
    if let Some(path) = &args.schema_out {
        let json = serde_json::to_string_pretty(&generator.tsv_schema())?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    let t = stream.teacher().loss();
    let auc = stream.teacher().metrics().auc;
    let fmt = |v: Option<f64>| v.map_or("undefined".to_string(), |v| format!("{v:.5}"));
    println!(
        "wrote {} rows ({:?} split, seed {}) to {} in {:.2} s ({:.0} rows/s; teacher setup {:.2} s)",
        written,
        split,
        args.seed,
        args.output.display(),
        secs,
        written as f64 / secs.max(1e-9),
        setup
    );
    println!(
        "clicks {} (CTR {}); teacher (the attainable optimum): log loss {}, NE {}, AUC {}",
        t.positives(),
        fmt(t.ctr()),
        fmt(t.log_loss()),
        fmt(t.ne()),
        fmt(auc)
    );
    println!(
        "{} dense features, table rows {:?}",
        stream.n_dense(),
        table_rows
    );
    if let Some(path) = &args.report_json {
        let report = serde_json::json!({
            "rows": written,
            "seed": args.seed,
            "split": format!("{split:?}").to_lowercase(),
            "format": format!("{:?}", args.format).to_lowercase(),
            "table_rows": table_rows,
            "n_dense": stream.n_dense(),
            "pooling_factor": args.pooling_factor,
            "zipf_exponent": args.zipf,
            "signal": args.signal,
            "drift": generator.config().drift.map(|d| serde_json::json!({
                "seed": d.seed,
                "drift": d.drift,
                "trending": d.trending,
                "trending_ids": generator.trending_ids(),
            })),
            "clicks": t.positives(),
            "ctr": t.ctr(),
            "teacher_log_loss": t.log_loss(),
            "teacher_ne": t.ne(),
            "teacher_auc": auc,
            "seconds": secs,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
