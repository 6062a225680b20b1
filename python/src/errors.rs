//! The library's errors as Python exceptions: `OSError` for files that could not be read or
//! written, `ValueError` for everything the library refuses (with the library's message).

use pyo3::PyErr;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use quantrec_data::DataError;
use quantrec_model::ModelError;
use quantrec_quant::QuantError;

/// `OSError(errno, message)` when the OS gave an error number, else `OSError(message)`.
fn os_error(source: &std::io::Error, message: String) -> PyErr {
    match source.raw_os_error() {
        Some(code) => PyOSError::new_err((code, message)),
        None => PyOSError::new_err(message),
    }
}

/// A data-crate error as a Python exception.
pub fn data_err(e: DataError) -> PyErr {
    match &e {
        DataError::Io { source, .. } => os_error(source, e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// A model-crate error as a Python exception.
pub fn model_err(e: ModelError) -> PyErr {
    match e {
        ModelError::Io { ref source, .. } => os_error(source, e.to_string()),
        ModelError::Data(d) => data_err(d),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// A quant-crate error as a Python exception.
pub fn quant_err(e: QuantError) -> PyErr {
    match e {
        QuantError::Io { ref source, .. } | QuantError::PlanSpec { ref source, .. } => {
            os_error(source, e.to_string())
        }
        QuantError::Model(m) => model_err(m),
        QuantError::Data(d) => data_err(d),
        QuantError::ThreadPool(t) => PyRuntimeError::new_err(t.to_string()),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// A JSON (de)serialization failure of the binding itself (a bug, not bad input).
pub fn json_err(e: serde_json::Error) -> PyErr {
    PyRuntimeError::new_err(format!("quantrec: JSON conversion failed: {e}"))
}
