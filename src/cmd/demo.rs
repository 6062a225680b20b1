//! `quantrec demo`: the whole story on this machine in a few minutes: the offline stages
//! ([`quantrec_quant::demo`]), then the online day ([`quantrec_serve::demo_online`]); this
//! command prints it and writes the reports.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use quantrec_quant::demo::{DemoOptions, run_offline};

use crate::progress::DemoPrinter;

/// Arguments of `quantrec demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The short version (under two minutes): fewer training rows, shorter timings.
    #[arg(long)]
    pub quick: bool,
    /// Run the story on a real click log (Criteo DAC TSV) instead of synthetic data.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where the models and reports go.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Accuracy budget: largest relative NE increase, in percent.
    #[arg(long, default_value_t = 0.02)]
    pub budget_ne: f64,
    /// Training rows (synthetic data); default 8M, 1.5M with --quick.
    #[arg(long)]
    pub train_rows: Option<u64>,
    /// Skip the kernel self-check and benchmarks.
    #[arg(long)]
    pub skip_kernels: bool,
    /// Skip the online day (serving, live NE from fed-back labels, canary launch).
    #[arg(long)]
    pub skip_online: bool,

    /// The architecture trained (dot DLRM, or `--arch dcn`: DLRM-v2's DCN-v2 cross net).
    #[command(flatten)]
    pub arch: crate::cmd::args::ArchArgs,
}

/// Runs the demo, then writes `report.json`, `frontier.png` and `report.md`.
pub fn run(args: DemoArgs) -> Result<()> {
    let options = DemoOptions {
        quick: args.quick,
        data: args.data,
        out: args.out,
        budget_ne: args.budget_ne,
        train_rows: args.train_rows,
        skip_kernels: args.skip_kernels,
        arch: args.arch.arch(),
    };
    let mut printer = DemoPrinter::default();
    let mut outcome = run_offline(&options, &mut |e| printer.on_event(e))?;
    if !args.skip_online {
        quantrec_serve::demo_online::run_online(&mut outcome, &mut |e| printer.on_event(e))?;
    }
    let [md, json, png] = outcome.write_reports(&options.out)?;
    println!(
        "models:  {}\n         {}",
        outcome.f32_path.display(),
        outcome.quantized_path.display()
    );
    println!(
        "reports: {}\n         {}\n         {}",
        md.display(),
        json.display(),
        png.display()
    );
    if !options.skip_kernels {
        println!("\nkernel benchmarks (quick): `quantrec bench kernels --quick`");
    }
    println!("done in {:.0} s", outcome.started.elapsed().as_secs_f64());
    Ok(())
}
