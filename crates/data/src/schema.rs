//! What each column of a delimited text file means.
//!
//! A schema is a JSON file (`--schema FILE.json`):
//!
//! ```json
//! {
//!   "delimiter": ",",
//!   "header": true,
//!   "columns": [
//!     {"name": "click",  "role": "label"},
//!     {"name": "age",    "role": "dense", "transform": "none"},
//!     {"name": "visits", "role": "dense"},
//!     {"name": "user",   "role": "sparse", "kind": "ids"},
//!     {"name": "tags",   "role": "sparse", "kind": "hash", "separator": "|"},
//!     {"name": "ts",     "role": "ignore"}
//!   ]
//! }
//! ```
//!
//! - `delimiter` (default tab) and `separator` are single ASCII characters; fields are split on the
//!   delimiter only (no quoting). `header: true` skips the first line.
//! - `label` (at most one column; none = unlabelled data): `0` or `1`.
//! - `dense`: a number, empty = missing = 0. `transform` is `"log1p"` (default, `ln(1 + max(x, 0))`,
//!   the dlrm convention) or `"none"` (the value is used as is, e.g. already transformed).
//! - `sparse` columns feed the tables in the order they appear (the k-th sparse column is table k).
//!   `kind` is `"hash"` (default: FNV-1a 64 of the string, mod the table's rows), `"hex"` (the
//!   string read as a hex number, mod rows; Criteo) or `"ids"` (decimal row ids used as they are and
//!   checked against the table's rows: out of range is an error, never hashed or clamped). See
//!   [`crate::hash`]. Without `separator` the column is one-hot and an empty field is the missing
//!   id 0 (`"hash"`/`"hex"`; for `"ids"` an empty field is an error). With `separator` it is
//!   multi-hot: the field is a list of values and an empty field is an empty bag.
//! - `ignore`: skipped.
//!
//! Criteo's Display Advertising Challenge format is the preset [`Schema::criteo`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The columns of a delimited text file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// Field delimiter (one ASCII character; default tab).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first line is a header to skip.
    #[serde(default)]
    pub header: bool,
    /// Every column of a line, in order.
    pub columns: Vec<Column>,
}

fn default_delimiter() -> char {
    '\t'
}

/// One column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Name used in error messages (default: `c{index}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the column holds.
    #[serde(flatten)]
    pub role: Role,
}

/// What a column holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// The click label, 0 or 1.
    Label,
    /// A dense feature.
    Dense {
        /// How the number becomes the model's input.
        #[serde(default)]
        transform: DenseTransform,
    },
    /// A sparse (categorical) feature: one table.
    Sparse {
        /// How values become row ids.
        #[serde(default)]
        kind: SparseKind,
        /// Multi-hot list separator (one ASCII character); `None` = one value per field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        separator: Option<char>,
    },
    /// Not used.
    Ignore,
}

/// Dense transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenseTransform {
    /// `ln(1 + max(x, 0))` (computed in f64, stored as f32).
    #[default]
    Log1p,
    /// The value as is.
    None,
}

/// How the values of a sparse column become row ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparseKind {
    /// FNV-1a 64 of the value's bytes, mod rows.
    #[default]
    Hash,
    /// The value as a hexadecimal number (up to 16 digits), mod rows.
    Hex,
    /// A decimal row id in `0..rows`.
    Ids,
}

impl Schema {
    /// Criteo DAC: tab separated `label, I1..I13, C1..C26`, counts `log1p`-transformed, categories
    /// read as hex mod rows (the dlrm / TorchRec convention).
    pub fn criteo() -> Schema {
        let mut columns = vec![Column {
            name: Some("label".into()),
            role: Role::Label,
        }];
        columns.extend((1..=13).map(|i| Column {
            name: Some(format!("I{i}")),
            role: Role::Dense {
                transform: DenseTransform::Log1p,
            },
        }));
        columns.extend((1..=26).map(|i| Column {
            name: Some(format!("C{i}")),
            role: Role::Sparse {
                kind: SparseKind::Hex,
                separator: None,
            },
        }));
        Schema {
            delimiter: '\t',
            header: false,
            columns,
        }
    }

