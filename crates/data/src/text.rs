//! Streaming reader of delimited text click logs (Criteo TSV or any [`Schema`]).
//!
//! The file is read line by line through a `BufRead` (gzip is decoded on the fly, see
//! [`crate::source::open_reader`]), so memory is bounded by one batch whatever the file size.
//! Blank lines carry no sample and are passed over. A malformed line is an error naming the file,
//! the 1-based line number and, for a bad field, the column; with `skip_bad_lines` it is counted
//! instead (see [`SourceStats`]). An error ends the stream; the samples read before it are yielded
//! first (the batch holding them comes out short, the error with the next call).
//!
//! A line may hold at most [`MAX_LINE_BYTES`] bytes (line break included): a longer one (e.g. a
//! binary or newline-free file, or a runaway multi-hot list) is [`DataError::LineTooLong`] (skipped
//! like any bad line with `skip_bad_lines`) and is never held in memory whole.

use std::io::BufRead;

use crate::Batch;

use crate::batch_ops::BatchBuilder;
use crate::hash::{fnv1a64, parse_hex};
use crate::schema::{DenseTransform, Role, Schema, SparseKind};
use crate::source::{BatchSource, SourceStats};
use crate::{DataError, Result};

/// How many skipped-line messages [`SourceStats::examples`] keeps.
const KEPT_EXAMPLES: usize = 5;

/// The longest line accepted, in bytes (line break included): 1 MiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What [`TextSource::read_line`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineRead {
    /// The end of the stream.
    End,
    /// A line, in `buf` without its line break.
    Line,
    /// A line longer than `limit` bytes, consumed but not kept.
    TooLong,
}

#[derive(Clone, Copy, Debug)]
enum Plan {
    Label,
    Dense(DenseTransform),
    Sparse {
        table: usize,
        kind: SparseKind,
        separator: Option<u8>,
    },
    Ignore,
}

/// One parsed sample, reused across lines.
#[derive(Clone, Debug, Default)]
struct Row {
    dense: Vec<f32>,
    bags: Vec<Vec<i64>>,
    label: Option<f32>,
}

/// A schema compiled for fast parsing of one line.
#[derive(Clone, Debug)]
struct LineParser {
    delimiter: u8,
    plans: Vec<Plan>,
    names: Vec<String>,
    table_rows: Vec<usize>,
}

/// Where a line came from, for error messages.
struct At<'a> {
    file: &'a str,
    line: u64,
}

fn shown(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(64)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > 64 {
        s.push('…');
    }
    s
}

impl LineParser {
    fn new(schema: &Schema, table_rows: &[usize]) -> Result<Self> {
        schema.validate(table_rows)?;
        let mut table = 0;
        let plans = schema
            .columns
            .iter()
            .map(|c| match c.role {
                Role::Label => Plan::Label,
                Role::Dense { transform } => Plan::Dense(transform),
                Role::Sparse { kind, separator } => {
                    table += 1;
                    Plan::Sparse {
                        table: table - 1,
                        kind,
                        separator: separator.map(|s| s as u8),
                    }
                }
                Role::Ignore => Plan::Ignore,
            })
            .collect();
        Ok(LineParser {
            delimiter: schema.delimiter as u8,
            plans,
            names: (0..schema.columns.len())
                .map(|i| schema.column_name(i))
                .collect(),
            table_rows: table_rows.to_vec(),
        })
    }

    fn field_error(
        &self,
        at: &At<'_>,
        col: usize,
        expected: &'static str,
        found: &[u8],
    ) -> DataError {
        DataError::Field {
            file: at.file.to_string(),
            line: at.line,
            column: col + 1,
            name: self.names[col].clone(),
            expected,
            found: shown(found),
        }
    }

