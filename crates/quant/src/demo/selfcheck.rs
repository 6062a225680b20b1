//! The demo's first stage: every kernel at every ISA level against its scalar oracle.

use quantrec_kernels::selfcheck::{self, CheckResult};

use super::Story;
use crate::{QuantError, Result};

/// Seed of the demo's self-check.
pub const SEED: u64 = 0x5eed;

/// One line per kernel family (the implementations that agree), then one per mismatch, then the
/// total when every check agrees.
pub fn summary_lines(results: &[CheckResult]) -> Vec<String> {
    let mut by_family: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in results.iter().filter(|r| r.passed) {
        match by_family.iter_mut().find(|(f, _)| *f == r.family) {
            Some((_, v)) => v.push(&r.implementation),
            None => by_family.push((r.family, vec![&r.implementation])),
        }
    }
    let mut out: Vec<String> = by_family
        .iter()
        .map(|(family, impls)| format!("{family:<16} ok at {}", impls.join(", ")))
        .collect();
    let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.passed).collect();
    for r in &failed {
        out.push(format!(
            "{:<16} {:<12} MISMATCH: error {:.3e} > tolerance {:.3e}",
            r.family, r.implementation, r.max_error, r.tolerance
        ));
    }
    if failed.is_empty() {
        out.push(format!(
            "all {} checks agree with the oracle",
            results.len()
        ));
    }
    out
}

/// Runs the self-check and tells it; fails if any kernel disagrees with its oracle.
pub fn run(story: &mut Story<'_>) -> Result<()> {
    let results = selfcheck::run_all(SEED)?;
    for line in summary_lines(&results) {
        story.line(line);
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    if failed > 0 {
        return Err(QuantError::SelfCheck { failed });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(family: &'static str, implementation: &str, passed: bool) -> CheckResult {
        CheckResult {
            family,
            implementation: implementation.into(),
            cases: 1,
            max_error: if passed { 0.0 } else { 1.0 },
            tolerance: 0.5,
            passed,
        }
    }

    #[test]
    fn families_are_grouped_and_mismatches_listed() {
        let all_ok = [
            check("formats", "scalar", true),
            check("formats", "avx2", true),
        ];
        assert_eq!(
            summary_lines(&all_ok),
            [
                "formats          ok at scalar, avx2",
                "all 2 checks agree with the oracle"
            ]
        );
        let lines = summary_lines(&[check("gemm", "avx2", false)]);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("MISMATCH"), "{lines:?}");
    }
}
