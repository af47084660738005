//! `scan_batch`: a pushed batch's items by column (crate::batch), for `federation.wire.decode_push`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::data_arg;
use crate::batch;

/// `(ttls, envelopes)` of a well-formed batch (each ttl clamped to `max_ttl`), or None. Holds the
/// GIL: the scan is a few microseconds and building the envelopes' bytes needs it.
#[pyfunction]
pub(super) fn scan_batch<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyAny>,
    max_items: usize,
    max_ttl: u8,
) -> PyResult<Option<(Bound<'py, PyBytes>, Bound<'py, PyList>)>> {
    let data = data_arg(body)?;
    let Some(scanned) = batch::scan(&data, max_items, max_ttl) else {
        return Ok(None);
    };
    let envelopes = PyList::new(
        py,
        scanned
            .spans
            .iter()
            .map(|&(a, b)| PyBytes::new(py, &data[a..b])),
    )?;
    Ok(Some((PyBytes::new(py, &scanned.ttls), envelopes)))
}