    /// Parses `line` (without its line break) into `row`.
    fn parse(&self, line: &[u8], at: &At<'_>, row: &mut Row) -> Result<()> {
        let fields = line.iter().filter(|&&b| b == self.delimiter).count() + 1;
        if fields != self.plans.len() {
            return Err(DataError::ColumnCount {
                file: at.file.to_string(),
                line: at.line,
                expected: self.plans.len(),
                found: fields,
            });
        }
        row.dense.clear();
        row.bags.resize_with(self.table_rows.len(), Vec::new);
        row.bags.iter_mut().for_each(Vec::clear);
        row.label = None;
        for (col, field) in line.split(|&b| b == self.delimiter).enumerate() {
            match self.plans[col] {
                Plan::Ignore => {}
                Plan::Label => {
                    let y = parse_number(field)
                        .filter(|&v| v == 0.0 || v == 1.0)
                        .ok_or_else(|| self.field_error(at, col, "a label 0 or 1", field))?;
                    row.label = Some(y as f32);
                }
                Plan::Dense(transform) => {
                    let x = if field.is_empty() {
                        0.0
                    } else {
                        parse_number(field)
                            .ok_or_else(|| self.field_error(at, col, "a finite number", field))?
                    };
                    let v = match transform {
                        DenseTransform::Log1p => x.max(0.0).ln_1p() as f32,
                        DenseTransform::None => x as f32,
                    };
                    if !v.is_finite() {
                        return Err(self.field_error(
                            at,
                            col,
                            "a number within the f32 range",
                            field,
                        ));
                    }
                    row.dense.push(v);
                }
                Plan::Sparse {
                    table,
                    kind,
                    separator,
                } => {
                    let rows = self.table_rows[table];
                    let bag = &mut row.bags[table];
                    match separator {
                        None if field.is_empty() && kind != SparseKind::Ids => bag.push(0),
                        None => bag.push(self.id(field, kind, rows, at, col)?),
                        Some(_) if field.is_empty() => {}
                        Some(sep) => {
                            for v in field.split(|&b| b == sep) {
                                bag.push(self.id(v, kind, rows, at, col)?);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn id(&self, v: &[u8], kind: SparseKind, rows: usize, at: &At<'_>, col: usize) -> Result<i64> {
        let rows64 = rows as u64;
        match kind {
            SparseKind::Hash => Ok((fnv1a64(v) % rows64) as i64),
            SparseKind::Hex => parse_hex(v)
                .map(|h| (h % rows64) as i64)
                .ok_or_else(|| self.field_error(at, col, "a hex hash of 1 to 16 digits", v)),
            SparseKind::Ids => {
                let id = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| self.field_error(at, col, "a decimal row id", v))?;
                if id < 0 || id as u64 >= rows64 {
                    return Err(DataError::IdOutOfRange {
                        file: at.file.to_string(),
                        line: at.line,
                        column: col + 1,
                        name: self.names[col].clone(),
                        id,
                        rows,
                    });
                }
                Ok(id)
            }
        }
    }
}

fn parse_number(field: &[u8]) -> Option<f64> {
    std::str::from_utf8(field)
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// A [`BatchSource`] over a delimited text stream.
pub struct TextSource {
    reader: Box<dyn BufRead + Send>,
    file: String,
    parser: LineParser,
    builder: BatchBuilder,
    row: Row,
    batch_size: usize,
    skip_bad_lines: bool,
    line_no: u64,
    buf: Vec<u8>,
    stats: SourceStats,
    header_pending: bool,
    done: bool,
    max_line: usize,
    /// An error met after some samples of the batch were read: those are yielded first.
    pending: Option<DataError>,
}

impl TextSource {
    /// Reads `reader` (named `file` in errors) with `schema` into batches of `batch_size` samples.
    pub fn new(
        reader: Box<dyn BufRead + Send>,
        file: impl Into<String>,
        schema: &Schema,
        table_rows: &[usize],
        batch_size: usize,
        skip_bad_lines: bool,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::Config {
                what: "batch size",
                expected: "at least 1".into(),
                found: "0".into(),
            });
        }
        let parser = LineParser::new(schema, table_rows)?;
        Ok(TextSource {
            reader,
            file: file.into(),
            builder: BatchBuilder::new(schema.n_dense(), schema.n_sparse(), schema.has_label()),
            parser,
            row: Row::default(),
            batch_size,
            skip_bad_lines,
            line_no: 0,
            buf: Vec::with_capacity(1024),
            stats: SourceStats::default(),
            header_pending: schema.header,
            done: false,
            max_line: MAX_LINE_BYTES,
            pending: None,
        })
    }

    /// Lowers (or raises) the longest accepted line, in bytes with the line break (default
    /// [`MAX_LINE_BYTES`]; at least 1).
    pub fn with_max_line_bytes(mut self, limit: usize) -> Self {
        self.max_line = limit.max(1);
        self
    }

    /// Reads the next line into `buf` without its line break, keeping at most `limit` bytes.
    fn read_line(&mut self, limit: usize) -> Result<LineRead> {
        self.buf.clear();
        let (mut any, mut too_long) = (false, false);
        loop {
            let avail = self
                .reader
                .fill_buf()
                .map_err(|e| DataError::io(&self.file, e))?;
            if avail.is_empty() {
                break;
            }
            any = true;
            let (take, ends) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            if !too_long && self.buf.len() + take > limit {
                too_long = true;
                self.buf.clear();
            }
            if !too_long {
                self.buf.extend_from_slice(&avail[..take]);
            }
            self.reader.consume(take);
            if ends {
                break;
            }
        }
        if !any {
            return Ok(LineRead::End);
        }
        self.line_no += 1;
        if too_long {
            return Ok(LineRead::TooLong);
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(LineRead::Line)
    }

    fn fill(&mut self) -> Result<()> {
        while self.builder.len() < self.batch_size {
            let read = self.read_line(self.max_line)?;
            if read == LineRead::End {
                self.done = true;
                break;
            }
            if std::mem::take(&mut self.header_pending)
                || (read == LineRead::Line && self.buf.is_empty())
            {
                continue;
            }
            let at = At {
                file: &self.file,
                line: self.line_no,
            };
            let parsed = if read == LineRead::TooLong {
                Err(DataError::LineTooLong {
                    file: self.file.clone(),
                    line: self.line_no,
                    limit: self.max_line,
                })
            } else {
                self.parser.parse(&self.buf, &at, &mut self.row)
            };
            match parsed {
                Ok(()) => {
                    self.builder
                        .push(&self.row.dense, &self.row.bags, self.row.label);
                    self.stats.rows += 1;
                }
                Err(e) if self.skip_bad_lines => {
                    self.stats.skipped_lines += 1;
                    if self.stats.examples.len() < KEPT_EXAMPLES {
                        self.stats.examples.push(e.to_string());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl BatchSource for TextSource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        if self.done && self.builder.is_empty() {
            return Ok(None);
        }
        if let Err(e) = self.fill() {
            // The samples read before the error are yielded; the error comes with the next call.
            self.done = true;
            if self.builder.is_empty() {
                return Err(e);
            }
            self.pending = Some(e);
        }
        Ok((!self.builder.is_empty()).then(|| self.builder.take()))
    }

    fn n_dense(&self) -> usize {
        self.parser
            .plans
            .iter()
            .filter(|p| matches!(p, Plan::Dense(_)))
            .count()
    }

    fn n_tables(&self) -> usize {
        self.parser.table_rows.len()
    }

    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::read_all;

    fn source(text: &str, schema: &Schema, rows: &[usize], skip: bool) -> TextSource {
        let reader = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        TextSource::new(reader, "mem.tsv", schema, rows, 2, skip).unwrap()
    }

    fn criteo_line(label: &str, dense0: &str, cat0: &str) -> String {
        let mut f = vec![label.to_string(), dense0.to_string()];
        f.extend((1..13).map(|i| i.to_string()));
        f.push(cat0.to_string());
        f.extend((1..26).map(|i| format!("{:08x}", i * 1000)));
        f.join("\t")
    }

    #[test]
    fn criteo_line_transforms() {
        let text = [
            criteo_line("1", "", "68fd1e64"),
            criteo_line("0", "-3", ""),
            criteo_line("0", "1382", "0000000a"),
        ]
        .join("\n")
            + "\n";
        let mut s = source(&text, &Schema::criteo(), &[1000; 26], false);
        let b = read_all(&mut s).unwrap();
        assert_eq!(b.size, 3);
        assert_eq!(b.labels, Some(vec![1.0, 0.0, 0.0]));
        // Missing and negative counts are 0; log1p otherwise; I2 = 1 → ln 2.
        assert_eq!(b.dense[0], 0.0);
        assert_eq!(b.dense[13], 0.0);
        assert_eq!(b.dense[26], (1383f64).ln() as f32);
        assert_eq!(b.dense[1], std::f32::consts::LN_2);
        // 0x68fd1e64 = 1761418852, mod 1000 = 852; missing = 0; 0xa = 10.
        assert_eq!(b.sparse[0].ids, vec![852, 0, 10]);
        assert_eq!(b.sparse[0].offsets, vec![0, 1, 2, 3]);
        assert_eq!(b.sparse[1].ids[0], 1000 % 1000);
    }

    #[test]
    fn malformed_lines_name_line_and_column() {
        let good = criteo_line("0", "5", "ab");
        let text = format!("{good}\n{good}\n{}\n", criteo_line("0", "x7", "ab"));
        let mut s = source(&text, &Schema::criteo(), &[1000; 26], false);
        assert_eq!(s.next_batch().unwrap().unwrap().size, 2);
        match s.next_batch() {
            Err(DataError::Field {
                line, column, name, ..
            }) => assert_eq!((line, column, name.as_str()), (3, 2, "I1")),
            other => panic!("{other:?}"),
        }
        assert!(s.next_batch().unwrap().is_none());
        // The good line before the bad one (same batch) is yielded first, then the error.
        let text = format!("{good}\n1\t2\t3\n");
        let mut s = source(&text, &Schema::criteo(), &[1000; 26], false);
        assert_eq!(s.next_batch().unwrap().unwrap().size, 1);
        assert_eq!(s.stats().rows, 1);
        match s.next_batch() {
            Err(DataError::ColumnCount {
                line,
                expected,
                found,
                ..
            }) => assert_eq!((line, expected, found), (2, 40, 3)),
            other => panic!("{other:?}"),
        }
        for (label, cat) in [("2", "ab"), ("", "ab"), ("0", "zz")] {
            let text = criteo_line(label, "1", cat);
            let mut s = source(&text, &Schema::criteo(), &[1000; 26], false);
            assert!(matches!(
                s.next_batch(),
                Err(DataError::Field { line: 1, .. })
            ));
        }
    }

    #[test]
    fn unlabelled_schema_with_header() {
        let schema: Schema = serde_json::from_str(
            r#"{"delimiter": ";", "header": true, "columns": [
                {"role": "dense", "transform": "none"}, {"role": "sparse", "kind": "ids"}]}"#,
        )
        .unwrap();
        let mut s = source("x;y\n1.5;2\n-2;0\n", &schema, &[3], false);
        let b = read_all(&mut s).unwrap();
        assert_eq!(b.labels, None);
        assert_eq!(b.dense, vec![1.5, -2.0]);
        assert_eq!(b.sparse[0].ids, vec![2, 0]);
        // Unnamed columns are named by position in errors; line numbers count the header.
        let mut s = source("x;y\n1;7\n", &schema, &[3], false);
        let err = s.next_batch().unwrap_err().to_string();
        assert!(err.contains("mem.tsv:2: column 2 (c1): id 7"), "{err}");
    }

    #[test]
    fn skip_bad_lines_counts() {
        let good = criteo_line("1", "5", "ab");
        let text = format!(
            "{good}\nbad\n\n{good}\n{}\n{good}\n",
            criteo_line("5", "1", "ab")
        );
        let mut s = source(&text, &Schema::criteo(), &[1000; 26], true);
        let b = read_all(&mut s).unwrap();
        assert_eq!(b.size, 3);
        assert_eq!(s.stats().rows, 3);
        assert_eq!(s.stats().skipped_lines, 2);
        assert!(
            s.stats().examples[0].contains("mem.tsv:2"),
            "{:?}",
            s.stats()
        );
        assert!(
            s.stats().examples[1].contains("mem.tsv:5"),
            "{:?}",
            s.stats()
        );
    }
}
