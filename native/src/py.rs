//! The pyo3 binding module `node._native`: the conversion points from Rust errors to Python
//! exceptions, bytes-like arguments, and the module's table. The bindings live in submodules:
//! `value` (Python objects <-> `Value`, the codec and envelope functions), `sig` (raw Ed25519),
//! `matcher` (MatchIndex), `tokenizer` (parse_intent), `batch` (scan_batch) and `verifier` (the Verifier: verify, ingest,
//! remember, with the GIL released around the signature and matching work). Everything else is
//! plain Rust.

use std::borrow::Cow;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView, PyTuple};

use crate::codec::{MAX_DEPTH, MAX_ENVELOPE_BYTES};
use crate::envelope::{self, KINDS, MAX_CLOCK_SKEW_MS, PROTOCOL_VERSION, SIGNING_PREFIX};
use crate::intent;
use crate::matcher as core_matcher;
use crate::reason::{Error, Reason};

mod batch;
mod matcher;
mod sig;
mod tokenizer;
mod value;
mod verifier;

use matcher::PyMatchIndex;
use value::read_py;
use verifier::{IngestResult, Verifier, NO_KIND};

pyo3::import_exception!(node.errors, EnvelopeError);

/// The one conversion point from the Rust error to the Python exception.
pub(super) fn py_err(e: Error) -> PyErr {
    EnvelopeError::new_err((e.reason.code(), e.detail()))
}

pub(super) fn env_err(reason: Reason, what: &'static str) -> PyErr {
    py_err(Error::new(reason, what))
}

// -- bytes-like arguments ------------------------------------------------------------------------

/// The bytes of a bytes / bytearray / memoryview (borrowed for bytes). Other types: `None`.
pub(super) fn bytes_like<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Option<Cow<'a, [u8]>>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Some(Cow::Borrowed(b.as_bytes())));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Some(Cow::Owned(b.to_vec())));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let copy = obj.call_method0("tobytes")?;
        let b = copy.cast::<PyBytes>().map_err(PyErr::from)?;
        return Ok(Some(Cow::Owned(b.as_bytes().to_vec())));
    }
    Ok(None)
}

/// A bytes-like argument, or TypeError.
pub(super) fn bytes_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    match bytes_like(obj)? {
        Some(b) => Ok(b.into_owned()),
        None => Err(PyTypeError::new_err(format!(
            "{what} must be bytes, bytearray or memoryview, not {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))),
    }
}

/// A bytes-like argument (borrowed when it is bytes), or TypeError.
pub(super) fn data_arg<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    bytes_like(obj)?
        .ok_or_else(|| PyTypeError::new_err("data must be bytes, bytearray or memoryview"))
}

/// Copies a sequence of bytes-like objects into one buffer. Items over the size cap are not
/// copied (they are refused as too_large whatever they hold): they become `None`.
pub(super) struct Batch {
    pub(super) buf: Vec<u8>,
    pub(super) spans: Vec<Option<(usize, usize)>>,
}

impl Batch {
    pub(super) fn collect(seq: &Bound<'_, PyAny>, what: &str) -> PyResult<Batch> {
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        for item in seq.try_iter()? {
            let item = item?;
            let Some(b) = bytes_like(&item)? else {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be bytes, bytearray or memoryview"
                )));
            };
            if b.len() > MAX_ENVELOPE_BYTES {
                spans.push(None);
            } else {
                let start = buf.len();
                buf.extend_from_slice(&b);
                spans.push(Some((start, buf.len())));
            }
        }
        Ok(Batch { buf, spans })
    }

    pub(super) fn items(&self) -> Vec<&[u8]> {
        // An oversized item stands in as an empty slice and is fixed up after verification.
        self.spans
            .iter()
            .map(|s| s.and_then(|(a, b)| self.buf.get(a..b)).unwrap_or(&[]))
            .collect()
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Import the exception's module now: a failure is an ImportError here, never a panic later.
    let errors = py.import("node.errors")?;
    errors.getattr("EnvelopeError")?;
    errors.getattr("IntentSyntaxError")?;
    m.add("PROTOCOL_VERSION", PROTOCOL_VERSION)?;
    m.add("SIGNING_PREFIX", PyBytes::new(py, SIGNING_PREFIX))?;
    m.add("MAX_ENVELOPE_BYTES", MAX_ENVELOPE_BYTES)?;
    m.add("MAX_DEPTH", MAX_DEPTH)?;
    m.add("MAX_CLOCK_SKEW_MS", MAX_CLOCK_SKEW_MS)?;
    m.add("KINDS", PyTuple::new(py, KINDS)?)?;
    m.add("MAX_INTENT_CHARS", intent::MAX_TEXT_CHARS)?;
    m.add("MAX_INTENT_NAME_CHARS", intent::MAX_NAME_CHARS)?;
    m.add("INTENT_UNICODE_VERSION", intent::UNICODE_VERSION)?;
    m.add_function(wrap_pyfunction!(value::encode, m)?)?;
    m.add_function(wrap_pyfunction!(value::decode, m)?)?;
    m.add_function(wrap_pyfunction!(value::signed_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(value::encode_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(value::decode_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(sig::ed25519_verify, m)?)?;
    m.add_function(wrap_pyfunction!(sig::ed25519_verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sig::ed25519_batch_check, m)?)?;
    m.add_function(wrap_pyfunction!(tokenizer::parse_intent, m)?)?;
    m.add_function(wrap_pyfunction!(batch::scan_batch, m)?)?;
    m.add("MATCH_OK", core_matcher::FLAG_OK)?;
    m.add("MATCH_MALFORMED", core_matcher::FLAG_MALFORMED)?;
    m.add("MATCH_NOT_INTENT", core_matcher::FLAG_NOT_INTENT)?;
    m.add("MATCH_OPS", PyTuple::new(py, core_matcher::OPS)?)?;
    m.add("MATCH_KINDS", PyTuple::new(py, core_matcher::KINDS)?)?;
    m.add_class::<Verifier>()?;
    m.add_class::<PyMatchIndex>()?;
    m.add_class::<IngestResult>()?;
    m.add("MAX_LIFETIME_MS", {
        let d = PyDict::new(py);
        for (k, v) in KINDS.iter().zip(envelope::MAX_LIFETIME_MS) {
            d.set_item(k, v)?;
        }
        d
    })?;
    m.add("NO_KIND", NO_KIND)?;
    Ok(())
}
