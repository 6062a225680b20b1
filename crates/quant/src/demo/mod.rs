//! The demo: the whole offline story on this machine in a few minutes, as a library.
//!
//! 1. a self-check of every kernel at every ISA level against the scalar oracle ([`selfcheck`]);
//! 2. data: Criteo-like synthetic rows (train / calibration / evaluation splits from independent
//!    streams) or a real click log split into train / calibration / holdout, and the default
//!    fp32 DLRM trained on it ([`data`]);
//! 3. automatic quantization under the NE budget ([`quantize`]);
//! 4. f32 vs quantized on the evaluation rows (NE, AUC, calibration, ΔNE, bytes);
//! 5. predict throughput and latency at batch 1, 64 and 1024, f32 vs quantized (the size-optimal
//!    plan and the latency-optimal plan), 1 and 2 threads ([`throughput`]);
//! 6. day 2 (synthetic data): drifted rows, the fp32 model trained further on them, and `refresh`
//!    of the day-1 artifact with its plan diff and gate ([`day2`]);
//! 7. the models saved in the output directory and the [`DemoReport`] (Markdown through
//!    `Display`, JSON through `Serialize`; [`report`]).
//!
//! [`run_offline`] runs all of it and returns a [`DemoOutcome`]: the report and everything a later
//! stage needs (models, evaluation rows, artifact paths), so an online stage (serving) can be
//! appended by a crate above this one, adding its own [`ReportSection`]. The story is told through
//! [`DemoEvent`]s: the caller prints them (and draws progress bars).

pub mod data;
pub mod day2;
pub mod quantize;
pub mod report;
pub mod selfcheck;
pub mod throughput;

use std::path::{Path, PathBuf};
use std::time::Instant;

use quantrec_model::artifact::{self, Provenance};
use quantrec_model::{Model, ModelConfig, Plan, Scratch, Weights};
use quantrec_train::Progress;

use crate::eval::EvalSet;
use crate::report::plot::render_png;
use crate::report::search_report;
use crate::search::Budget;
use crate::workflow::QuantizeOutcome;
use crate::{QuantError, Result};

pub use report::{DemoReport, ReportSection};

/// What the demo runs on and how long it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoOptions {
    /// The short version (under two minutes): fewer training rows, shorter timings.
    pub quick: bool,
    /// A real click log (Criteo DAC TSV) instead of synthetic data.
    pub data: Option<PathBuf>,
    /// Where the models (and, written by the caller, the reports) go.
    pub out: PathBuf,
    /// Accuracy budget: largest relative NE increase, in percent.
    pub budget_ne: f64,
    /// Training rows of synthetic data (default 8M, 1.5M with `quick`).
    pub train_rows: Option<u64>,
    /// Skip the kernel self-check.
    pub skip_kernels: bool,
    /// The architecture trained (dot DLRM by default, or DLRM-v2's DCN-v2 cross net).
    pub arch: quantrec_train::ModelArch,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            quick: false,
            data: None,
            out: PathBuf::from("demo-out"),
            budget_ne: 0.02,
            train_rows: None,
            skip_kernels: false,
            arch: quantrec_train::ModelArch::Dot,
        }
    }
}

