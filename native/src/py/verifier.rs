//! The Verifier binding: bounded constructor arguments, `verify_batch` / `verify_one` on threads
//! for large batches, and the one-pass `ingest` with its packed `IngestResult` (GIL released for
//! all the work; the bodies become Python objects only when asked for: most accepted items are
//! intents the pipeline stores and relays without ever reading their body).

use std::sync::Mutex;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList};

use super::{bytes_arg, bytes_like, read_py, Batch, PyMatchIndex};
use crate::codec::{self, Reader, Value, MAX_ENVELOPE_BYTES};
use crate::envelope::KINDS;
use crate::hotkeys::{self, HotKeys};
use crate::ingest;
use crate::keycache::KeyCache;
use crate::matcher;
use crate::parallel;
use crate::reason::Reason;
use crate::verify;

/// The largest key cache a Verifier may have (the LRU preallocates its index table: a few MB at
/// this size; `Verifier(2**30)` used to abort the interpreter on that allocation).
const MAX_KEY_CACHE: usize = 131_072;
/// The most fixed-base tables a Verifier may keep for its frequent signers (30 KB each: 31 MB).
const MAX_HOT_KEYS: usize = 1024;
/// The most uses a Verifier may ask of a key before its table.
const MAX_HOT_KEY_USES: usize = 1 << 20;
/// The default size of a Verifier's recent-id set (ingest's duplicate memory).
const DEFAULT_RECENT_IDS: usize = 262_144;

/// An `int` argument within `lo ..= hi`, else ValueError naming it (OverflowError beyond u64 and
/// negative ints: pyo3's conversion).
fn bounded(name: &str, value: u64, lo: u64, hi: usize) -> PyResult<usize> {
    match usize::try_from(value) {
        Ok(v) if value >= lo && v <= hi => Ok(v),
        _ => Err(PyValueError::new_err(format!(
            "{name} must be between {lo} and {hi}, not {value}"
        ))),
    }
}

/// Kind codes in ingest results: the position in KINDS; this for an item that did not decode.
pub(super) const NO_KIND: u8 = 255;

/// Envelope verification with a bounded cache of decoded author keys (shared by all calls), a
/// bounded set of recently committed ids, and the threads large batches are split over.
#[pyclass(frozen, module = "node._native")]
pub(super) struct Verifier {
    cache: Mutex<KeyCache>,
    hot: Mutex<HotKeys>,
    recent: Mutex<ingest::RecentIds>,
    threads: usize,
}

/// What `Verifier.ingest` returns: per item a code, id, kind code, author, times, body (OK items)
/// and matched subscription ids; fixed-width fields packed in bytes (see node/_native.pyi). The
/// bodies stay canonical bytes in the batch's buffer until `body(i)` or `bodies` decodes them.
#[pyclass(frozen, module = "node._native")]
pub(super) struct IngestResult {
    #[pyo3(get)]
    codes: Py<PyBytes>,
    #[pyo3(get)]
    ids: Py<PyBytes>,
    #[pyo3(get)]
    kinds: Py<PyBytes>,
    #[pyo3(get)]
    authors: Py<PyBytes>,
    #[pyo3(get)]
    created: Py<PyBytes>,
    #[pyo3(get)]
    expires: Py<PyBytes>,
    /// The batch's bytes and, for each accepted item, where its body lies in them.
    buf: Vec<u8>,
    body_spans: Vec<Option<(usize, usize)>>,
    bodies: PyOnceLock<Py<PyList>>,
    #[pyo3(get)]
    match_offsets: Py<PyBytes>,
    #[pyo3(get)]
    match_ids: Py<PyBytes>,
    len: usize,
}

impl IngestResult {
    /// Item i's body as Python objects (None unless accepted); the bytes were checked by the pass.
    fn decode_body<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        match self.body_spans.get(i).copied().flatten() {
            Some((a, b)) => {
                let mut r = Reader::new(self.buf.get(a..b).unwrap_or(&[]));
                read_py(py, &mut r, 2)
            }
            None => Ok(py.None().into_bound(py)),
        }
    }
}

