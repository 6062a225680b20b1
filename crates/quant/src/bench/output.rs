//! Where `quantrec bench` writes its lines: a table on stdout (the header before the first row)
//! and, when asked, one JSON object per line to a file or to stdout.

use std::fmt::Display;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::BenchRecord;
use crate::{QuantError, Result};

/// The table on stdout and the optional JSON lines of one benchmark run.
pub struct BenchOutput {
    json: Option<Box<dyn Write>>,
    rows: usize,
}

impl BenchOutput {
    /// JSON lines to `json` (a file path, or `-` for stdout), or none.
    pub fn open(json: Option<&Path>) -> Result<Self> {
        let json: Option<Box<dyn Write>> = match json {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(Box::new(std::io::stdout())),
            Some(p) => Some(Box::new(BufWriter::new(
                File::create(p).map_err(|e| QuantError::io(p, e))?,
            ))),
        };
        Ok(BenchOutput { json, rows: 0 })
    }

    /// One record: a table row (the header first) and its JSON line.
    pub fn record(&mut self, r: &BenchRecord) -> std::io::Result<()> {
        if self.rows == 0 {
            println!("{}", BenchRecord::table_header());
        }
        self.rows += 1;
        println!("{r}");
        if let Some(w) = self.json.as_mut() {
            writeln!(w, "{}", r.json_line()?)?;
        }
        Ok(())
    }

    /// Runs `bench` with a [`super::Sink`] (ops containing `filter`, all when `None`) whose
    /// records go to [`BenchOutput::record`].
    pub fn feed(
        &mut self,
        filter: Option<String>,
        bench: impl FnOnce(&mut super::Sink<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut on_record = |r: &BenchRecord| self.record(r);
        bench(&mut super::Sink::new(filter, &mut on_record))
    }

    /// Any other line (the remote-tables benchmark's): its text, then its JSON.
    pub fn line<T: Display + Serialize>(&mut self, line: &T) -> std::io::Result<()> {
        self.rows += 1;
        println!("{line}");
        if let Some(w) = self.json.as_mut() {
            writeln!(w, "{}", serde_json::to_string(line)?)?;
        }
        Ok(())
    }

    /// Lines written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Flushes the JSON lines.
    pub fn finish(mut self) -> Result<()> {
        if let Some(w) = self.json.as_mut() {
            w.flush()
                .map_err(|e| QuantError::io("<benchmark JSON lines>", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_go_to_the_file_one_object_per_line() {
        let dir = std::env::temp_dir().join(format!("quantrec-bench-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lines.json");
        let mut out = BenchOutput::open(Some(&path)).unwrap();
        #[derive(Serialize)]
        struct L {
            x: u32,
        }
        impl Display for L {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "x={}", self.x)
            }
        }
        out.line(&L { x: 1 }).unwrap();
        out.line(&L { x: 2 }).unwrap();
        assert_eq!(out.rows(), 2);
        out.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"x\":1}\n{\"x\":2}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_json_path_is_an_io_error_naming_it() {
        let err = BenchOutput::open(Some(Path::new("/nonexistent-dir/x.json")))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent-dir/x.json"), "{err}");
    }
}