/// One moment of the story, for the caller to print or draw.
#[derive(Clone, Copy, Debug)]
pub enum DemoEvent<'a> {
    /// A stage begins (e.g. `3/7 automatic quantization under ΔNE ≤ 0.02%`).
    Stage(&'a str),
    /// One line of the story (printed with a newline).
    Line(&'a str),
    /// Text printed as it is (it carries its own newlines).
    Text(&'a str),
    /// A long computation without a count begins (a spinner); [`DemoEvent::Done`] ends it.
    Busy(&'a str),
    /// The computation begun by [`DemoEvent::Busy`] ended.
    Done,
    /// Training over `samples` samples begins; [`DemoEvent::Train`] reports progress.
    TrainStart {
        /// Samples to train on.
        samples: u64,
    },
    /// Training progress.
    Train(&'a Progress),
    /// Training ended.
    TrainEnd,
}

/// Where the story goes: the caller's event handler.
pub struct Story<'a> {
    sink: &'a mut dyn FnMut(DemoEvent<'_>),
}

impl<'a> Story<'a> {
    /// Tells the story to `sink`.
    pub fn new(sink: &'a mut dyn FnMut(DemoEvent<'_>)) -> Self {
        Story { sink }
    }

    /// Sends one event.
    pub fn event(&mut self, e: DemoEvent<'_>) {
        (self.sink)(e);
    }

    /// A stage title.
    pub fn stage(&mut self, title: &str) {
        self.event(DemoEvent::Stage(title));
    }

    /// One line.
    pub fn line(&mut self, text: impl AsRef<str>) {
        self.event(DemoEvent::Line(text.as_ref()));
    }

    /// Runs `f` between [`DemoEvent::Busy`] and [`DemoEvent::Done`].
    pub fn busy<T>(&mut self, what: &str, f: impl FnOnce() -> T) -> T {
        self.event(DemoEvent::Busy(what));
        let out = f();
        self.event(DemoEvent::Done);
        out
    }

    /// Runs a training over `samples` samples between [`DemoEvent::TrainStart`] and
    /// [`DemoEvent::TrainEnd`]; `f` gets the progress callback to hand to the trainer.
    pub fn train<T>(&mut self, samples: u64, f: impl FnOnce(&mut dyn FnMut(&Progress)) -> T) -> T {
        self.event(DemoEvent::TrainStart { samples });
        let out = f(&mut |p: &Progress| (self.sink)(DemoEvent::Train(p)));
        self.event(DemoEvent::TrainEnd);
        out
    }
}

/// What the offline stages leave for the caller and for later stages.
pub struct DemoOutcome {
    /// The report (the caller writes `report.md` and `report.json`; later stages may add sections).
    pub report: DemoReport,
    /// The f32 model's architecture.
    pub config: ModelConfig,
    /// Its f32 weights.
    pub weights: Weights,
    /// The f32 model.
    pub f32_model: Model,
    /// The automatic quantization (plan, weights, model, comparison, search).
    pub quantized: QuantizeOutcome,
    /// The evaluation rows.
    pub eval: EvalSet,
    /// The saved f32 artifact.
    pub f32_path: PathBuf,
    /// The saved quantized artifact.
    pub quantized_path: PathBuf,
    /// The day-2 refreshed artifact, when day 2 ran and passed.
    pub day2_path: Option<PathBuf>,
    /// The day-2 evaluation rows (drifted, held out), when day 2 ran.
    pub day2_eval: Option<EvalSet>,
    /// When the demo started.
    pub started: Instant,
}

impl DemoOutcome {
    /// Writes `report.md`, `report.json` and `frontier.png` into `dir`; returns their paths in
    /// that order.
    pub fn write_reports(&self, dir: &Path) -> Result<[PathBuf; 3]> {
        let paths = [
            dir.join("report.md"),
            dir.join("report.json"),
            dir.join("frontier.png"),
        ];
        let json = self
            .report
            .to_json_pretty()
            .map_err(|e| QuantError::io(&paths[1], e.into()))?;
        std::fs::write(&paths[0], self.report.to_string())
            .map_err(|e| QuantError::io(&paths[0], e))?;
        std::fs::write(&paths[1], json).map_err(|e| QuantError::io(&paths[1], e))?;
        self.render_frontier(&paths[2])?;
        Ok(paths)
    }

    /// Draws the search's Pareto frontier to `path` (PNG), labelling only the landmarks (f32,
    /// presets, the chosen plan); the greedy steps stay unlabelled dots.
    pub fn render_frontier(&self, path: &Path) -> Result<()> {
        let search = quantize::recorded_search(&self.quantized)?;
        let (mut points, chosen) = search_report::plotted(search);
        for (i, p) in points.iter_mut().enumerate() {
            if Some(i) != chosen && p.name != "f32" && !p.name.starts_with("preset") {
                p.name.clear();
            }
        }
        render_png(
            path,
            &points,
            search.objective,
            search.budget.limit(),
            chosen,
        )
    }
}

/// Runs every offline stage (self-check, data and training, quantization, comparison, throughput,
/// day 2) and saves the models in `options.out`; the story goes to `on_event`.
pub fn run_offline(
    options: &DemoOptions,
    on_event: &mut dyn FnMut(DemoEvent<'_>),
) -> Result<DemoOutcome> {
    let started = Instant::now();
    let mut story = Story::new(on_event);
    story.line(format!(
        "quantrec demo — {}",
        quantrec_kernels::isa::describe()
    ));
    if !options.skip_kernels {
        story.stage("1/7 kernel self-check: every ISA level against the scalar oracle");
        selfcheck::run(&mut story)?;
    }
    story.stage("2/7 data and fp32 training");
    let trained = match &options.data {
        None => data::train_synthetic(options, &mut story)?,
        Some(path) => data::train_file(path, options.arch, &mut story)?,
    };
    let f32_plan = Plan::f32(&trained.config);
    let f32_model = Model::from_parts(&trained.config, &trained.weights, &f32_plan)?;
    story.stage(&format!(
        "3/7 automatic quantization under ΔNE ≤ {}%",
        options.budget_ne
    ));
    let outcome = quantize::automatic(options, &trained, &mut story)?;
    story.stage("4/7 f32 vs quantized on the evaluation rows");
    quantize::tell_comparison(options, &trained, &outcome, &mut story);
    story.stage("5/7 predict throughput and latency");
    let lat = quantize::latency_optimal(options, &trained, &outcome, &mut story)?;
    let same_plan = lat.plan == outcome.plan;
    let mut models = vec![("f32", &f32_model), ("quantized", &outcome.model)];
    if !same_plan {
        models.push(("q-latency", &lat.model));
    }
    let throughput = throughput::bench_predict(&models, &trained.eval, options.quick, &mut story)?;
    story
        .stage("6/7 refresh: day-2 data, the model trained further, the day-1 recipe re-validated");
    let refreshed = match &trained.synthetic {
        Some((trainer, recipe)) => Some(day2::run(
            &day2::Day1 {
                trainer,
                recipe,
                config: &trained.config,
                weights: &trained.weights,
                plan: &outcome.plan,
                delta_ne_pct: outcome.comparison.delta_ne_pct,
            },
            Budget::Ne(options.budget_ne),
            options.quick,
            &options.out,
            &mut story,
        )?),
        None => {
            story.line("skipped: day-2 data is synthetic (run without --data)");
            None
        }
    };
    story.stage("7/7 writing the reports");
    let (f32_path, quantized_path) = save_models(options, &trained, &f32_plan, &outcome)?;
    let search_markdown = search_report::markdown(quantize::recorded_search(&outcome)?)?;
    let mut report = DemoReport::new(
        options,
        &trained,
        &outcome,
        throughput,
        lat.summary(same_plan),
    );
    report.seconds = started.elapsed().as_secs_f64();
    report.search_markdown = search_markdown;
    let (refreshed, day2_eval) = match refreshed {
        Some((section, eval)) => (Some(section), Some(eval)),
        None => (None, None),
    };
    let day2_path = refreshed
        .as_ref()
        .and_then(|r| r.model.clone().map(PathBuf::from));
    report.refresh = refreshed;
    Ok(DemoOutcome {
        report,
        config: trained.config,
        weights: trained.weights,
        f32_model,
        quantized: outcome,
        eval: trained.eval,
        f32_path,
        quantized_path,
        day2_path,
        day2_eval,
        started,
    })
}

/// Saves the f32 and the quantized artifacts in `options.out` and checks that the saved quantized
/// artifact predicts exactly what the in-memory model does.
fn save_models(
    options: &DemoOptions,
    trained: &data::Trained,
    f32_plan: &Plan,
    outcome: &QuantizeOutcome,
) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(&options.out).map_err(|e| QuantError::io(&options.out, e))?;
    let f32_path = options.out.join("model-f32.safetensors");
    let q_path = options.out.join("model-quantized.safetensors");
    let source = serde_json::to_value(&trained.source).map_err(|e| QuantError::Json {
        what: "the demo's data description",
        source: e,
    })?;
    let provenance = Provenance {
        notes: Some(serde_json::json!({"tool": "quantrec demo", "data": source}).to_string()),
        ..Provenance::default()
    };
    artifact::save(
        &f32_path,
        &trained.config,
        &trained.weights,
        f32_plan,
        &provenance,
    )?;
    artifact::save(
        &q_path,
        &trained.config,
        &outcome.weights,
        &outcome.plan,
        &outcome.provenance(None, source),
    )?;
    let reloaded = Model::load(&q_path)?;
    let probe = &trained.eval.batches[0];
    let (mut s1, mut s2) = (Scratch::new(), Scratch::new());
    if reloaded.predict(probe, &mut s1)? != outcome.model.predict(probe, &mut s2)? {
        return Err(QuantError::Reproduce { path: q_path });
    }
    Ok((f32_path, q_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_the_cli_defaults() {
        let o = DemoOptions::default();
        assert_eq!(o.out, PathBuf::from("demo-out"));
        assert_eq!(o.budget_ne, 0.02);
        assert!(!o.quick && !o.skip_kernels && o.data.is_none() && o.train_rows.is_none());
    }

    #[test]
    fn the_story_brackets_busy_work_and_training() {
        let mut seen = Vec::new();
        let mut sink = |e: DemoEvent<'_>| {
            seen.push(match e {
                DemoEvent::Busy(w) => format!("busy {w}"),
                DemoEvent::Done => "done".into(),
                DemoEvent::TrainStart { samples } => format!("train {samples}"),
                DemoEvent::TrainEnd => "trained".into(),
                DemoEvent::Line(l) => l.to_string(),
                other => format!("{other:?}"),
            })
        };
        {
            let mut story = Story::new(&mut sink);
            assert_eq!(story.busy("x", || 3), 3);
            story.train(10, |_| ());
            story.line("hello");
        }
        assert_eq!(seen, ["busy x", "done", "train 10", "trained", "hello"]);
    }
}
