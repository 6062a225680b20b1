//! Builds candidate models from one set of f32 weights under many plans, encoding each table in
//! each format only once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quantrec_kernels::formats::TableFormat;
use quantrec_model::tables::encode_table;
use quantrec_model::weights::TableData;
use quantrec_model::{Model, ModelConfig, Plan, Weights};

use crate::Result;

/// Encoded bytes of each (table, format) built so far.
type EncodedCache = Mutex<HashMap<(usize, TableFormat), Arc<Vec<u8>>>>;

/// f32 weights plus a cache of encoded tables.
#[derive(Debug)]
pub struct ModelBuilder {
    config: ModelConfig,
    weights: Weights,
    encoded: EncodedCache,
}

impl ModelBuilder {
    /// Checks `weights` against `config` and keeps both.
    pub fn new(config: ModelConfig, weights: Weights) -> Result<ModelBuilder> {
        weights.check(&config)?;
        Ok(ModelBuilder {
            config,
            weights,
            encoded: Mutex::new(HashMap::new()),
        })
    }

    /// The architecture.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The f32 weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    fn table(&self, t: usize, format: TableFormat) -> Result<TableData> {
        let data = &self.weights.tables[t];
        let TableData::F32(values) = data else {
            // Pre-encoded tables can only be used in their own format (Model checks it).
            return Ok(data.clone());
        };
        if format == TableFormat::F32 {
            return Ok(data.clone());
        }
        let key = (t, format);
        if let Some(b) = self.encoded.lock().expect("cache lock").get(&key) {
            return Ok(TableData::Encoded {
                format,
                bytes: b.as_ref().clone(),
            });
        }
        let tc = &self.config.tables[t];
        let bytes = Arc::new(encode_table(t, format, tc.rows, tc.dim, values)?);
        self.encoded
            .lock()
            .expect("cache lock")
            .insert(key, bytes.clone());
        Ok(TableData::Encoded {
            format,
            bytes: bytes.as_ref().clone(),
        })
    }

    /// The weights with every table in `plan`'s format (encoded once per table and format).
    pub fn weights_for(&self, plan: &Plan) -> Result<Weights> {
        plan.validate(&self.config)?;
        let tables = (0..self.config.tables.len())
            .map(|t| self.table(t, plan.tables[t]))
            .collect::<Result<Vec<_>>>()?;
        Ok(Weights {
            bottom: self.weights.bottom.clone(),
            tables,
            table_names: self.weights.table_names.clone(),
            cross: self.weights.cross.clone(),
            top: self.weights.top.clone(),
        })
    }

    /// The model under `plan`.
    pub fn build(&self, plan: &Plan) -> Result<Model> {
        let w = self.weights_for(plan)?;
        Ok(Model::from_parts_owned(
            self.config.clone(),
            w,
            plan.clone(),
        )?)
    }
}
