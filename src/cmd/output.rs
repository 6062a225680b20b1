//! How subcommands print their report: one JSON object with `--json`, its text form otherwise.

use std::fmt::Display;

use anyhow::Result;
use serde::Serialize;

/// Prints `report` as pretty JSON (keys sorted, as a `serde_json::Value` prints them) when `json`,
/// else its [`Display`] form ending in one newline.
pub fn print_report(report: &(impl Serialize + Display), json: bool) -> Result<()> {
    if json {
        let v = serde_json::to_value(report)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let text = report.to_string();
        println!("{}", text.strip_suffix('\n').unwrap_or(&text));
    }
    Ok(())
}

/// Prints `report` as one line of JSON when `json`, else its [`Display`] form.
pub fn print_line(report: &(impl Serialize + Display), json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