/// (text, JSON) of an intent body's canonical bytes; None when it does not decode or has no text.
fn intent_json(body: &[u8]) -> Option<(String, String)> {
    let body = codec::decode_uncapped(body).ok()?;
    let Value::Map(entries) = &body else {
        return None;
    };
    let text = entries.iter().find_map(|(k, v)| match v {
        Value::Str(t) if k == "text" => Some(t.clone()),
        _ => None,
    })?;
    Some((text, codec::to_json(&body)?))
}

#[pymethods]
impl IngestResult {
    fn __len__(&self) -> usize {
        self.len
    }

    /// Every item's body (None unless accepted), decoded on first access and kept.
    #[getter]
    fn bodies(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let list = self
            .bodies
            .get_or_try_init(py, || -> PyResult<Py<PyList>> {
                let list = PyList::empty(py);
                for i in 0..self.len {
                    list.append(self.decode_body(py, i)?)?;
                }
                Ok(list.unbind())
            })?;
        Ok(list.clone_ref(py))
    }

    /// Item i's body (None unless accepted), decoded now: IndexError outside 0..n-1.
    fn body<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        if i >= self.len {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "item index out of range",
            ));
        }
        if let Some(list) = self.bodies.get(py) {
            return list.bind(py).get_item(i);
        }
        self.decode_body(py, i)
    }

    /// (text, body as JSON text) of each accepted intent at `indexes`, the JSON exactly as Python's
    /// `json.dumps(body, ensure_ascii=False, sort_keys=True)` writes it (the leads' rows): one call
    /// per batch, the GIL released while it works. IndexError for an index outside 0..n-1,
    /// ValueError for one that is no accepted intent.
    fn intents_json(&self, py: Python<'_>, indexes: Vec<usize>) -> PyResult<Vec<(String, String)>> {
        if let Some(&i) = indexes.iter().find(|&&i| i >= self.len) {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "item index {i} out of range"
            )));
        }
        let intent = KINDS.iter().position(|k| *k == "intent");
        let kinds = self.kinds.bind(py).as_bytes().to_vec();
        let (buf, spans) = (&self.buf, &self.body_spans);
        py.detach(|| {
            indexes
                .iter()
                .map(|&i| {
                    let is_intent = kinds.get(i).map(|&k| usize::from(k)) == intent;
                    let span = spans.get(i).copied().flatten().filter(|_| is_intent);
                    span.and_then(|(a, b)| intent_json(buf.get(a..b).unwrap_or(&[])))
                        .ok_or(i)
                })
                .collect::<Result<Vec<_>, usize>>()
        })
        .map_err(|i| PyValueError::new_err(format!("item {i} is not an accepted intent")))
    }

    /// The matched subscription ids of item i (ascending), as a list.
    fn matched(&self, py: Python<'_>, i: usize) -> PyResult<Vec<i64>> {
        let offsets = self.match_offsets.bind(py).as_bytes();
        let ids = self.match_ids.bind(py).as_bytes();
        let at = |k: usize| -> Option<usize> {
            let b = offsets.get(k * 8..k * 8 + 8)?;
            usize::try_from(u64::from_ne_bytes(b.try_into().ok()?)).ok()
        };
        let (Some(a), Some(b)) = (at(i), at(i + 1)) else {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "item index out of range",
            ));
        };
        Ok(ids
            .get(a * 8..b * 8)
            .unwrap_or(&[])
            .chunks_exact(8)
            .filter_map(|c| c.try_into().ok().map(i64::from_ne_bytes))
            .collect())
    }
}