    /// Reads a schema from a JSON file.
    pub fn from_json_file(path: &Path) -> crate::Result<Schema> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        serde_json::from_str(&text).map_err(|source| DataError::SchemaJson {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Number of dense columns.
    pub fn n_dense(&self) -> usize {
        self.columns
            .iter()
            .filter(|c| matches!(c.role, Role::Dense { .. }))
            .count()
    }

    /// Number of sparse columns (= tables).
    pub fn n_sparse(&self) -> usize {
        self.columns
            .iter()
            .filter(|c| matches!(c.role, Role::Sparse { .. }))
            .count()
    }

    /// Whether a label column exists.
    pub fn has_label(&self) -> bool {
        self.columns.iter().any(|c| c.role == Role::Label)
    }

    /// The display name of column `index` (0-based).
    pub fn column_name(&self, index: usize) -> String {
        self.columns[index]
            .name
            .clone()
            .unwrap_or_else(|| format!("c{index}"))
    }

    /// Checks the schema on its own and against the rows of the tables it feeds.
    pub fn validate(&self, table_rows: &[usize]) -> crate::Result<()> {
        if !self.delimiter.is_ascii() || self.delimiter == '\n' || self.delimiter == '\r' {
            return Err(DataError::SchemaDelimiter {
                found: self.delimiter,
            });
        }
        if self.columns.is_empty() {
            return Err(DataError::SchemaNoColumns);
        }
        let labels = self
            .columns
            .iter()
            .filter(|c| c.role == Role::Label)
            .count();
        if labels > 1 {
            return Err(DataError::SchemaLabels { found: labels });
        }
        for (i, c) in self.columns.iter().enumerate() {
            if let Role::Sparse {
                separator: Some(sep),
                ..
            } = c.role
                && (!sep.is_ascii() || sep == self.delimiter || sep == '\n' || sep == '\r')
            {
                return Err(DataError::SchemaSeparator {
                    column: i + 1,
                    name: self.column_name(i),
                    found: sep,
                });
            }
        }
        let n_sparse = self.n_sparse();
        if n_sparse != table_rows.len() {
            return Err(DataError::SchemaTableCount {
                sparse_columns: n_sparse,
                tables: table_rows.len(),
            });
        }
        if let Some(t) = table_rows.iter().position(|&r| r == 0) {
            return Err(DataError::SchemaEmptyTable { table: t });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_doc_example_parses() {
        let json = r#"{
          "delimiter": ",", "header": true,
          "columns": [
            {"name": "click",  "role": "label"},
            {"name": "age",    "role": "dense", "transform": "none"},
            {"name": "visits", "role": "dense"},
            {"name": "user",   "role": "sparse", "kind": "ids"},
            {"name": "tags",   "role": "sparse", "kind": "hash", "separator": "|"},
            {"name": "ts",     "role": "ignore"}
          ]}"#;
        let s: Schema = serde_json::from_str(json).unwrap();
        assert_eq!(s.delimiter, ',');
        assert!(s.header);
        assert_eq!((s.n_dense(), s.n_sparse(), s.has_label()), (2, 2, true));
        assert_eq!(
            s.columns[2].role,
            Role::Dense {
                transform: DenseTransform::Log1p
            }
        );
        assert_eq!(
            s.columns[4].role,
            Role::Sparse {
                kind: SparseKind::Hash,
                separator: Some('|')
            }
        );
        s.validate(&[10, 20]).unwrap();
        assert!(matches!(
            s.validate(&[10]),
            Err(DataError::SchemaTableCount { tables: 1, .. })
        ));
        assert!(matches!(
            s.validate(&[10, 0]),
            Err(DataError::SchemaEmptyTable { table: 1 })
        ));
        // Round trip through JSON.
        let back: Schema = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn criteo_preset_shape() {
        let s = Schema::criteo();
        assert_eq!((s.columns.len(), s.n_dense(), s.n_sparse()), (40, 13, 26));
        s.validate(&[1000; 26]).unwrap();
    }

    #[test]
    fn invalid_schemas_are_refused() {
        let mut s = Schema::criteo();
        s.columns[5].role = Role::Label;
        assert!(s.validate(&[1000; 26]).is_err());
        let mut s = Schema::criteo();
        s.columns[20].role = Role::Sparse {
            kind: SparseKind::Hash,
            separator: Some('\t'),
        };
        assert!(s.validate(&[1000; 26]).is_err());
        let bad: Result<Schema, _> =
            serde_json::from_str(r#"{"columns":[{"role":"sparse","kind":"bogus"}]}"#);
        assert!(bad.is_err());
    }
}
