//! The parameters of a model in f32 (or, for tables, already encoded), independent of module names.

use quantrec_kernels::formats::TableFormat;
use quantrec_kernels::rng::Rng;

use crate::config::{Interaction, ModelConfig};
use crate::{ModelError, Result};

/// One dense layer, PyTorch `Linear` layout: `weight` is `out × inp` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// Output features.
    pub out: usize,
    /// Input features.
    pub inp: usize,
    /// `out × inp` weights.
    pub weight: Vec<f32>,
    /// `out` biases.
    pub bias: Vec<f32>,
}

/// One low-rank DCN-v2 cross layer: `x_{l+1} = x0 ⊙ (W (V x_l) + b) + x_l`.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossLayer {
    /// `rank × width` (no bias).
    pub v: Vec<f32>,
    /// `width × rank`.
    pub w: Vec<f32>,
    /// `width`.
    pub bias: Vec<f32>,
}

/// The rows of one embedding table.
#[derive(Clone, Debug, PartialEq)]
pub enum TableData {
    /// `rows × dim` f32 values (what training and import produce).
    F32(Vec<f32>),
    /// Rows already stored in `format` (e.g. FBGEMM-packed fused rows), `rows × format.row_bytes(dim)` bytes.
    Encoded {
        /// The stored format.
        format: TableFormat,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Rows stored in frequency tiers ([`crate::tiers`]): sub-tables and remap.
    Tiered(crate::tiers::TieredData),
}

/// Every parameter of a model, in forward order.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// Bottom-MLP layers.
    pub bottom: Vec<Linear>,
    /// One entry per table.
    pub tables: Vec<TableData>,
    /// Table names of the source (e.g. TorchRec's `t_cat_0`), one per table; empty when unknown.
    pub table_names: Vec<String>,
    /// DCN cross layers (empty for other interactions).
    pub cross: Vec<CrossLayer>,
    /// Top-MLP layers.
    pub top: Vec<Linear>,
}

fn shape_err(name: String, expected: String, found: Vec<usize>) -> ModelError {
    ModelError::TensorShape {
        name,
        expected,
        found,
    }
}