#[pymethods]
impl Verifier {
    #[new]
    #[pyo3(signature = (key_cache_size = 4096, *, threads = None, recent_ids = DEFAULT_RECENT_IDS as u64,
                        hot_keys = hotkeys::DEFAULT_TABLES as u64, hot_key_uses = hotkeys::DEFAULT_THRESHOLD as u64))]
    fn new(
        key_cache_size: u64,
        threads: Option<u64>,
        recent_ids: u64,
        hot_keys: u64,
        hot_key_uses: u64,
    ) -> PyResult<Self> {
        let key_cache_size = bounded("key_cache_size", key_cache_size, 0, MAX_KEY_CACHE)?;
        let hot_keys = bounded("hot_keys", hot_keys, 0, MAX_HOT_KEYS)?;
        let hot_key_uses = bounded("hot_key_uses", hot_key_uses, 1, MAX_HOT_KEY_USES)? as u32;
        let recent_ids = bounded("recent_ids", recent_ids, 0, ingest::MAX_RECENT_IDS)?;
        let threads = match threads {
            None => parallel::default_threads(),
            Some(t) => bounded("threads", t, 1, parallel::MAX_THREADS)?,
        };
        Ok(Verifier {
            cache: Mutex::new(KeyCache::new(key_cache_size)),
            hot: Mutex::new(HotKeys::new(hot_keys, hot_key_uses)),
            recent: Mutex::new(ingest::RecentIds::new(recent_ids)),
            threads,
        })
    }

    #[getter]
    fn threads(&self) -> usize {
        self.threads
    }

    fn verify_batch<'py>(
        &self,
        py: Python<'py>,
        envelopes: &Bound<'py, PyAny>,
        now_ms: i64,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let batch = Batch::collect(envelopes, "envelopes")?;
        let (codes, ids) = py.detach(|| {
            let items = batch.items();
            let outcomes = verify::verify_batch_threaded(&self.cache, &items, now_ms, self.threads);
            let mut codes = Vec::with_capacity(outcomes.len());
            let mut ids = Vec::with_capacity(outcomes.len() * 32);
            for (o, span) in outcomes.iter().zip(&batch.spans) {
                match span {
                    None => {
                        codes.push(Reason::TooLarge.code());
                        ids.extend_from_slice(&[0u8; 32]);
                    }
                    Some(_) => {
                        codes.push(o.reason.code());
                        ids.extend_from_slice(&o.id.unwrap_or([0u8; 32]));
                    }
                }
            }
            (codes, ids)
        });
        Ok((PyBytes::new(py, &codes), PyBytes::new(py, &ids)))
    }

    /// The one pass over a received batch (see node/_native.pyi).
    #[pyo3(signature = (envelopes, now_ms, index = None))]
    fn ingest(
        &self,
        py: Python<'_>,
        envelopes: &Bound<'_, PyAny>,
        now_ms: i64,
        index: Option<&Bound<'_, PyMatchIndex>>,
    ) -> PyResult<IngestResult> {
        let batch = Batch::collect(envelopes, "envelopes")?;
        let index: Option<&PyMatchIndex> = index.map(|b| b.get());
        let n = batch.spans.len();
        // Everything but the Python bodies is built with the GIL released.
        let (items, packed) = py.detach(|| {
            let slices = batch.items();
            let run = |ix: Option<&matcher::MatchIndex>| {
                ingest::ingest(&self.cache, &self.recent, &slices, now_ms, self.threads, ix)
            };
            let mut items = match index {
                Some(pi) => pi.with_index(|m| run(Some(m))),
                None => run(None),
            };
            let mut p = Packed::with_capacity(n);
            for (item, span) in items.iter_mut().zip(&batch.spans) {
                if span.is_none() {
                    *item = ingest::Item {
                        reason: Reason::TooLarge,
                        id: None,
                        env: None,
                        matched: Vec::new(),
                    };
                }
                p.push(item);
            }
            (items, p)
        });
        // Where each accepted item's body lies in the batch's buffer (its slices point into it).
        let base = batch.buf.as_ptr() as usize;
        let body_spans = items
            .iter()
            .map(|item| match (&item.env, item.reason) {
                (Some(env), Reason::Ok) => {
                    let start = (env.body_raw.as_ptr() as usize).wrapping_sub(base);
                    Some((start, start + env.body_raw.len()))
                }
                _ => None,
            })
            .collect();
        drop(items);
        Ok(IngestResult {
            codes: PyBytes::new(py, &packed.codes).unbind(),
            ids: PyBytes::new(py, &packed.ids).unbind(),
            kinds: PyBytes::new(py, &packed.kinds).unbind(),
            authors: PyBytes::new(py, &packed.authors).unbind(),
            created: PyBytes::new(py, &packed.created).unbind(),
            expires: PyBytes::new(py, &packed.expires).unbind(),
            buf: batch.buf,
            body_spans,
            bodies: PyOnceLock::new(),
            match_offsets: PyBytes::new(py, &packed.offsets).unbind(),
            match_ids: PyBytes::new(py, &packed.match_ids).unbind(),
            len: n,
        })
    }

    /// Adds committed ids (32 bytes each, concatenated) to the recent-id set: ingest then calls
    /// envelopes with these ids duplicate without verifying them.
    fn remember(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<()> {
        let ids = bytes_arg(ids, "ids")?;
        if ids.len() % 32 != 0 {
            return Err(PyValueError::new_err(format!(
                "ids must be a concatenation of 32-byte ids, not {} bytes",
                ids.len()
            )));
        }
        py.detach(|| {
            let mut recent = ingest::lock_recent(&self.recent);
            for chunk in ids.chunks_exact(32) {
                if let Ok(id) = <[u8; 32]>::try_from(chunk) {
                    recent.insert(id);
                }
            }
        });
        Ok(())
    }

    fn recent_len(&self) -> usize {
        ingest::lock_recent(&self.recent).len()
    }

    fn verify_one<'py>(
        &self,
        py: Python<'py>,
        envelope: &Bound<'py, PyAny>,
        now_ms: i64,
    ) -> PyResult<(u8, Bound<'py, PyBytes>)> {
        let Some(data) = bytes_like(envelope)? else {
            return Err(PyTypeError::new_err(
                "envelope must be bytes, bytearray or memoryview",
            ));
        };
        if data.len() > MAX_ENVELOPE_BYTES {
            return Ok((Reason::TooLarge.code(), PyBytes::new(py, &[0u8; 32])));
        }
        let data = data.into_owned();
        let o = py.detach(|| verify::verify_one(&self.cache, &self.hot, &data, now_ms));
        Ok((
            o.reason.code(),
            PyBytes::new(py, &o.id.unwrap_or([0u8; 32])),
        ))
    }

    /// How many keys have a fixed-base table for single verification.
    fn hot_keys_len(&self) -> usize {
        hotkeys::lock(&self.hot).len()
    }

    fn cache_len(&self) -> usize {
        self.cache
            .lock()
            .map(|c| c.len())
            .unwrap_or_else(|e| e.into_inner().len())
    }
}

