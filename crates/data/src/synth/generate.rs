//! Writing a synthetic data set to a file (`quantrec gen`): the generator, one split streamed to
//! Criteo TSV or a batch file, the schema that reads it back, and a summary of what was written
//! with the teacher's metrics (`Display` = the text, `Serialize` = the `--report-json` object).

use std::fmt::{self, Display, Formatter};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{DriftConfig, Generator, Split, SynthConfig, write_tsv_file};
use crate::source::{BatchSource, read_all};
use crate::{DataError, Result, write_batch_file};

/// Up to this many rows the teacher's exact AUC is reported too (it keeps every score).
pub const AUC_MAX_ROWS: u64 = 20_000_000;

/// Output format of a generated data set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenFormat {
    /// Criteo DAC TSV (gzip when the name ends in .gz).
    #[default]
    Tsv,
    /// A safetensors batch file (held in memory while generating).
    Batch,
}

/// What to generate and where.
#[derive(Clone, Debug, PartialEq)]
pub struct GenOptions {
    /// The generator (seed, tables, popularity, click rate, drift).
    pub config: SynthConfig,
    /// Which independent stream of rows.
    pub split: Split,
    /// Number of rows.
    pub rows: u64,
    /// Output file.
    pub output: PathBuf,
    /// Output format.
    pub format: GenFormat,
    /// Also write the schema JSON that reads the TSV back.
    pub schema_out: Option<PathBuf>,
}

/// Drift of a day-2 data set, as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftSummary {
    /// Seed of the drift.
    pub seed: u64,
    /// Weight of the second teacher.
    pub drift: f64,
    /// Fraction of every table's ids re-ranked.
    pub trending: f64,
    /// The re-ranked ids.
    pub trending_ids: Vec<usize>,
}

/// What was generated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenSummary {
    /// Rows written.
    pub rows: u64,
    /// Generator seed.
    pub seed: u64,
    /// `train`, `calibration` or `evaluation`.
    pub split: String,
    /// Output format.
    pub format: GenFormat,
    /// Rows of every table.
    pub table_rows: Vec<usize>,
    /// Dense features.
    pub n_dense: usize,
    /// Mean ids per bag.
    pub pooling_factor: f64,
    /// Zipf exponent of id popularity.
    pub zipf_exponent: f64,
    /// Scale of the teacher's logit.
    pub signal: f64,
    /// Day-2 drift, when any.
    pub drift: Option<DriftSummary>,
    /// Positive labels.
    pub clicks: u64,
    /// Click rate.
    pub ctr: Option<f64>,
    /// The teacher's log loss (the attainable optimum).
    pub teacher_log_loss: Option<f64>,
    /// The teacher's NE.
    pub teacher_ne: Option<f64>,
    /// The teacher's AUC (up to [`AUC_MAX_ROWS`] rows).
    pub teacher_auc: Option<f64>,
    /// Seconds of generation and writing.
    pub seconds: f64,
    /// Seconds of generator setup.
    #[serde(skip)]
    pub setup_seconds: f64,
    /// The file written.
    #[serde(skip)]
    pub output: PathBuf,
    /// The split, as the generator names it.
    #[serde(skip)]
    pub split_kind: Option<Split>,
}

/// Generates `options.rows` rows of `options.split` into `options.output`.
pub fn generate(options: &GenOptions) -> Result<GenSummary> {
    let start = Instant::now();
    let generator = Generator::new(options.config.clone())?;
    let setup_seconds = start.elapsed().as_secs_f64();
    let mut stream = generator.stream(options.split, options.rows, 4096);
    if options.rows <= AUC_MAX_ROWS {
        stream = stream.with_teacher_auc();
    }
    let start = Instant::now();
    let written = match options.format {
        GenFormat::Tsv => write_tsv_file(&mut stream, &options.output)?,
        GenFormat::Batch => {
            let batch = read_all(&mut stream)?;
            write_batch_file(&options.output, &batch)?;
            batch.size as u64
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    if written != options.rows {
        return Err(DataError::Config {
            what: "rows written",
            expected: options.rows.to_string(),
            found: written.to_string(),
        });
    }
    if let Some(path) = &options.schema_out {
        write_schema(&generator, path)?;
    }
    let t = stream.teacher().loss();
    let cfg = generator.config();
    Ok(GenSummary {
        rows: written,
        seed: cfg.seed,
        split: format!("{:?}", options.split).to_lowercase(),
        format: options.format,
        table_rows: cfg.table_rows.clone(),
        n_dense: stream.n_dense(),
        pooling_factor: cfg.pooling_factor,
        zipf_exponent: cfg.zipf_exponent,
        signal: cfg.signal,
        drift: cfg.drift.map(|d: DriftConfig| DriftSummary {
            seed: d.seed,
            drift: d.drift,
            trending: d.trending,
            trending_ids: generator.trending_ids(),
        }),
        clicks: t.positives(),
        ctr: t.ctr(),
        teacher_log_loss: t.log_loss(),
        teacher_ne: t.ne(),
        teacher_auc: stream.teacher().metrics().auc,
        seconds,
        setup_seconds,
        output: options.output.clone(),
        split_kind: Some(options.split),
    })
}

fn write_schema(generator: &Generator, path: &Path) -> Result<()> {
    let json =
        serde_json::to_string_pretty(&generator.tsv_schema()).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    std::fs::write(path, json).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn fmt5(v: Option<f64>) -> String {
    v.map_or("undefined".to_string(), |v| format!("{v:.5}"))
}

/// Three lines: rows and speed, clicks and the teacher's metrics, features and tables.
impl Display for GenSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let split = self
            .split_kind
            .map_or(self.split.clone(), |s| format!("{s:?}"));
        writeln!(
            f,
            "wrote {} rows ({split} split, seed {}) to {} in {:.2} s ({:.0} rows/s; teacher setup {:.2} s)",
            self.rows,
            self.seed,
            self.output.display(),
            self.seconds,
            self.rows as f64 / self.seconds.max(1e-9),
            self.setup_seconds
        )?;
        writeln!(
            f,
            "clicks {} (CTR {}); teacher (the attainable optimum): log loss {}, NE {}, AUC {}",
            self.clicks,
            fmt5(self.ctr),
            fmt5(self.teacher_log_loss),
            fmt5(self.teacher_ne),
            fmt5(self.teacher_auc)
        )?;
        write!(
            f,
            "{} dense features, table rows {:?}",
            self.n_dense, self.table_rows
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_batch_file_is_generated_and_summarized() {
        let dir = std::env::temp_dir().join(format!("quantrec-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let options = GenOptions {
            config: SynthConfig {
                table_rows: vec![50, 20, 7],
                ..SynthConfig::default()
            },
            split: Split::Evaluation,
            rows: 300,
            output: dir.join("rows.safetensors"),
            format: GenFormat::Batch,
            schema_out: Some(dir.join("schema.json")),
        };
        let s = generate(&options).unwrap();
        assert_eq!((s.rows, s.table_rows.len()), (300, 3));
        assert!(s.teacher_auc.is_some() && s.drift.is_none());
        let text = s.to_string();
        assert!(
            text.starts_with("wrote 300 rows (Evaluation split, seed 0)"),
            "{text}"
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["split"], "evaluation");
        assert_eq!(v["format"], "batch");
        assert!(v.get("output").is_none());
        assert!(dir.join("schema.json").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
