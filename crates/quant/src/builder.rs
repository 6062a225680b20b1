//! Builds candidate models from one set of f32 weights under many plans, encoding each table in
//! each format only once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quantrec_kernels::formats::TableFormat;
use quantrec_model::tables::encode_table;
use quantrec_model::tiers::TieredData;
use quantrec_model::weights::TableData;
use quantrec_model::{Model, ModelConfig, Plan, Weights};

use crate::calibrate::RowRanking;
use crate::eval::EvalSet;
use crate::table_curvature::TableCurvature;
use crate::{QuantError, Result};

/// Encoded bytes of each (table, format, least-squares refit, curvature rounding) built so far.
type EncodedCache = Mutex<HashMap<(usize, TableFormat, bool, bool), Arc<Vec<u8>>>>;

/// f32 weights plus a cache of encoded tables.
#[derive(Debug)]
pub struct ModelBuilder {
    config: ModelConfig,
    weights: Weights,
    encoded: EncodedCache,
    table_refit: bool,
    curvature: Option<Arc<TableCurvature>>,
    ranking: Option<Arc<RowRanking>>,
}

impl ModelBuilder {
    /// Checks `weights` against `config` and keeps both.
    pub fn new(config: ModelConfig, weights: Weights) -> Result<ModelBuilder> {
        weights.check(&config)?;
        Ok(ModelBuilder {
            config,
            weights,
            encoded: Mutex::new(HashMap::new()),
            table_refit: false,
            curvature: None,
            ranking: None,
        })
    }

    /// Encodes N-bit tables with the least-squares refit (see `Plan::table_refit`); every plan
    /// this builder builds is marked with it.
    pub fn with_table_refit(mut self, on: bool) -> ModelBuilder {
        self.table_refit = on;
        self
    }

    /// Re-rounds N-bit table rows in the loss's curvature measured by `curvature` (see
    /// `Plan::table_curvature`); every plan this builder builds is marked with it.
    pub fn with_table_curvature(mut self, curvature: Option<Arc<TableCurvature>>) -> ModelBuilder {
        self.curvature = curvature;
        self
    }

    /// When `on`, measures the f32 model's curvature over `calib` ([`TableCurvature::measure`]) and
    /// re-rounds N-bit table rows in it ([`ModelBuilder::with_table_curvature`]).
    pub fn with_curvature_measured_on(self, on: bool, calib: &EvalSet) -> Result<ModelBuilder> {
        if !on {
            return Ok(self);
        }
        let curvature = TableCurvature::measure(&self.config, &self.weights, calib)?;
        Ok(self.with_table_curvature(Some(Arc::new(curvature))))
    }

    /// Whether N-bit table rows are re-rounded in the loss's curvature.
    pub fn table_curvature(&self) -> bool {
        self.curvature.is_some()
    }

