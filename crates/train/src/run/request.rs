//! A training run as a command line asks for it: the data (synthetic recipe or a file), the
//! shape, and overrides of the trainer's defaults, resolved into a [`SynthRecipe`] or a
//! [`FileTraining`] and run ([`run_request`]).

use std::fmt::{self, Display, Formatter};
use std::path::{Path, PathBuf};

use quantrec_data::{Schema, synth};
use serde::Serialize;

use super::{
    FileSummary, FileTraining, Holdout, RunEvent, SyntheticSummary, train_from_source,
    train_synthetic_to,
};
use crate::recipe::SynthRecipe;
use crate::{ModelArch, Optimizer, Result, TrainError, TrainOptions};

/// Overrides of the trainer options; each `None` keeps the default it is applied to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionOverrides {
    /// Passes over the data (file data only).
    pub epochs: Option<usize>,
    /// Samples per step (at least 1).
    pub batch_size: Option<usize>,
    /// Learning rate of the MLPs.
    pub lr_dense: Option<f32>,
    /// Learning rate of the tables.
    pub lr_sparse: Option<f32>,
    /// Seed of the initial parameters.
    pub seed: Option<u64>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// Update rule.
    pub optimizer: Option<Optimizer>,
}

impl OptionOverrides {
    /// `base` with the overrides applied.
    pub fn apply(&self, mut options: TrainOptions) -> Result<TrainOptions> {
        if let Some(v) = self.epochs {
            options.epochs = v;
        }
        if let Some(v) = self.batch_size {
            if v == 0 {
                return Err(TrainError::InvalidOption {
                    option: "batch size",
                    reason: "must be at least 1".into(),
                });
            }
            options.batch_size = v;
        }
        if let Some(v) = self.lr_dense {
            options.lr_dense = v;
        }
        if let Some(v) = self.lr_sparse {
            options.lr_sparse = v;
        }
        if let Some(v) = self.seed {
            options.seed = v;
        }
        options.threads = self.threads.or(options.threads);
        if let Some(o) = self.optimizer {
            options.optimizer = o;
        }
        Ok(options)
    }
}

/// Where the training rows come from.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainData {
    /// The synthetic recipe (Criteo-like rows labelled by a hidden teacher); each `None` keeps
    /// the recipe's value.
    Synthetic {
        /// Training rows.
        rows: Option<u64>,
        /// Evaluation rows.
        eval_rows: Option<u64>,
        /// Zipf exponent of id popularity.
        zipf: Option<f64>,
        /// Seed of the teacher and the rows.
        seed: u64,
    },
    /// A data file, streamed.
    File {
        /// Criteo DAC TSV (optionally .gz), a file read through `schema`, or a batch file.
        data: PathBuf,
        /// Schema JSON of a text file (Criteo DAC when `None`).
        schema: Option<PathBuf>,
        /// Held-out rows.
        holdout: Holdout,
        /// Start from this state dict instead of fresh parameters.
        init: Option<PathBuf>,
    },
}

/// A whole training run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRequest {
    /// The rows.
    pub data: TrainData,
    /// Synthetic: Criteo Kaggle table sizes capped at this; file: rows every column is hashed
    /// into (100,000 when `None`).
    pub max_table_rows: Option<usize>,
    /// Explicit table sizes (override `max_table_rows`).
    pub table_rows: Option<Vec<usize>>,
    /// Embedding dimension.
    pub dim: usize,
    /// The interaction.
    pub arch: ModelArch,
    /// Overrides of the synthetic recipe's options (synthetic) or the trainer's defaults (file).
    pub overrides: OptionOverrides,
    /// Where the trained state dict goes.
    pub output: PathBuf,
}

/// A request resolved: what [`train_synthetic_to`] or [`train_from_source`] runs.
#[derive(Clone, Debug)]
pub enum TrainPlan {
    /// The synthetic recipe.
    Synthetic(SynthRecipe),
    /// A data file.
    File(FileTraining),
}

impl TrainRequest {
    /// The file the run reads (for error context): the data file, or `None` for synthetic data.
    pub fn data_file(&self) -> Option<&Path> {
        match &self.data {
            TrainData::File { data, .. } => Some(data),
            TrainData::Synthetic { .. } => None,
        }
    }

