//! The subscription matcher binding: `MatchIndex`, built from and updated with compiled
//! subscriptions, matching batches with the GIL released.

use std::sync::{PoisonError, RwLock};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt};

use super::value::to_value;
use super::Batch;
use crate::matcher;

/// One compiled subscription: `(id, tokens, tags, handles, equals, near, bounds)` with `equals` a
/// sequence of `(key, value)` and `bounds` of `(key, op, kind, value, currency)`.
fn subscription_arg(item: &Bound<'_, PyAny>) -> PyResult<matcher::Subscription> {
    type Raw<'py> = (
        i64,
        Vec<String>,
        Vec<String>,
        Vec<String>,
        Bound<'py, PyAny>,
        Option<String>,
        Vec<(String, i64, i64, i64, String)>,
    );
    let (id, tokens, tags, handles, equals, near, bounds): Raw<'_> = item.extract()?;
    let mut eq = Vec::new();
    for pair in equals.try_iter()? {
        let (key, value): (String, Bound<'_, PyAny>) = pair?.extract()?;
        eq.push((key, to_value(&value, 1)?));
    }
    let mut bs = Vec::with_capacity(bounds.len());
    for (key, op, kind, value, cur) in bounds {
        let op = matcher::Op::from_code(op).ok_or_else(|| {
            PyValueError::new_err(format!("subscription {id}: unknown op code {op}"))
        })?;
        let kind = matcher::Kind::from_code(kind).ok_or_else(|| {
            PyValueError::new_err(format!("subscription {id}: unknown kind code {kind}"))
        })?;
        bs.push(matcher::Bound {
            key,
            op,
            kind,
            value,
            cur,
        });
    }
    Ok(matcher::Subscription {
        id,
        tokens,
        tags,
        handles,
        equals: eq,
        near,
        bounds: bs,
    })
}

type MatchesOut<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
);

/// (flags, offsets, ids) as bytes: offsets u64 and ids i64 in native byte order.
fn matches_out<'py>(py: Python<'py>, m: &matcher::Matches) -> MatchesOut<'py> {
    let offsets: Vec<u8> = m.offsets.iter().flat_map(|o| o.to_ne_bytes()).collect();
    let ids: Vec<u8> = m.ids.iter().flat_map(|i| i.to_ne_bytes()).collect();
    (
        PyBytes::new(py, &m.flags),
        PyBytes::new(py, &offsets),
        PyBytes::new(py, &ids),
    )
}

/// Reads and checks every subscription before the index changes (so an add is all or nothing),
/// into one buffer rather than a copy of each.
fn subscriptions_arg(subscriptions: &Bound<'_, PyAny>) -> PyResult<matcher::Staged> {
    let mut staged = matcher::Staged::default();
    for item in subscriptions.try_iter()? {
        staged
            .push(&subscription_arg(&item?)?)
            .map_err(PyValueError::new_err)?;
    }
    Ok(staged)
}

/// A vendor's compiled subscriptions, matched against batches of intents with the GIL released and
/// updated in place by `add` / `remove` while other threads match: matching holds the read lock
/// (one item at a time, so a writer waits at most for one item), updates the write lock.
#[pyclass(frozen, module = "node._native", name = "MatchIndex")]
pub(crate) struct PyMatchIndex {
    index: RwLock<matcher::MatchIndex>,
}

impl PyMatchIndex {
    /// Runs `f` on the index under the read lock (call it with the GIL released: a writer waiting
    /// for the lock may be waiting for the GIL).
    pub(crate) fn with_index<R>(&self, f: impl FnOnce(&matcher::MatchIndex) -> R) -> R {
        let guard = self.index.read().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    fn with_index_mut<R>(&self, f: impl FnOnce(&mut matcher::MatchIndex) -> R) -> R {
        let mut guard = self.index.write().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    fn run<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
        what: &str,
        one: fn(&matcher::MatchIndex, &[u8], &mut Vec<i64>) -> u8,
    ) -> PyResult<MatchesOut<'py>> {
        let batch = Batch::collect(items, what)?;
        // An oversized item stands in as an empty slice, which is malformed as a body and as an envelope.
        let m = py.detach(|| {
            let items = batch.items();
            let mut m = matcher::Matches {
                flags: Vec::with_capacity(items.len()),
                offsets: Vec::with_capacity(items.len() + 1),
                ids: Vec::new(),
            };
            m.offsets.push(0);
            for item in items {
                m.flags
                    .push(self.with_index(|index| one(index, item, &mut m.ids)));
                m.offsets.push(m.ids.len() as u64);
            }
            m
        });
        Ok(matches_out(py, &m))
    }
}

#[pymethods]
impl PyMatchIndex {
    #[new]
    fn new(subscriptions: &Bound<'_, PyAny>) -> PyResult<Self> {
        let subs = subscriptions_arg(subscriptions)?;
        // Building the buckets needs no Python objects: other threads may run meanwhile.
        let index = subscriptions
            .py()
            .detach(|| {
                let mut index = matcher::MatchIndex::default();
                index.add_staged(&subs).map(|()| index)
            })
            .map_err(PyValueError::new_err)?;
        Ok(PyMatchIndex {
            index: RwLock::new(index),
        })
    }

    /// Adds subscriptions (the constructor's form); all or nothing.
    fn add(&self, py: Python<'_>, subscriptions: &Bound<'_, PyAny>) -> PyResult<()> {
        let subs = subscriptions_arg(subscriptions)?;
        py.detach(|| self.with_index_mut(|index| index.add_staged(&subs)))
            .map_err(PyValueError::new_err)
    }

    /// Removes every subscription with one of these ids; returns how many were removed.
    fn remove(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let mut wanted = Vec::new();
        for id in ids.try_iter()? {
            let id = id?;
            if id.is_instance_of::<PyBool>() || !id.is_instance_of::<PyInt>() {
                return Err(PyTypeError::new_err("ids must be ints"));
            }
            wanted.push(id.extract::<i64>()?);
        }
        Ok(py.detach(|| self.with_index_mut(|index| index.remove(&wanted))))
    }

    /// An estimate of the native heap the index holds, in bytes.
    fn heap_bytes(&self, py: Python<'_>) -> usize {
        py.detach(|| self.with_index(matcher::MatchIndex::heap_bytes))
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        py.detach(|| self.with_index(matcher::MatchIndex::len))
    }

    fn match_bodies<'py>(
        &self,
        py: Python<'py>,
        bodies: &Bound<'py, PyAny>,
    ) -> PyResult<MatchesOut<'py>> {
        self.run(py, bodies, "bodies", matcher::MatchIndex::match_body)
    }

    fn match_envelopes<'py>(
        &self,
        py: Python<'py>,
        envelopes: &Bound<'py, PyAny>,
    ) -> PyResult<MatchesOut<'py>> {
        self.run(
            py,
            envelopes,
            "envelopes",
            matcher::MatchIndex::match_envelope,
        )
    }
}
