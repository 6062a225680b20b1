//! Reports of a precision search: a Markdown table of the evaluated plans and a PNG plot of
//! ΔNE against cost with the Pareto frontier, the budget and the chosen plan; and what `quantize`
//! reports ([`QuantizeReport`]).

pub mod plot;
pub mod quantize;
pub mod search_report;
pub mod table;

pub use plot::render_png;
pub use quantize::QuantizeReport;
pub use table::markdown_table;
