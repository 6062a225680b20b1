//! PNG plot of evaluated plans: ΔNE against the objective's cost.
//!
//! Drawn with plotters' bitmap backend. Text uses an embedded ASCII subset of DejaVu Sans
//! (`assets/DejaVuSans-subset.ttf`, license beside it) through plotters' `ab_glyph` feature, so
//! no system font library (fontconfig/freetype) is needed to build or run.
//!
//! The x axis is the objective's cost: size in MiB, latency in ms, or for [`Objective::Both`] the
//! normalized sum of [`scalar_costs`]. The plot shows every plan (grey, labelled), the Pareto
//! frontier in that plane (blue staircase through the non-dominated plans), the ΔNE budget (red
//! dashed line) and the chosen plan (green ring, labelled).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::search::pareto::{Objective, PlanPoint, front_2d, scalar_costs, validate};
use crate::{QuantError, Result};

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

/// Registers the embedded font once; `false` if it could not be registered (then text is
/// skipped, everything else is drawn).
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok())
}

/// x coordinate of each point for `objective` (MiB, ms, or normalized cost).
fn x_values(points: &[PlanPoint], objective: Objective) -> Vec<f64> {
    let costs = scalar_costs(points, objective);
    match objective {
        Objective::Bytes => costs.iter().map(|b| b / (1u64 << 20) as f64).collect(),
        Objective::Latency => costs.iter().map(|s| s * 1e3).collect(),
        Objective::Both => costs,
    }
}

/// `[lo, hi]` widened by 8% on each side (and to a unit span around a single value at 0, ±10%
/// around any other single value).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    if span <= 0.0 {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    (lo - 0.08 * span, hi + 0.08 * span)
}

