//! How tables are laid out in the store: row blocks, slot groups, keys, checksums, the manifest.
//!
//! - A table is cut into **blocks** of `rows_per_block` rows (the last may be shorter); a block is
//!   one string value: its rows' stored bytes back to back, byte for byte as in the artifact.
//! - `blocks_per_group` consecutive blocks form a **group** whose keys share one hash tag, so they
//!   live in one slot: a batch's lookups of a group go to one node in one pipeline, while a large
//!   table still spreads over the whole cluster.
//! - Each group has a **sums** key: the 8-byte checksum (first 8 bytes of SHA-256) of each of
//!   its blocks.
//! - The version is a digest of the layout and every checksum: pushing the same tables again
//!   gives the same version (idempotent); block keys of a version are never rewritten with other
//!   bytes, so an interrupted push resumes by skipping the keys that exist.
//! - The **manifest** `NS:manifest:MODEL` names the version and is written last: a half-pushed
//!   version is never visible.
//!
//! Keys (`NS` = namespace, `V` = version): `NS:rows:{V.T.G}:B` (block `B` of table `T`, group
//! `G`), `NS:sums:{V.T.G}`, `NS:layout:V` (the layout, written before any block, read by `gc`),
//! `NS:versions` (set of versions ever started), `NS:models` (set of model names with a manifest),
//! `NS:manifest:MODEL`.

use quantrec_kernels::formats::TableFormat;
use quantrec_model::remote::TableShape;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Result, TablesError};

/// Version of the manifest's JSON schema.
pub const MANIFEST_SCHEMA: u32 = 1;

/// Default rows per block.
pub const DEFAULT_ROWS_PER_BLOCK: usize = 64;

/// Default blocks per slot group (16,384 rows with the default block).
pub const DEFAULT_BLOCKS_PER_GROUP: usize = 256;

/// Bytes of one block checksum.
pub const CHECKSUM_BYTES: usize = 8;

/// One table as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableLayout {
    /// Storage format name (`f32`, `fused8`, `fused4`, ...).
    pub format: String,
    /// Rows.
    pub rows: usize,
    /// Row dimension.
    pub dim: usize,
    /// Bytes per stored row.
    pub row_bytes: usize,
    /// SHA-256 (hex) of all the table's block checksums back to back.
    pub sums_digest: String,
}

/// Everything about a version except the model name: what `NS:layout:V` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// [`MANIFEST_SCHEMA`].
    pub schema: u32,
    /// Digest of the layout and the checksums (16 hex digits).
    pub version: String,
    /// Rows per block.
    pub rows_per_block: usize,
    /// Blocks per slot group.
    pub blocks_per_group: usize,
    /// The tables, in model order.
    pub tables: Vec<TableLayout>,
}

/// The manifest: a model name pointing at a complete version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The model name.
    pub model: String,
    /// The layout of the version it points at.
    pub layout: Layout,
}

/// Key names of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The namespace.
    pub namespace: String,
}

impl Keys {
    /// Keys of `namespace` (non-empty, no `{`, `}` or whitespace).
    pub fn new(namespace: &str) -> Result<Keys> {
        if namespace.is_empty()
            || namespace
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace())
        {
            return Err(TablesError::InvalidArgument {
                what: "namespace".into(),
                reason: format!("{namespace:?}: must be non-empty, without braces or spaces"),
            });
        }
        Ok(Keys {
            namespace: namespace.to_string(),
        })
    }

    /// Block `block` of table `table`.
    pub fn block(&self, version: &str, table: usize, group: usize, block: usize) -> String {
        format!(
            "{}:rows:{{{version}.{table}.{group}}}:{block}",
            self.namespace
        )
    }

    /// Checksums of group `group` of table `table`.
    pub fn sums(&self, version: &str, table: usize, group: usize) -> String {
        format!("{}:sums:{{{version}.{table}.{group}}}", self.namespace)
    }

    /// The layout of a version.
    pub fn layout(&self, version: &str) -> String {
        format!("{}:layout:{version}", self.namespace)
    }

    /// The set of versions ever started.
    pub fn versions(&self) -> String {
        format!("{}:versions", self.namespace)
    }

    /// The set of model names with a manifest.
    pub fn models(&self) -> String {
        format!("{}:models", self.namespace)
    }

    /// The manifest of a model.
    pub fn manifest(&self, model: &str) -> String {
        format!("{}:manifest:{model}", self.namespace)
    }
}

/// The 8-byte checksum of a block.
pub fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let d = Sha256::digest(bytes);
    let mut out = [0u8; CHECKSUM_BYTES];
    out.copy_from_slice(&d[..CHECKSUM_BYTES]);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TableLayout {
    /// The table's shape for the model.
    pub fn shape(&self, table: usize) -> Result<TableShape> {
        let format = TableFormat::parse(&self.format).ok_or_else(|| TablesError::BadManifest {
            key: format!("table {table}"),
            reason: format!("unknown format {:?}", self.format),
        })?;
        if format.row_bytes(self.dim) != self.row_bytes {
            return Err(TablesError::BadManifest {
                key: format!("table {table}"),
                reason: format!(
                    "{} rows of dim {} are {} bytes, not {}",
                    self.format,
                    self.dim,
                    format.row_bytes(self.dim),
                    self.row_bytes
                ),
            });
        }
        Ok(TableShape {
            format,
            rows: self.rows,
            dim: self.dim,
        })
    }
}

