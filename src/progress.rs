//! Progress bars and spinners of the command line (indicatif), driven by the libraries' progress
//! callbacks.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use quantrec_quant::demo::DemoEvent;
use quantrec_train::Progress;

/// A spinner with elapsed time and `msg`.
pub fn spinner(msg: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(msg.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A bar over `total` training samples; `template_extra` is shown after the rate (e.g. `, eta {eta}`).
pub fn train_bar(total: u64, template_extra: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} samples ({{per_sec}}{template_extra}) {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Moves `bar` to the trainer's position; every 16 steps shows the running loss and NE (with the
/// epoch when `epochs`).
pub fn show_training(bar: &ProgressBar, p: &Progress, epochs: bool) {
    bar.set_position(p.samples);
    if p.step.is_multiple_of(16) {
        bar.set_message(if epochs {
            format!(
                "epoch {} loss {:.4} NE {:.4}",
                p.epoch + 1,
                p.running_loss,
                p.running_ne
            )
        } else {
            format!("loss {:.4} NE {:.4}", p.running_loss, p.running_ne)
        });
    }
}

/// Prints the demo's story: stage titles, lines, and a spinner or bar while it works.
#[derive(Default)]
pub struct DemoPrinter {
    bar: Option<ProgressBar>,
}

impl DemoPrinter {
    /// Handles one event.
    pub fn on_event(&mut self, e: DemoEvent<'_>) {
        match e {
            DemoEvent::Stage(title) => println!("\n== {title} =="),
            DemoEvent::Line(line) => println!("{line}"),
            DemoEvent::Text(text) => print!("{text}"),
            DemoEvent::Busy(what) => self.bar = Some(spinner(what)),
            DemoEvent::TrainStart { samples } => self.bar = Some(train_bar(samples, "")),
            DemoEvent::Train(p) => {
                if let Some(bar) = &self.bar {
                    show_training(bar, p, false);
                }
            }
            DemoEvent::Done | DemoEvent::TrainEnd => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