    /// Whether tables are encoded with the least-squares refit.
    pub fn table_refit(&self) -> bool {
        self.table_refit
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The f32 weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Table `t` encoded in `format` (cached), with the refit and curvature rounding asked for.
    fn encoded(
        &self,
        t: usize,
        format: TableFormat,
        refit: bool,
        curved: bool,
    ) -> Result<Arc<Vec<u8>>> {
        let data = &self.weights.tables[t];
        let values = match data {
            TableData::F32(values) => values,
            TableData::Encoded { format: f, bytes } if *f == format => {
                return Ok(Arc::new(bytes.clone()));
            }
            // Pre-encoded tables can only be used in their own format.
            TableData::Encoded { format: f, .. } => {
                return Err(QuantError::Model(
                    quantrec_model::ModelError::TableFormatMismatch {
                        table: t,
                        supplied: *f,
                        planned: format,
                    },
                ));
            }
            TableData::Tiered(_) => {
                return Err(QuantError::Model(quantrec_model::ModelError::TierData {
                    table: t,
                    reason: "a pre-tiered table cannot be re-encoded".into(),
                }));
            }
        };
        let curvature = match (&self.curvature, curved && format != TableFormat::F32) {
            (Some(c), true) => Some(c),
            (None, true) => {
                return Err(QuantError::CurvatureNotMeasured { table: t });
            }
            (_, false) => None,
        };
        let key = (t, format, refit, curvature.is_some());
        if let Some(b) = self.encoded.lock().expect("cache lock").get(&key) {
            return Ok(b.clone());
        }
        let tc = &self.config.tables[t];
        let bytes = Arc::new(match (format, curvature) {
            (TableFormat::F32, _) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            (_, Some(c)) => c.encode(t, format, tc.rows, values, refit)?,
            (_, None) => encode_table(t, format, tc.rows, tc.dim, values, refit)?,
        });
        self.encoded
            .lock()
            .expect("cache lock")
            .insert(key, bytes.clone());
        Ok(bytes)
    }

    fn table(&self, t: usize, plan: &Plan, refit: bool, curved: bool) -> Result<TableData> {
        let format = plan.tables[t];
        let data = &self.weights.tables[t];
        if let Some(tiers) = plan.tiers_of(t) {
            let ranking = self.ranking.as_ref().ok_or(QuantError::Model(
                quantrec_model::ModelError::TiersNeedCalibration { table: t },
            ))?;
            let tc = &self.config.tables[t];
            let mut held = Vec::new();
            for l in &tiers.levels {
                held.push((l.format, self.encoded(t, l.format, refit, curved)?));
            }
            let split =
                TieredData::split(t, tc.rows, tc.dim, tiers, &ranking.tables[t].order, |f| {
                    held.iter()
                        .find(|(hf, _)| *hf == f)
                        .map(|(_, b)| b.as_slice())
                        .ok_or(quantrec_model::ModelError::TiersNeedCalibration { table: t })
                })?;
            return Ok(TableData::Tiered(split));
        }
        match data {
            TableData::F32(_) if format == TableFormat::F32 => Ok(data.clone()),
            TableData::F32(_) => Ok(TableData::Encoded {
                format,
                bytes: self.encoded(t, format, refit, curved)?.as_ref().clone(),
            }),
            // Pre-encoded tables can only be used in their own format (Model checks it).
            _ => Ok(data.clone()),
        }
    }

    /// Measures the calibration data's row frequencies ([`RowRanking::measure`]), which plans
    /// with row tiers split tables on.
    pub fn with_row_ranking_measured_on(mut self, calib: &EvalSet) -> Result<ModelBuilder> {
        self.ranking = Some(Arc::new(RowRanking::measure(&self.config, calib)?));
        Ok(self)
    }

    /// The row ranking tiers split on, when measured.
    pub fn row_ranking(&self) -> Option<&RowRanking> {
        self.ranking.as_deref()
    }

    /// The weights with every table in `plan`'s format (encoded once per table and format), with
    /// the least-squares refit when the builder or the plan asks for it.
    pub fn weights_for(&self, plan: &Plan) -> Result<Weights> {
        plan.validate(&self.config)?;
        let refit = self.table_refit || plan.table_refit;
        let curved = self.curvature.is_some() || plan.table_curvature;
        let tables = (0..self.config.tables.len())
            .map(|t| self.table(t, plan, refit, curved))
            .collect::<Result<Vec<_>>>()?;
        Ok(Weights {
            bottom: self.weights.bottom.clone(),
            tables,
            table_names: self.weights.table_names.clone(),
            cross: self.weights.cross.clone(),
            top: self.weights.top.clone(),
        })
    }

    /// The model under `plan` (marked with the refit when the builder uses it).
    pub fn build(&self, plan: &Plan) -> Result<Model> {
        let w = self.weights_for(plan)?;
        let mut plan = plan.clone();
        plan.table_refit |= self.table_refit;
        plan.table_curvature |= self.curvature.is_some();
        Ok(Model::from_parts_owned(self.config.clone(), w, plan)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantrec_kernels::formats::dequantize_table;
    use quantrec_train::suggested_config;

    /// Squared decode error of table `t` of `model` against the f32 `weights`.
    fn table_error(model: &Model, weights: &Weights, t: usize) -> f64 {
        let TableData::F32(values) = &weights.tables[t] else {
            panic!("random weights are f32")
        };
        let mut back = vec![0f32; values.len()];
        dequantize_table(&model.tables()[t].table_ref(), &mut back).unwrap();
        values
            .iter()
            .zip(&back)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum()
    }

    #[test]
    fn refit_builders_encode_with_less_error_and_mark_their_plans() {
        let config = suggested_config(13, &[300, 40, 7], 16);
        let weights = Weights::random(&config, 3);
        let mut plan = Plan::f32(&config);
        plan.tables = vec![
            TableFormat::Fused4,
            TableFormat::Fused2,
            TableFormat::Fused8Half,
        ];
        let plain = ModelBuilder::new(config.clone(), weights.clone()).unwrap();
        let refit = ModelBuilder::new(config.clone(), weights.clone())
            .unwrap()
            .with_table_refit(true);
        assert!(refit.table_refit() && !plain.table_refit());
        let (a, b) = (plain.build(&plan).unwrap(), refit.build(&plan).unwrap());
        assert!(!a.plan().table_refit && b.plan().table_refit);
        for t in 0..3 {
            let (ea, eb) = (table_error(&a, &weights, t), table_error(&b, &weights, t));
            assert!(eb < ea, "table {t}: refit {eb} vs {ea}");
        }
        // A plan asking for the refit gets it from a plain builder too (as a refresh does), and
        // the flag survives the plan's JSON; plans without it serialize as before.
        let mut asked = plan.clone();
        asked.table_refit = true;
        let c = plain.build(&asked).unwrap();
        assert_eq!(table_error(&c, &weights, 0), table_error(&b, &weights, 0));
        assert!(Plan::from_json(&asked.to_json()).unwrap().table_refit);
        assert!(!plan.to_json().contains("table_refit"));
    }
}
