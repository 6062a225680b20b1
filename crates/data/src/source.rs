//! One entry point for every data file: [`open_source`].
//!
//! The kind of file is detected from its first bytes:
//! - a safetensors header (8-byte little-endian length followed by `{`) or a `.safetensors` name:
//!   a batch file ([`crate::batchfile`]);
//! - the gzip magic `1f 8b`: gzip-compressed text, decoded while streaming;
//! - anything else: delimited text read with the spec's schema (the Criteo preset by default).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::Batch;
use flate2::read::MultiGzDecoder;

use crate::batch_ops;
use crate::batchfile::BatchFileSource;
use crate::schema::Schema;
use crate::text::TextSource;
use crate::{DataError, Result};

/// Anything that yields batches of samples.
pub trait BatchSource: Send {
    /// The next batch (at most the requested size, never empty), or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<Batch>>;
    /// Dense features per sample.
    fn n_dense(&self) -> usize;
    /// Number of sparse features (tables).
    fn n_tables(&self) -> usize;
    /// What was read so far.
    fn stats(&self) -> &SourceStats;
}

/// Counters of a source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Samples yielded.
    pub rows: u64,
    /// Malformed lines passed over (only with `skip_bad_lines`).
    pub skipped_lines: u64,
    /// The messages of the first few skipped lines.
    pub examples: Vec<String>,
}

/// How to read a data file.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    /// Samples per batch.
    pub batch_size: usize,
    /// Rows of each table (ids are hashed into, or checked against, these). For batch files an
    /// empty list skips the id range check.
    pub table_rows: Vec<usize>,
    /// Schema of text files (`None` = [`Schema::criteo`]); ignored for batch files.
    pub schema: Option<Schema>,
    /// Count malformed text lines instead of failing on the first.
    pub skip_bad_lines: bool,
}

impl SourceSpec {
    /// Criteo TSV (or a batch file) with these table sizes.
    pub fn new(table_rows: Vec<usize>, batch_size: usize) -> Self {
        SourceSpec {
            batch_size,
            table_rows,
            schema: None,
            skip_bad_lines: false,
        }
    }
}

/// What [`detect`] found a file to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A safetensors batch file.
    BatchFile,
    /// Gzip-compressed text.
    GzipText,
    /// Plain text.
    Text,
}

/// Looks at the first bytes (and the name) of `path`.
pub fn detect(path: &Path) -> Result<FileKind> {
    let mut head = [0u8; 9];
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut n = 0;
    while n < head.len() {
        let k = file
            .read(&mut head[n..])
            .map_err(|e| DataError::io(path, e))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if n >= 2 && head[..2] == [0x1f, 0x8b] {
        return Ok(FileKind::GzipText);
    }
    let is_st_name = path.extension().is_some_and(|e| e == "safetensors");
    let header_len = u64::from_le_bytes(head[..8].try_into().unwrap_or([0xff; 8]));
    if is_st_name || (n == 9 && head[8] == b'{' && header_len.saturating_add(8) <= len) {
        return Ok(FileKind::BatchFile);
    }
    Ok(FileKind::Text)
}

/// A buffered reader of `path`, decompressing gzip (by magic bytes) on the fly.
pub fn open_reader(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let gz = detect(path)? == FileKind::GzipText;
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    })
}

/// Opens any supported data file as a stream of batches (see the module docs).
pub fn open_source(path: &Path, spec: &SourceSpec) -> Result<Box<dyn BatchSource>> {
    if spec.batch_size == 0 {
        return Err(DataError::Config {
            what: "batch size",
            expected: "at least 1".into(),
            found: "0".into(),
        });
    }
    if detect(path)? == FileKind::BatchFile {
        return Ok(Box::new(BatchFileSource::open(
            path,
            &spec.table_rows,
            spec.batch_size,
        )?));
    }
    let criteo;
    let schema = match &spec.schema {
        Some(s) => s,
        None => {
            criteo = Schema::criteo();
            &criteo
        }
    };
    Ok(Box::new(TextSource::new(
        open_reader(path)?,
        path.display().to_string(),
        schema,
        &spec.table_rows,
        spec.batch_size,
        spec.skip_bad_lines,
    )?))
}

/// The remaining batches of `source` as an iterator (it ends after the first error).
pub fn batches(source: &mut dyn BatchSource) -> impl Iterator<Item = Result<Batch>> + '_ {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = source.next_batch().transpose();
        failed = matches!(next, Some(Err(_)));
        next
    })
}

/// Every remaining sample of `source` as one batch (memory grows with the data: for tests, small
/// files and batch-file conversion).
pub fn read_all(source: &mut dyn BatchSource) -> Result<Batch> {
    let mut all = Batch::default();
    while let Some(b) = source.next_batch()? {
        batch_ops::append(&mut all, &b)?;
    }
    if all.size == 0 && all.sparse.is_empty() {
        all.n_dense = source.n_dense();
        all.sparse = vec![Default::default(); source.n_tables()];
        all.sparse.iter_mut().for_each(|f| f.offsets = vec![0]);
    }
    Ok(all)
}