/// Ingest's fixed-width columns, built without the GIL.
struct Packed {
    codes: Vec<u8>,
    ids: Vec<u8>,
    kinds: Vec<u8>,
    authors: Vec<u8>,
    created: Vec<u8>,
    expires: Vec<u8>,
    offsets: Vec<u8>,
    match_ids: Vec<u8>,
    total: u64,
}

impl Packed {
    fn with_capacity(n: usize) -> Packed {
        let mut p = Packed {
            codes: Vec::with_capacity(n),
            ids: Vec::with_capacity(n * 32),
            kinds: Vec::with_capacity(n),
            authors: Vec::with_capacity(n * 32),
            created: Vec::with_capacity(n * 8),
            expires: Vec::with_capacity(n * 8),
            offsets: Vec::with_capacity((n + 1) * 8),
            match_ids: Vec::new(),
            total: 0,
        };
        p.offsets.extend_from_slice(&0u64.to_ne_bytes());
        p
    }

    fn push(&mut self, item: &ingest::Item<'_>) {
        self.codes.push(item.reason.code());
        self.ids.extend_from_slice(&item.id.unwrap_or([0u8; 32]));
        match &item.env {
            Some(env) => {
                let kind = KINDS.iter().position(|k| *k == env.kind);
                self.kinds
                    .push(kind.and_then(|k| u8::try_from(k).ok()).unwrap_or(NO_KIND));
                self.authors.extend_from_slice(env.author);
                self.created.extend_from_slice(&env.created.to_ne_bytes());
                self.expires.extend_from_slice(&env.expires.to_ne_bytes());
            }
            None => {
                self.kinds.push(NO_KIND);
                self.authors.extend_from_slice(&[0u8; 32]);
                self.created.extend_from_slice(&0u64.to_ne_bytes());
                self.expires.extend_from_slice(&0u64.to_ne_bytes());
            }
        }
        for id in &item.matched {
            self.match_ids.extend_from_slice(&id.to_ne_bytes());
        }
        self.total += item.matched.len() as u64;
        self.offsets.extend_from_slice(&self.total.to_ne_bytes());
    }
}