impl Layout {
    /// Cuts `tables` (each `(shape, bytes)`) into blocks, computing every checksum and the version.
    /// Returns the layout and each table's block checksums.
    pub fn compute(
        tables: &[(TableShape, &[u8])],
        rows_per_block: usize,
        blocks_per_group: usize,
    ) -> Result<(Layout, Vec<Vec<[u8; CHECKSUM_BYTES]>>)> {
        for (what, v) in [
            ("rows per block", rows_per_block),
            ("blocks per group", blocks_per_group),
        ] {
            if v == 0 {
                return Err(TablesError::InvalidArgument {
                    what: what.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        let mut version = Sha256::new();
        version.update(format!(
            "quantrec-tables/{MANIFEST_SCHEMA}/{rows_per_block}/{blocks_per_group}"
        ));
        let mut layouts = Vec::with_capacity(tables.len());
        let mut all_sums = Vec::with_capacity(tables.len());
        for (shape, bytes) in tables {
            let rb = shape.row_bytes();
            let sums: Vec<[u8; CHECKSUM_BYTES]> = if rb == 0 {
                Vec::new()
            } else {
                bytes.chunks(rows_per_block * rb).map(checksum).collect()
            };
            let flat: Vec<u8> = sums.iter().flatten().copied().collect();
            let digest = hex(&Sha256::digest(&flat));
            version.update(format!(
                "|{}:{}:{}:{digest}",
                shape.format.name(),
                shape.rows,
                shape.dim
            ));
            layouts.push(TableLayout {
                format: shape.format.name().to_string(),
                rows: shape.rows,
                dim: shape.dim,
                row_bytes: rb,
                sums_digest: digest,
            });
            all_sums.push(sums);
        }
        let layout = Layout {
            schema: MANIFEST_SCHEMA,
            version: hex(&version.finalize()[..8]),
            rows_per_block,
            blocks_per_group,
            tables: layouts,
        };
        Ok((layout, all_sums))
    }

    /// Blocks of table `t`.
    pub fn blocks(&self, t: usize) -> usize {
        self.tables[t].rows.div_ceil(self.rows_per_block)
    }

    /// Groups of table `t`.
    pub fn groups(&self, t: usize) -> usize {
        self.blocks(t).div_ceil(self.blocks_per_group)
    }

    /// Rows of block `b` of table `t` (the last block may be short).
    pub fn block_rows(&self, t: usize, b: usize) -> usize {
        let start = b * self.rows_per_block;
        self.rows_per_block.min(self.tables[t].rows - start)
    }

    /// The blocks of group `g` of table `t`.
    pub fn group_blocks(&self, t: usize, g: usize) -> std::ops::Range<usize> {
        let lo = g * self.blocks_per_group;
        lo..(lo + self.blocks_per_group).min(self.blocks(t))
    }

    /// Checks a parsed layout against itself (formats, row bytes).
    pub fn validate(&self, key: &str) -> Result<Vec<TableShape>> {
        if self.schema != MANIFEST_SCHEMA {
            return Err(TablesError::BadManifest {
                key: key.into(),
                reason: format!(
                    "schema {} (this build reads {MANIFEST_SCHEMA})",
                    self.schema
                ),
            });
        }
        if self.rows_per_block == 0 || self.blocks_per_group == 0 {
            return Err(TablesError::BadManifest {
                key: key.into(),
                reason: "zero rows per block or blocks per group".into(),
            });
        }
        self.tables
            .iter()
            .enumerate()
            .map(|(t, l)| l.shape(t))
            .collect()
    }
}

/// Parses a JSON value read from `key`.
pub fn parse<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| TablesError::BadManifest {
        key: key.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(rows: usize) -> TableShape {
        TableShape {
            format: TableFormat::Fused8,
            rows,
            dim: 4,
        }
    }

    #[test]
    fn blocks_groups_and_keys() {
        let bytes = vec![7u8; 130 * 12];
        let (l, sums) = Layout::compute(&[(shape(130), &bytes)], 64, 2).unwrap();
        assert_eq!(l.blocks(0), 3);
        assert_eq!(l.groups(0), 2);
        assert_eq!(l.block_rows(0, 2), 2);
        assert_eq!(l.group_blocks(0, 1), 2..3);
        assert_eq!(sums[0].len(), 3);
        assert_eq!(sums[0][0], sums[0][1]);
        assert_ne!(sums[0][0], sums[0][2]);
        let k = Keys::new("ns").unwrap();
        assert_eq!(k.block("abc", 1, 0, 3), "ns:rows:{abc.1.0}:3");
        assert_eq!(k.sums("abc", 1, 0), "ns:sums:{abc.1.0}");
        assert!(Keys::new("a{b").is_err());
        assert!(Keys::new("").is_err());
        assert_eq!(l.validate("k").unwrap(), vec![shape(130)]);
    }

    #[test]
    fn the_version_is_a_digest_of_layout_and_content() {
        let a = vec![1u8; 100 * 12];
        let mut b = a.clone();
        b[50] = 2;
        let v = |bytes: &[u8], rpb| {
            Layout::compute(&[(shape(100), bytes)], rpb, 4)
                .unwrap()
                .0
                .version
        };
        assert_eq!(v(&a, 64), v(&a, 64));
        assert_ne!(v(&a, 64), v(&b, 64));
        assert_ne!(v(&a, 64), v(&a, 32));
        assert!(Layout::compute(&[(shape(100), &a)], 0, 4).is_err());
    }
}
