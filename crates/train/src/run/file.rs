//! Training streamed from a data file: a first pass counts the rows when a tail holdout must be
//! cut off, then every epoch reads the file again; the holdout is evaluated streamed too (only
//! logits and labels are kept, for the AUC).

use std::path::Path;
use std::time::Instant;

use super::{FileSummary, FileTraining, Holdout, OptionsSummary, RunEvent};
use crate::{EvalReport, Progress, Result, TrainError, Trainer};
use quantrec_data::{Batch, SourceSpec, batch_ops, source};

/// Streams `path` batch by batch and hands every batch of its rows `lo..hi` (cut at the ends) to
/// `f`; memory stays at one batch whatever the file size. Returns the rows read and tells
/// `on_event` how many malformed lines were skipped.
fn stream_rows(
    path: &Path,
    spec: &SourceSpec,
    (lo, hi): (u64, u64),
    on_event: &mut dyn FnMut(RunEvent<'_>),
    mut f: impl FnMut(&Batch, &mut dyn FnMut(RunEvent<'_>)) -> Result<()>,
) -> Result<u64> {
    let mut src = source::open_source(path, spec)?;
    let mut row = 0u64;
    while let Some(b) = src.next_batch()? {
        if b.labels.is_none() {
            return Err(TrainError::Unlabelled { path: path.into() });
        }
        let (start, end) = (row, row + b.size as u64);
        row = end;
        let (s, e) = (start.max(lo), end.min(hi));
        if s >= e {
            if start >= hi {
                break;
            }
            continue;
        }
        if s == start && e == end {
            f(&b, on_event)?;
        } else {
            let cut = batch_ops::slice(&b, (s - start) as usize, (e - start) as usize);
            f(&cut, on_event)?;
        }
    }
    let skipped = src.stats().skipped_lines;
    if skipped > 0 {
        on_event(RunEvent::Skipped {
            path,
            lines: skipped as u64,
        });
    }
    Ok(row)
}

/// Evaluates `trainer` on the rows of `path` from row `from` on, streamed batch by batch.
fn evaluate_stream(
    trainer: &mut Trainer,
    path: &Path,
    spec: &SourceSpec,
    from: u64,
) -> Result<EvalReport> {
    let mut src = source::open_source(path, spec)?;
    let mut row = 0u64;
    let mut failure = None;
    let batches = std::iter::from_fn(|| {
        loop {
            let b = match src.next_batch() {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => {
                    failure = Some(e);
                    return None;
                }
            };
            let start = row;
            row += b.size as u64;
            if row <= from {
                continue;
            }
            return Some(if start >= from {
                b
            } else {
                batch_ops::slice(&b, (from - start) as usize, b.size)
            });
        }
    });
    let report = trainer.evaluate(batches)?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(report)
}

/// Rows held out of `n` for `holdout` (tail holdouts only).
pub fn holdout_rows(holdout: &Holdout, n: u64) -> Result<u64> {
    let hold = match *holdout {
        Holdout::Rows(r) => r,
        Holdout::Fraction(f) if (0.0..1.0).contains(&f) => (n as f64 * f).round() as u64,
        Holdout::Fraction(fraction) => return Err(TrainError::HoldoutFraction { fraction }),
        Holdout::None | Holdout::File(_) => 0,
    };
    if hold >= n {
        return Err(TrainError::Holdout {
            rows: n,
            holdout: hold,
        });
    }
    Ok(hold)
}

/// The trainer a run starts from: fresh, or from `run.init`.
fn start_trainer(run: &FileTraining, n_dense: usize) -> Result<Trainer> {
    let config = run.arch.config(n_dense, &run.table_rows, run.dim);
    match &run.init {
        Some(p) => Trainer::from_state_dict(config, run.options, crate::read_safetensors(p)?),
        None => Trainer::new(config, run.options),
    }
}

/// Trains on `run.data` streamed, `run.options.epochs` times, evaluates the holdout, and writes
/// the state dict to `run.output`.
pub fn train_from_source(
    run: &FileTraining,
    mut on_event: impl FnMut(RunEvent<'_>),
) -> Result<FileSummary> {
    let on_event: &mut dyn FnMut(RunEvent<'_>) = &mut on_event;
    let options = run.options;
    let data = &run.data;
    let spec = SourceSpec {
        schema: run.schema.clone(),
        ..SourceSpec::new(run.table_rows.clone(), options.batch_size)
    };
    let start = Instant::now();
    let n_dense = source::open_source(data, &spec)?.n_dense();
    let (train_end, holdout) = match &run.holdout {
        Holdout::File(path) => (u64::MAX, Some((path.as_path(), 0))),
        Holdout::None => (u64::MAX, None),
        tail => {
            let n = stream_rows(data, &spec, (0, u64::MAX), on_event, |_, _| Ok(()))?;
            let hold = holdout_rows(tail, n)?;
            (n - hold, (hold > 0).then_some((data.as_path(), n - hold)))
        }
    };
    let mut trainer = start_trainer(run, n_dense)?;
    let epochs = options.epochs as u64;
    on_event(RunEvent::Total(if train_end == u64::MAX {
        0
    } else {
        train_end * epochs
    }));
    let t = Instant::now();
    let mut train_rows = 0u64;
    for epoch in 0..options.epochs {
        let mut step = 0;
        train_rows = stream_rows(data, &spec, (0, train_end), on_event, |b, on_event| {
            trainer.fit_stream(std::iter::once(b), |p| {
                on_event(RunEvent::Step(&Progress { epoch, step, ..*p }))
            })?;
            step += 1;
            Ok(())
        })?
        .min(train_end);
        if epoch == 0 {
            on_event(RunEvent::Total(train_rows * epochs));
        }
    }
    let train_seconds = t.elapsed().as_secs_f64();
    let report = match holdout {
        Some((path, from)) => Some(evaluate_stream(&mut trainer, path, &spec, from)?),
        None => None,
    };
    trainer.save_safetensors(&run.output)?;
    Ok(FileSummary {
        source: data.clone(),
        train_rows,
        table_rows: run.table_rows.clone(),
        options: OptionsSummary::from(&options),
        holdout: report,
        train_seconds,
        samples_per_second: (train_rows * epochs) as f64 / train_seconds.max(1e-9),
        wall_seconds: start.elapsed().as_secs_f64(),
        output: run.output.clone(),
    })
}
