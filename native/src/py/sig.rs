//! The raw Ed25519 functions (ZIP-215), for test suites and benchmarks, with their own cache of
//! decoded keys.

use std::sync::{LazyLock, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::bytes_arg;
use crate::ed25519;
use crate::keycache::{self, KeyCache};

/// Decoded keys for the raw `ed25519_*` functions (a node verifies the same keys again and
/// again; decoding one costs a tenth of a verification). Caching changes no verdict.
static RAW_KEYS: LazyLock<Mutex<KeyCache>> = LazyLock::new(|| Mutex::new(KeyCache::new(1024)));

fn raw_decoder(key: &[u8; 32]) -> Option<curve25519_dalek::edwards::EdwardsPoint> {
    keycache::decode_through(&RAW_KEYS, key)
}

#[pyfunction]
pub(super) fn ed25519_verify(
    py: Python<'_>,
    public_key: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
    signature: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let pk = bytes_arg(public_key, "public_key")?;
    let msg = bytes_arg(message, "message")?;
    let sig = bytes_arg(signature, "signature")?;
    Ok(py.detach(|| ed25519::verify_with(&pk, &msg, &sig, &mut raw_decoder)))
}

type Triple = (Vec<u8>, Vec<u8>, Vec<u8>);

fn triples(items: &Bound<'_, PyAny>) -> PyResult<Vec<Triple>> {
    let mut out = Vec::new();
    for item in items.try_iter()? {
        let item = item?;
        let (pk, msg, sig): (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>) =
            match item.cast::<PyList>() {
                Ok(list) => list.as_sequence().to_tuple()?.extract()?,
                Err(_) => item.extract()?,
            };
        out.push((
            bytes_arg(&pk, "public_key")?,
            bytes_arg(&msg, "message")?,
            bytes_arg(&sig, "signature")?,
        ));
    }
    Ok(out)
}

#[pyfunction]
pub(super) fn ed25519_verify_batch<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let items = triples(items)?;
    let verdicts: Vec<u8> = py.detach(|| {
        ed25519::verify_batch_with(&items, &mut raw_decoder)
            .into_iter()
            .map(u8::from)
            .collect()
    });
    Ok(PyBytes::new(py, &verdicts))
}

#[pyfunction]
pub(super) fn ed25519_batch_check(py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<bool> {
    let items = triples(items)?;
    Ok(py.detach(|| ed25519::batch_check_with(&items, &mut raw_decoder)))
}
