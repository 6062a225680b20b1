//! `quantrec._quantrec`, the native part of the `quantrec` Python package: [`model::PyModel`]
//! (load an artifact, score numpy batches with the GIL released) and the import / quantize /
//! evaluate workflows. The pure-Python package `quantrec` wraps it with input conversion,
//! report objects and type stubs.

mod errors;
mod inputs;
mod model;
mod workflow;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _quantrec(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(workflow::import_state_dict, m)?)?;
    m.add_function(wrap_pyfunction!(workflow::quantize, m)?)?;
    m.add_function(wrap_pyfunction!(workflow::evaluate, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
