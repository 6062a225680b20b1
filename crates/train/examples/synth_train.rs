//! Runs the synthetic training recipe with overrides and prints holdout NE vs the teacher's.
//!
//! `cargo run -p quantrec-data --release --example synth_train -- [cap] [zipf] [train_rows] [threads] [signal] [lr_sparse] [lr_dense] [batch] [sgd]` (`-` keeps a default)

use quantrec_data::synth::criteo_table_rows;
use quantrec_train::recipe::{SynthRecipe, train_synthetic};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).filter(|s| s.as_str() != "-");
    let mut r = SynthRecipe::default();
    if let Some(cap) = arg(1) {
        r.synth.table_rows = criteo_table_rows(cap.parse().expect("cap"));
    }
    if let Some(z) = arg(2) {
        r.synth.zipf_exponent = z.parse().expect("zipf");
    }
    if let Some(n) = arg(3) {
        r.train_rows = n.parse().expect("rows");
    }
    if let Some(t) = arg(4) {
        r.options.threads = Some(t.parse().expect("threads"));
    }
    if let Some(s) = arg(5) {
        r.synth.signal = s.parse().expect("signal");
    }
    if let Some(l) = arg(6) {
        r.options.lr_sparse = l.parse().expect("lr");
    }
    if let Some(l) = arg(7) {
        r.options.lr_dense = l.parse().expect("lr dense");
    }
    if let Some(b) = arg(8) {
        r.options.batch_size = b.parse().expect("batch");
    }
    if arg(9).is_some_and(|o| o == "sgd") {
        r.options.optimizer = quantrec_train::Optimizer::Sgd;
    }
    r.eval_rows = 100_000;
    let t = std::time::Instant::now();
    let out = train_synthetic(&r, |p| {
        if p.step.is_multiple_of(2000) {
            eprintln!(
                "{:>9} samples {:6.1}s running NE {:.4}",
                p.samples,
                t.elapsed().as_secs_f64(),
                p.running_ne
            );
        }
    })
    .expect("train");
    println!(
        "rows {:?} zipf {} train {} : holdout NE {:.4} AUC {:.4} teacher NE {:.4} ratio {:.4}; setup {:.1}s train {:.1}s ({:.0} samples/s) eval {:.1}s total {:.1}s",
        r.synth.table_rows.iter().sum::<usize>(),
        r.synth.zipf_exponent,
        r.train_rows,
        out.holdout.ne,
        out.holdout.auc,
        out.teacher.ne.unwrap_or(f64::NAN),
        out.ne_ratio,
        out.setup_seconds,
        out.train_seconds,
        r.train_rows as f64 / out.train_seconds,
        out.eval_seconds,
        t.elapsed().as_secs_f64()
    );
}
