//! What an artifact holds — architecture, plan, bytes per part against f32 — as a report:
//! `Display` is the text `quantrec inspect` prints, `Serialize` its `--json` object. Bytes come
//! from [`crate::parts`] (the count the search and the artifact agree on).

use std::collections::BTreeMap;
use std::fmt::{self, Display, Formatter};
use std::path::Path;

use serde::Serialize;

use crate::artifact::{Artifact, LayerQuant, Provenance};
use crate::config::ModelConfig;
use crate::parts::{Part, PartKind, parts};
use crate::plan::{ActivationPlan, LayerPrecision, Plan};

/// One row of the report: a part, its stored bytes and what it would take in f32.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartRow {
    /// `bottom.0`, `cross.0.v`, `top.1`, `tables.3 (name)`.
    pub name: String,
    /// `f32`, `int8-dyn/pc`, `fused4, sum pooling`, ...
    pub precision: String,
    /// `out×in` or `rows×dim`.
    pub shape: String,
    /// Bytes stored.
    pub bytes: u64,
    /// Bytes in f32.
    pub f32_bytes: u64,
}

/// The report of `quantrec inspect`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inspection {
    /// The artifact file.
    pub file: String,
    /// Its size.
    pub file_bytes: usize,
    /// Its format version.
    pub format_version: u32,
    /// The architecture.
    pub config: ModelConfig,
    /// The precision plan.
    pub plan: Plan,
    /// Source names of the tables.
    pub table_names: Vec<String>,
    /// Every part.
    pub parts: Vec<PartRow>,
    /// Bytes of every part.
    pub tensor_bytes: u64,
    /// Bytes of every part in f32.
    pub f32_bytes: u64,
    /// `tensor_bytes / f32_bytes`.
    pub ratio_vs_f32: f64,
    /// How reduced-precision layers were stored.
    pub quantization: BTreeMap<String, LayerQuant>,
    /// Where the model came from.
    pub provenance: Provenance,
    /// The quantrec version that wrote it.
    pub quantrec_version: String,
    /// The machine that wrote it.
    pub written_on: String,
    /// This machine.
    pub isa: String,
    /// `ok` or the digest mismatch, when verified.
    pub verified: Option<String>,
}

fn row(p: &Part, f32_part: &Part, table_names: &[String], plan: &Plan) -> PartRow {
    let (name, precision) = match p.kind {
        PartKind::Dense(prec) => (p.name.clone(), prec.short_name()),
        PartKind::Table(f, pooling) => {
            let t: usize = p.name["tables.".len()..].parse().unwrap_or(usize::MAX);
            let label = table_names
                .get(t)
                .map_or(String::new(), |n| format!(" ({n})"));
            let precision = match plan.tiers_of(t) {
                Some(tiers) => format!("tiers {}, {pooling:?} pooling", tiers.describe()),
                None => format!("{f}, {pooling:?} pooling"),
            };
            (format!("{}{label}", p.name), precision.to_lowercase())
        }
    };
    PartRow {
        name,
        precision,
        shape: format!("{}×{}", p.shape.0, p.shape.1),
        bytes: p.bytes,
        f32_bytes: f32_part.bytes,
    }
}

impl Inspection {
    /// The report of `artifact`, read from `path`; `verify` also hashes every tensor against the
    /// digest recorded at save time.
    pub fn new(artifact: &Artifact, path: &Path, verify: bool) -> Inspection {
        let m = &artifact.meta;
        let f32_parts = parts(&m.config, &Plan::f32(&m.config));
        let rows: Vec<PartRow> = parts(&m.config, &m.plan)
            .iter()
            .zip(&f32_parts)
            .map(|(p, f)| row(p, f, &m.table_names, &m.plan))
            .collect();
        let total: u64 = rows.iter().map(|p| p.bytes).sum();
        let total_f32: u64 = rows.iter().map(|p| p.f32_bytes).sum();
        Inspection {
            file: path.display().to_string(),
            file_bytes: artifact.file_bytes,
            format_version: m.format_version,
            config: m.config.clone(),
            plan: m.plan.clone(),
            table_names: m.table_names.clone(),
            parts: rows,
            tensor_bytes: total,
            f32_bytes: total_f32,
            ratio_vs_f32: total as f64 / total_f32.max(1) as f64,
            quantization: m.quantization.clone(),
            provenance: m.provenance.clone(),
            quantrec_version: m.quantrec_version.clone(),
            written_on: m.isa.written_on.clone(),
            isa: quantrec_kernels::isa::describe(),
            verified: verify.then(|| {
                artifact
                    .verify()
                    .map(|()| "ok".to_string())
                    .unwrap_or_else(|e| e.to_string())
            }),
        }
    }