    /// Resolves the request (refusing a batch size of 0, epochs on synthetic data, a holdout
    /// fraction outside `[0, 1)`, an unreadable schema).
    pub fn plan(&self) -> Result<TrainPlan> {
        match &self.data {
            TrainData::Synthetic {
                rows,
                eval_rows,
                zipf,
                seed,
            } => {
                if self.overrides.epochs.is_some_and(|e| e != 1) {
                    return Err(TrainError::InvalidOption {
                        option: "epochs",
                        reason: "applies to file data only (synthetic rows are generated \
                                 fresh, one pass)"
                            .into(),
                    });
                }
                let mut recipe = SynthRecipe {
                    dim: self.dim,
                    arch: self.arch,
                    ..SynthRecipe::default()
                };
                recipe.options = self.overrides.apply(recipe.options)?;
                recipe.synth.seed = *seed;
                if let Some(rows) = &self.table_rows {
                    recipe.synth.table_rows = rows.clone();
                } else if let Some(cap) = self.max_table_rows {
                    recipe.synth.table_rows = synth::criteo_table_rows(cap);
                }
                if let Some(z) = zipf {
                    recipe.synth.zipf_exponent = *z;
                }
                recipe.train_rows = rows.unwrap_or(recipe.train_rows);
                recipe.eval_rows = eval_rows.unwrap_or(recipe.eval_rows);
                Ok(TrainPlan::Synthetic(recipe))
            }
            TrainData::File {
                data,
                schema,
                holdout,
                init,
            } => {
                if let Holdout::Fraction(f) = holdout
                    && !(0.0..1.0).contains(f)
                {
                    return Err(TrainError::HoldoutFraction { fraction: *f });
                }
                let schema = schema.as_deref().map(Schema::from_json_file).transpose()?;
                let n_tables = schema.as_ref().map_or(26, Schema::n_sparse);
                let table_rows = match &self.table_rows {
                    Some(rows) => rows.clone(),
                    None => vec![self.max_table_rows.unwrap_or(100_000); n_tables],
                };
                Ok(TrainPlan::File(FileTraining {
                    data: data.clone(),
                    schema,
                    table_rows,
                    holdout: holdout.clone(),
                    dim: self.dim,
                    arch: self.arch,
                    init: init.clone(),
                    options: self.overrides.apply(TrainOptions::default())?,
                    output: self.output.clone(),
                }))
            }
        }
    }
}

/// What a run did: the synthetic or the file summary (`Display` for text, `Serialize` for JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TrainSummary {
    /// A synthetic run.
    Synthetic(SyntheticSummary),
    /// A run on a data file.
    File(FileSummary),
}

impl Display for TrainSummary {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            TrainSummary::Synthetic(s) => s.fmt(f),
            TrainSummary::File(s) => s.fmt(f),
        }
    }
}

/// Resolves and runs `request`, writing the state dict to its output.
pub fn run_request(
    request: &TrainRequest,
    on_event: impl FnMut(RunEvent<'_>),
) -> Result<TrainSummary> {
    Ok(match request.plan()? {
        TrainPlan::Synthetic(recipe) => {
            TrainSummary::Synthetic(train_synthetic_to(&recipe, &request.output, on_event)?)
        }
        TrainPlan::File(run) => TrainSummary::File(train_from_source(&run, on_event)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(data: TrainData) -> TrainRequest {
        TrainRequest {
            data,
            max_table_rows: Some(1000),
            table_rows: None,
            dim: 8,
            arch: ModelArch::Dot,
            overrides: OptionOverrides::default(),
            output: PathBuf::from("/tmp/unused.safetensors"),
        }
    }

    fn synthetic() -> TrainData {
        TrainData::Synthetic {
            rows: Some(100),
            eval_rows: None,
            zipf: Some(1.2),
            seed: 3,
        }
    }

    #[test]
    fn synthetic_overrides_land_in_the_recipe() {
        let mut r = request(synthetic());
        r.overrides.lr_dense = Some(0.5);
        r.overrides.optimizer = Some(Optimizer::Sgd);
        let TrainPlan::Synthetic(recipe) = r.plan().unwrap() else {
            panic!("a synthetic plan expected");
        };
        let default = SynthRecipe::default();
        assert_eq!(recipe.train_rows, 100);
        assert_eq!(recipe.eval_rows, default.eval_rows);
        assert_eq!(recipe.synth.zipf_exponent, 1.2);
        assert_eq!(recipe.synth.seed, 3);
        assert_eq!(recipe.synth.table_rows, synth::criteo_table_rows(1000));
        assert_eq!(recipe.options.lr_dense, 0.5);
        assert_eq!(recipe.options.optimizer, Optimizer::Sgd);
        assert_eq!(recipe.options.lr_sparse, default.options.lr_sparse);
    }

    #[test]
    fn bad_options_are_typed_errors() {
        let mut r = request(synthetic());
        r.overrides.batch_size = Some(0);
        assert!(matches!(
            r.plan(),
            Err(TrainError::InvalidOption {
                option: "batch size",
                ..
            })
        ));
        let mut r = request(synthetic());
        r.overrides.epochs = Some(2);
        assert!(matches!(
            r.plan(),
            Err(TrainError::InvalidOption {
                option: "epochs",
                ..
            })
        ));
        let r = request(TrainData::File {
            data: "x.tsv".into(),
            schema: None,
            holdout: Holdout::Fraction(1.0),
            init: None,
        });
        assert!(matches!(
            r.plan(),
            Err(TrainError::HoldoutFraction { fraction }) if fraction == 1.0
        ));
    }

    #[test]
    fn file_runs_hash_every_criteo_column_into_the_cap() {
        let mut r = request(TrainData::File {
            data: "x.tsv".into(),
            schema: None,
            holdout: Holdout::Rows(10),
            init: None,
        });
        r.overrides.epochs = Some(3);
        let TrainPlan::File(run) = r.plan().unwrap() else {
            panic!("a file plan expected");
        };
        assert_eq!(run.table_rows, vec![1000; 26]);
        assert_eq!(run.options.epochs, 3);
        assert_eq!(run.holdout, Holdout::Rows(10));
        assert_eq!(r.data_file(), Some(Path::new("x.tsv")));
    }
}