/// Renders the plot of `points` for `objective` to a PNG at `path` (1000 × 650 pixels), with the
/// budget line at `budget_pct` and `chosen` (an index into `points`) marked. Refuses invalid
/// points, a non-finite budget, and a `chosen` index out of range; drawing and file errors come
/// back as [`QuantError::Plot`].
pub fn render_png(
    path: &Path,
    points: &[PlanPoint],
    objective: Objective,
    budget_pct: f64,
    chosen: Option<usize>,
) -> Result<()> {
    validate(points)?;
    if !budget_pct.is_finite() {
        return Err(QuantError::InvalidBudget { value: budget_pct });
    }
    if let Some(c) = chosen.filter(|&c| c >= points.len()) {
        return Err(QuantError::ChosenOutOfRange {
            index: c,
            plans: points.len(),
        });
    }
    let plot_err = |e: &dyn std::fmt::Display| QuantError::Plot {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let xs = x_values(points, objective);
    let ys: Vec<f64> = points.iter().map(|p| p.delta_ne_pct).collect();
    let front = front_2d(&xs, &ys);
    // Costs are >= 0: the x axis starts at 0 and leaves room on the right for labels.
    let (_, x1) = padded(0.0, xs.iter().copied().fold(0.0, f64::max));
    let x0 = 0.0;
    let (y0, y1) = padded(
        ys.iter().copied().fold(budget_pct.min(0.0), f64::min),
        ys.iter().copied().fold(budget_pct.max(0.0), f64::max),
    );
    let text = font_ready();

    let root = BitMapBackend::new(path, (1000, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        let title = match objective {
            Objective::Bytes => "Evaluated plans: NE change vs model size",
            Objective::Latency => "Evaluated plans: NE change vs latency",
            Objective::Both => "Evaluated plans: NE change vs size+latency",
        };
        builder
            .caption(title, (FAMILY, 24))
            .x_label_area_size(50)
            .y_label_area_size(80);
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| plot_err(&e))?;
    if text {
        chart
            .configure_mesh()
            .x_desc(objective.axis_label())
            .y_desc("ΔNE (%)")
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| plot_err(&e))?;
    } else {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .draw()
            .map_err(|e| plot_err(&e))?;
    }

    let grey = RGBColor(120, 120, 120);
    let blue = RGBColor(31, 90, 200);
    let red = RGBColor(210, 40, 40);
    let green = RGBColor(20, 160, 60);

    chart
        .draw_series(DashedLineSeries::new(
            vec![(x0, budget_pct), (x1, budget_pct)],
            10,
            6,
            red.stroke_width(2),
        ))
        .map_err(|e| plot_err(&e))?
        .label(format!("budget {budget_pct}%"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));

    // Staircase through the frontier: from each frontier point right to the next one's cost,
    // then down to its ΔNE.
    let mut stairs = Vec::new();
    for (k, &i) in front.iter().enumerate() {
        stairs.push((xs[i], ys[i]));
        if let Some(&j) = front.get(k + 1) {
            stairs.push((xs[j], ys[i]));
        }
    }
    chart
        .draw_series(LineSeries::new(stairs, blue.stroke_width(2)))
        .map_err(|e| plot_err(&e))?
        .label("Pareto frontier")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));

    chart
        .draw_series(
            xs.iter()
                .zip(&ys)
                .map(|(&x, &y)| Circle::new((x, y), 5, grey.filled())),
        )
        .map_err(|e| plot_err(&e))?
        .label("evaluated plan")
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, grey.filled()));
    chart
        .draw_series(
            front
                .iter()
                .map(|&i| Circle::new((xs[i], ys[i]), 5, blue.filled())),
        )
        .map_err(|e| plot_err(&e))?;

    if let Some(c) = chosen {
        chart
            .draw_series(std::iter::once(Circle::new(
                (xs[c], ys[c]),
                11,
                green.stroke_width(3),
            )))
            .map_err(|e| plot_err(&e))?
            .label("chosen plan")
            .legend(move |(x, y)| Circle::new((x + 10, y), 6, green.stroke_width(3)));
    }

    if text {
        let label = (FAMILY, 14).into_font().color(&BLACK);
        chart
            .draw_series(points.iter().enumerate().map(|(i, p)| {
                let name = if chosen == Some(i) {
                    format!("{} (chosen)", p.name)
                } else {
                    p.name.clone()
                };
                EmptyElement::at((xs[i], ys[i])) + Text::new(name, (8, -18), label.clone())
            }))
            .map_err(|e| plot_err(&e))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_err(&e))?;
    }
    root.present().map_err(|e| plot_err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::pareto::pt;

    fn sample() -> Vec<PlanPoint> {
        vec![
            pt("f32", 100, 10.0, 0.0),
            pt("fp16", 50, 8.0, 0.001),
            pt("int8", 25, 5.0, 0.02),
            pt("int4", 13, 6.0, 0.08),
            pt("slow8", 25, 9.0, 0.03),
            pt("mixed", 30, 4.0, 0.015),
            pt("bf16+int8", 40, 6.5, 0.006),
        ]
    }

    /// Where test plots go: `QUANTREC_PLOT_DIR` if set (they are then kept for viewing), else
    /// the temp dir (removed after the test).
    fn out_path(tag: &str) -> std::path::PathBuf {
        match std::env::var_os("QUANTREC_PLOT_DIR") {
            Some(dir) => std::path::PathBuf::from(dir).join(format!("plans-{tag}.png")),
            None => {
                std::env::temp_dir().join(format!("quantrec-plot-{}-{tag}.png", std::process::id()))
            }
        }
    }

    fn done(path: &Path) {
        if std::env::var_os("QUANTREC_PLOT_DIR").is_none() {
            std::fs::remove_file(path).unwrap();
        }
    }

    /// Width and height from a PNG's IHDR chunk, after checking the signature and the IEND chunk.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
        let be = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn writes_valid_png_for_every_objective() {
        let pts = sample();
        for (tag, obj) in [
            ("bytes", Objective::Bytes),
            ("latency", Objective::Latency),
            ("both", Objective::Both),
        ] {
            let path = out_path(tag);
            let chosen = crate::search::pick(&pts, obj, 0.02).unwrap();
            render_png(&path, &pts, obj, 0.02, chosen).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(png_size(&bytes), (1000, 650));
            // A blank white canvas compresses to a few hundred bytes; a drawn plot does not.
            assert!(bytes.len() > 5000, "{} bytes", bytes.len());
            done(&path);
        }
    }

    #[test]
    fn bad_input_and_unwritable_path_are_errors() {
        let pts = sample();
        let path = out_path("bad");
        assert!(render_png(&path, &pts, Objective::Bytes, f64::NAN, None).is_err());
        assert!(render_png(&path, &pts, Objective::Bytes, 0.02, Some(99)).is_err());
        let missing = std::env::temp_dir().join("quantrec-no-such-dir/x/plot.png");
        assert!(matches!(
            render_png(&missing, &pts, Objective::Bytes, 0.02, None),
            Err(QuantError::Plot { .. })
        ));
        // A single point and an empty set still plot.
        render_png(&path, &pts[..1], Objective::Latency, 0.02, Some(0)).unwrap();
        render_png(&path, &[], Objective::Both, 0.02, None).unwrap();
        done(&path);
    }
}