    /// Static activation parameters of every int8-static layer, by layer name.
    fn statics(&self) -> Vec<(String, LayerPrecision)> {
        let p = &self.plan;
        let bottom = p
            .bottom
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("bottom.{i}"), *l));
        let cross = p
            .cross
            .iter()
            .enumerate()
            .flat_map(|(l, c)| [(format!("cross.{l}.v"), c.v), (format!("cross.{l}.w"), c.w)]);
        let top = p
            .top
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("top.{i}"), *l));
        bottom.chain(cross).chain(top).collect()
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

impl Display for Inspection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "{} — quantrec artifact v{}, written by quantrec {} on {}",
            self.file, self.format_version, self.quantrec_version, self.written_on
        )?;
        writeln!(
            f,
            "architecture: {:?} names; {} dense → bottom MLP {:?}; {} tables; interaction {:?}; top MLP {:?}",
            c.naming,
            c.dense_features,
            c.bottom_mlp,
            c.tables.len(),
            c.interaction,
            c.top_mlp
        )?;
        writeln!(
            f,
            "{:<28} {:<28} {:>14} {:>12} {:>12} {:>7}",
            "part", "precision", "shape", "bytes", "f32 bytes", "ratio"
        )?;
        for p in &self.parts {
            writeln!(
                f,
                "{:<28} {:<28} {:>14} {:>12} {:>12} {:>7.3}",
                p.name,
                p.precision,
                p.shape,
                p.bytes,
                p.f32_bytes,
                p.bytes as f64 / p.f32_bytes.max(1) as f64
            )?;
        }
        writeln!(
            f,
            "total: {} bytes ({:.2} MiB) vs {} in f32 ({:.2} MiB): {:.3}×; file {} bytes",
            self.tensor_bytes,
            mib(self.tensor_bytes),
            self.f32_bytes,
            mib(self.f32_bytes),
            self.ratio_vs_f32,
            self.file_bytes
        )?;
        for (layer, q) in &self.quantization {
            let saturated = if q.saturated > 0 {
                format!(" ({} weights saturated)", q.saturated)
            } else {
                String::new()
            };
            writeln!(
                f,
                "quantization {layer}: {} — {}{saturated}",
                q.precision, q.scheme
            )?;
        }
        for (layer, p) in self.statics() {
            if let LayerPrecision::Int8 {
                activations: ActivationPlan::Static { scale, zero_point },
                ..
            } = p
            {
                writeln!(
                    f,
                    "static activations {layer}: scale {scale}, zero point {zero_point}"
                )?;
            }
        }
        let pv = &self.provenance;
        writeln!(
            f,
            "provenance: source {} (sha256 {}), calibration {}, NE {}{}",
            pv.source_file.as_deref().unwrap_or("unknown"),
            pv.source_sha256.as_deref().unwrap_or("unknown"),
            pv.calibration.as_deref().unwrap_or("none"),
            pv.ne.map_or("not recorded".into(), |v| format!("{v:.6}")),
            pv.ne_reference
                .map_or(String::new(), |v| format!(" (f32 reference {v:.6})"))
        )?;
        if let Some(v) = &self.verified {
            writeln!(f, "data digest: {v}")?;
        }
        write!(
            f,
            "this machine: {} (dense layers are packed at load; the file assumes no ISA)",
            self.isa
        )
    }
}
