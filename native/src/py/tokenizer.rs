//! The intent tokenizer binding (PROTOCOL.md section 5).

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::intent::{self, Constraint};

pyo3::import_exception!(node.errors, IntentSyntaxError);

/// The one conversion point from the tokenizer's error to the Python exception.
fn intent_err(e: intent::SyntaxError) -> PyErr {
    IntentSyntaxError::new_err((e.message, e.word, e.offset))
}

fn constraint_dict<'py>(py: Python<'py>, c: &Constraint) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match c {
        Constraint::Money { minor, cur } => {
            d.set_item(intern!(py, "money"), minor)?;
            d.set_item(intern!(py, "cur"), cur)?;
        }
        Constraint::MoneyRange { lo, hi, cur } => {
            d.set_item(intern!(py, "range"), PyList::new(py, [lo, hi])?)?;
            d.set_item(intern!(py, "cur"), cur)?;
        }
        Constraint::Date(date) => d.set_item(intern!(py, "date"), date)?,
        Constraint::DateRange(lo, hi) => {
            d.set_item(intern!(py, "range"), PyList::new(py, [lo, hi])?)?
        }
        Constraint::Int(n) => d.set_item(intern!(py, "int"), n)?,
        Constraint::IntRange(lo, hi) => {
            d.set_item(intern!(py, "range"), PyList::new(py, [lo, hi])?)?
        }
        Constraint::Geohash(g) => d.set_item(intern!(py, "geohash"), g)?,
        Constraint::Place(p) => d.set_item(intern!(py, "place"), p)?,
        Constraint::Text(t) => d.set_item(intern!(py, "text"), t)?,
    }
    Ok(d)
}

/// Tokenizes an intent's text into the dict of its parsed body (without `terms`).
#[pyfunction]
pub(super) fn parse_intent<'py>(
    py: Python<'py>,
    text: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let Ok(s) = text.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "text must be str, not {}",
            text.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )));
    };
    // A lone surrogate has no UTF-8 form.
    let Ok(utf8) = s.to_str() else {
        return Err(intent_err(intent::SyntaxError {
            message: intent::MSG_NOT_UNICODE.to_owned(),
            word: String::new(),
            offset: 0,
        }));
    };
    let parsed = intent::parse(utf8).map_err(intent_err)?;
    let constraints = PyDict::new(py);
    for (key, c) in &parsed.constraints {
        constraints.set_item(key, constraint_dict(py, c)?)?;
    }
    let out = PyDict::new(py);
    out.set_item(intern!(py, "text"), s)?;
    out.set_item(intern!(py, "tokens"), PyList::new(py, &parsed.tokens)?)?;
    out.set_item(intern!(py, "tags"), PyList::new(py, &parsed.tags)?)?;
    out.set_item(intern!(py, "handles"), PyList::new(py, &parsed.handles)?)?;
    out.set_item(intern!(py, "constraints"), constraints)?;
    out.set_item(intern!(py, "words"), PyList::new(py, &parsed.words)?)?;
    Ok(out)
}
