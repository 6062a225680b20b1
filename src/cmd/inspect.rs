//! `quantrec inspect`: what an artifact holds — architecture, plan, bytes per part against f32.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};

use quantrec_model::artifact::Artifact;
use quantrec_model::config::Interaction;
use quantrec_model::plan::{ActivationPlan, LayerPrecision};

/// Arguments of `quantrec inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The artifact.
    pub model: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also hash every tensor and compare with the digest recorded at save time (reads the whole file).
    #[arg(long)]
    pub verify: bool,
}

/// One part of the model: stored bytes and what it would take in f32.
struct Part {
    name: String,
    precision: String,
    shape: String,
    bytes: usize,
    f32_bytes: usize,
}

fn parts(a: &Artifact) -> Vec<Part> {
    let c = &a.meta.config;
    let p = &a.meta.plan;
    let stored = |prefix: &str| -> usize {
        a.tensor_bytes
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{prefix}.")) || n.as_str() == prefix)
            .map(|(_, b)| b)
            .sum()
    };
    let mut out = Vec::new();
    for (i, ((n, k), prec)) in c.bottom_shapes().into_iter().zip(&p.bottom).enumerate() {
        let name = format!("bottom.{i}");
        out.push(Part {
            bytes: stored(&name),
            name,
            precision: prec.short_name(),
            shape: format!("{n}×{k}"),
            f32_bytes: 4 * (n * k + n),
        });
    }
    if let Interaction::Dcn { rank, .. } = c.interaction {
        let w = c.concat_width();
        for (l, cp) in p.cross.iter().enumerate() {
            for (which, prec, n, k, bias) in [("v", cp.v, rank, w, 0), ("w", cp.w, w, rank, w)] {
                let name = format!("cross.{l}.{which}");
                out.push(Part {
                    bytes: stored(&name),
                    name,
                    precision: prec.short_name(),
                    shape: format!("{n}×{k}"),
                    f32_bytes: 4 * (n * k + bias),
                });
            }
        }
    }
    for (i, ((n, k), prec)) in c.top_shapes().into_iter().zip(&p.top).enumerate() {
        let name = format!("top.{i}");
        out.push(Part {
            bytes: stored(&name),
            name,
            precision: prec.short_name(),
            shape: format!("{n}×{k}"),
            f32_bytes: 4 * (n * k + n),
        });
    }
    for (t, (tc, f)) in c.tables.iter().zip(&p.tables).enumerate() {
        let label = a
            .meta
            .table_names
            .get(t)
            .map_or(String::new(), |n| format!(" ({n})"));
        out.push(Part {
            name: format!("tables.{t}{label}"),
            precision: format!("{f}, {:?} pooling", tc.pooling).to_lowercase(),
            shape: format!("{}×{}", tc.rows, tc.dim),
            bytes: stored(&format!("tables.{t}")),
            f32_bytes: 4 * tc.rows * tc.dim,
        });
    }
    out
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Runs `quantrec inspect`.
pub fn run(args: InspectArgs) -> Result<()> {
    let a =
        Artifact::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let verified = if args.verify {
        Some(
            a.verify()
                .map(|()| "ok".to_string())
                .unwrap_or_else(|e| e.to_string()),
        )
    } else {
        None
    };
    let parts = parts(&a);
    let total: usize = parts.iter().map(|p| p.bytes).sum();
    let total_f32: usize = parts.iter().map(|p| p.f32_bytes).sum();
    let isa = quantrec_kernels::isa::describe();
    let m = &a.meta;
    if args.json {
        let v = json!({
            "file": args.model.display().to_string(),
            "file_bytes": a.file_bytes,
            "format_version": m.format_version,
            "config": m.config,
            "plan": m.plan,
            "table_names": m.table_names,
            "parts": parts.iter().map(|p| json!({
                "name": p.name, "precision": p.precision, "shape": p.shape,
                "bytes": p.bytes, "f32_bytes": p.f32_bytes,
            })).collect::<Vec<Value>>(),
            "tensor_bytes": total,
            "f32_bytes": total_f32,
            "ratio_vs_f32": total as f64 / total_f32.max(1) as f64,
            "quantization": m.quantization,
            "provenance": m.provenance,
            "quantrec_version": m.quantrec_version,
            "written_on": m.isa.written_on,
            "isa": isa,
            "verified": verified,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let c = &m.config;
    println!(
        "{} — quantrec artifact v{}, written by quantrec {} on {}",
        args.model.display(),
        m.format_version,
        m.quantrec_version,
        m.isa.written_on
    );
    println!(
        "architecture: {:?} names; {} dense → bottom MLP {:?}; {} tables; interaction {:?}; top MLP {:?}",
        c.naming,
        c.dense_features,
        c.bottom_mlp,
        c.tables.len(),
        c.interaction,
        c.top_mlp
    );
    println!(
        "{:<28} {:<28} {:>14} {:>12} {:>12} {:>7}",
        "part", "precision", "shape", "bytes", "f32 bytes", "ratio"
    );
    for p in &parts {
        println!(
            "{:<28} {:<28} {:>14} {:>12} {:>12} {:>7.3}",
            p.name,
            p.precision,
            p.shape,
            p.bytes,
            p.f32_bytes,
            p.bytes as f64 / p.f32_bytes.max(1) as f64
        );
    }
    println!(
        "total: {total} bytes ({:.2} MiB) vs {total_f32} in f32 ({:.2} MiB): {:.3}×; file {} bytes",
        mib(total),
        mib(total_f32),
        total as f64 / total_f32.max(1) as f64,
        a.file_bytes
    );
    for (layer, q) in &m.quantization {
        println!(
            "quantization {layer}: {} — {}{}",
            q.precision,
            q.scheme,
            if q.saturated > 0 {
                format!(" ({} weights saturated)", q.saturated)
            } else {
                String::new()
            }
        );
    }
    let statics =
        m.plan
            .bottom
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("bottom.{i}"), *p))
            .chain(
                m.plan.cross.iter().enumerate().flat_map(|(l, c)| {
                    [(format!("cross.{l}.v"), c.v), (format!("cross.{l}.w"), c.w)]
                }),
            )
            .chain(
                m.plan
                    .top
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (format!("top.{i}"), *p)),
            );
    for (layer, p) in statics {
        if let LayerPrecision::Int8 {
            activations: ActivationPlan::Static { scale, zero_point },
            ..
        } = p
        {
            println!("static activations {layer}: scale {scale}, zero point {zero_point}");
        }
    }
    let pv = &m.provenance;
    println!(
        "provenance: source {} (sha256 {}), calibration {}, NE {}{}",
        pv.source_file.as_deref().unwrap_or("unknown"),
        pv.source_sha256.as_deref().unwrap_or("unknown"),
        pv.calibration.as_deref().unwrap_or("none"),
        pv.ne.map_or("not recorded".into(), |v| format!("{v:.6}")),
        pv.ne_reference
            .map_or(String::new(), |v| format!(" (f32 reference {v:.6})"))
    );
    if let Some(v) = verified {
        println!("data digest: {v}");
    }
    println!("this machine: {isa} (dense layers are packed at load; the file assumes no ISA)");
    Ok(())
}