fn check_vec(name: String, v: &[f32], expected: usize, shape: Vec<usize>) -> Result<()> {
    if v.len() != expected {
        return Err(shape_err(
            name,
            format!("{shape:?} ({expected} values)"),
            vec![v.len()],
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(ModelError::NonFinite {
            name,
            index: i,
            value: v[i],
        });
    }
    Ok(())
}

impl Linear {
    /// Checks the sizes against `out × inp` and that every value is finite.
    pub fn check(&self, name: &str, out: usize, inp: usize) -> Result<()> {
        if self.out != out || self.inp != inp {
            return Err(shape_err(
                format!("{name}.weight"),
                format!("[{out}, {inp}]"),
                vec![self.out, self.inp],
            ));
        }
        check_vec(
            format!("{name}.weight"),
            &self.weight,
            out * inp,
            vec![out, inp],
        )?;
        check_vec(format!("{name}.bias"), &self.bias, out, vec![out])
    }
}

impl ModelConfig {
    /// Checks the config is self-consistent: non-empty top MLP ending in 1 output, tables with
    /// rows and dims, dot interaction over equal dimensions, DCN with layers and rank.
    pub fn validate(&self) -> Result<()> {
        if self.dense_features == 0 {
            return Err(ModelError::NoDenseFeatures);
        }
        for (mlp, widths) in [("bottom", &self.bottom_mlp), ("top", &self.top_mlp)] {
            if let Some(layer) = widths.iter().position(|&w| w == 0) {
                return Err(ModelError::ZeroWidthLayer {
                    mlp,
                    layer,
                    widths: widths.clone(),
                });
            }
        }
        if self.top_mlp.last() != Some(&1) {
            return Err(ModelError::TopMlpOutput {
                widths: self.top_mlp.clone(),
            });
        }
        for (t, tc) in self.tables.iter().enumerate() {
            if tc.rows == 0 || tc.dim == 0 {
                return Err(ModelError::EmptyTable {
                    table: t,
                    rows: tc.rows,
                    dim: tc.dim,
                });
            }
        }
        match &self.interaction {
            Interaction::Dot { .. } => {
                let d = self.bottom_out();
                if let Some((t, tc)) = self.tables.iter().enumerate().find(|(_, t)| t.dim != d) {
                    return Err(ModelError::DotDimension {
                        table: t,
                        expected: d,
                        found: tc.dim,
                    });
                }
            }
            Interaction::Cat => {}
            Interaction::Dcn { layers, rank } => {
                if *layers == 0 || *rank == 0 {
                    return Err(ModelError::EmptyDcn {
                        layers: *layers,
                        rank: *rank,
                    });
                }
            }
        }
        Ok(())
    }

    /// `(out, in)` of each bottom-MLP layer.
    pub fn bottom_shapes(&self) -> Vec<(usize, usize)> {
        mlp_shapes(self.dense_features, &self.bottom_mlp)
    }

    /// `(out, in)` of each top-MLP layer.
    pub fn top_shapes(&self) -> Vec<(usize, usize)> {
        mlp_shapes(self.interaction_out(), &self.top_mlp)
    }

    /// Width of the flattened `[bottom out, tables...]` vector (the DCN width).
    pub fn concat_width(&self) -> usize {
        self.bottom_out() + self.tables.iter().map(|t| t.dim).sum::<usize>()
    }

    /// Number of DCN layers (0 for other interactions).
    pub fn cross_layers(&self) -> usize {
        match self.interaction {
            Interaction::Dcn { layers, .. } => layers,
            _ => 0,
        }
    }

    /// The architecture in one line: naming, dense features, bottom MLP, table count, interaction,
    /// top MLP.
    pub fn describe(&self) -> String {
        format!(
            "{:?} names: {} dense → bottom {:?}, {} tables, {:?}, top {:?}",
            self.naming,
            self.dense_features,
            self.bottom_mlp,
            self.tables.len(),
            self.interaction,
            self.top_mlp
        )
    }

    /// How many bottom-MLP layers, top-MLP layers, tables and cross layers the config has, named
    /// for error messages (weights and plans hold one entry per part, in this order).
    pub fn part_counts(&self) -> [(&'static str, usize); 4] {
        [
            ("bottom-MLP layers", self.bottom_mlp.len()),
            ("top-MLP layers", self.top_mlp.len()),
            ("tables", self.tables.len()),
            ("cross layers", self.cross_layers()),
        ]
    }
}

fn mlp_shapes(input: usize, widths: &[usize]) -> Vec<(usize, usize)> {
    let mut k = input;
    widths
        .iter()
        .map(|&n| {
            let s = (n, k);
            k = n;
            s
        })
        .collect()
}

impl Weights {
    /// Checks every parameter against `config`: counts, shapes and finiteness.
    pub fn check(&self, config: &ModelConfig) -> Result<()> {
        config.validate()?;
        let found = [
            self.bottom.len(),
            self.top.len(),
            self.tables.len(),
            self.cross.len(),
        ];
        for ((what, expected), found) in config.part_counts().into_iter().zip(found) {
            if expected != found {
                return Err(ModelError::WeightCount {
                    what,
                    expected,
                    found,
                });
            }
        }
        if !self.table_names.is_empty() && self.table_names.len() != config.tables.len() {
            return Err(ModelError::WeightCount {
                what: "table names",
                expected: config.tables.len(),
                found: self.table_names.len(),
            });
        }
        for (i, (l, (n, k))) in self.bottom.iter().zip(config.bottom_shapes()).enumerate() {
            l.check(&format!("bottom.{i}"), n, k)?;
        }
        for (i, (l, (n, k))) in self.top.iter().zip(config.top_shapes()).enumerate() {
            l.check(&format!("top.{i}"), n, k)?;
        }
        if let Interaction::Dcn { rank, .. } = config.interaction {
            let w = config.concat_width();
            for (l, c) in self.cross.iter().enumerate() {
                check_vec(format!("cross.{l}.v"), &c.v, rank * w, vec![rank, w])?;
                check_vec(format!("cross.{l}.w"), &c.w, w * rank, vec![w, rank])?;
                check_vec(format!("cross.{l}.bias"), &c.bias, w, vec![w])?;
            }
        }
        for (t, (data, tc)) in self.tables.iter().zip(&config.tables).enumerate() {
            match data {
                TableData::F32(v) => check_vec(
                    format!("tables.{t}"),
                    v,
                    tc.rows * tc.dim,
                    vec![tc.rows, tc.dim],
                )?,
                TableData::Encoded { format, bytes } => {
                    quantrec_kernels::formats::TableRef::new(*format, tc.rows, tc.dim, bytes)?;
                }
                TableData::Tiered(d) => {
                    if d.remap.len() != tc.rows {
                        return Err(shape_err(
                            format!("tables.{t}.remap"),
                            format!("[{}]", tc.rows),
                            vec![d.remap.len()],
                        ));
                    }
                    for tier in &d.tiers {
                        quantrec_kernels::formats::TableRef::new(
                            tier.format,
                            tier.rows,
                            tc.dim,
                            &tier.bytes,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Random weights for `config` (Xavier-like normal MLPs, small normal tables); for tests and
    /// benchmarks.
    pub fn random(config: &ModelConfig, seed: u64) -> Weights {
        let mut rng = Rng::new(seed);
        let linear = |n: usize, k: usize, rng: &mut Rng| Linear {
            out: n,
            inp: k,
            weight: rng.normal_vec(n * k, (2.0 / (n + k) as f32).sqrt()),
            bias: rng.normal_vec(n, (1.0 / n as f32).sqrt()),
        };
        let bottom = config
            .bottom_shapes()
            .into_iter()
            .map(|(n, k)| linear(n, k, &mut rng))
            .collect();
        let top = config
            .top_shapes()
            .into_iter()
            .map(|(n, k)| linear(n, k, &mut rng))
            .collect();
        let tables = config
            .tables
            .iter()
            .map(|t| TableData::F32(rng.normal_vec(t.rows * t.dim, (1.0 / t.rows as f32).sqrt())))
            .collect();
        let cross = match config.interaction {
            Interaction::Dcn { layers, rank } => {
                let w = config.concat_width();
                let s = (2.0 / (w + rank) as f32).sqrt();
                (0..layers)
                    .map(|_| CrossLayer {
                        v: rng.normal_vec(rank * w, s),
                        w: rng.normal_vec(w * rank, s),
                        bias: rng.normal_vec(w, 0.01),
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        Weights {
            bottom,
            tables,
            table_names: Vec::new(),
            cross,
            top,
        }
    }
}
