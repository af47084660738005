//! The one pyo3 binding module: Python objects <-> `Value`, `reason::Error` -> `EnvelopeError`,
//! `intent::SyntaxError` -> `IntentSyntaxError`, and the GIL released around the signature and
//! matching work; `py/verifier.rs` holds the Verifier (verify, ingest, remember). Everything else
//! is plain Rust.

use std::borrow::Cow;
use std::sync::{LazyLock, Mutex, PoisonError, RwLock};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

use crate::codec::{self, Head, Reader, Value, MAX_DEPTH, MAX_ENVELOPE_BYTES};
use crate::ed25519;
use crate::envelope::{self, KINDS, MAX_CLOCK_SKEW_MS, PROTOCOL_VERSION, SIGNING_PREFIX};
use crate::intent::{self, Constraint};
use crate::keycache::{self, KeyCache};
use crate::matcher;
use crate::reason::{Error, Reason};

mod verifier;

use verifier::{IngestResult, Verifier, NO_KIND};

pyo3::import_exception!(node.errors, EnvelopeError);
pyo3::import_exception!(node.errors, IntentSyntaxError);

/// The one conversion point from the Rust error to the Python exception.
fn py_err(e: Error) -> PyErr {
    EnvelopeError::new_err((e.reason.code(), e.detail()))
}

fn env_err(reason: Reason, what: &'static str) -> PyErr {
    py_err(Error::new(reason, what))
}

// -- Python -> Value ---------------------------------------------------------------------------

/// The bytes of a bytes / bytearray / memoryview (borrowed for bytes). Other types: `None`.
fn bytes_like<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Option<Cow<'a, [u8]>>> {
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
fn bytes_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
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

fn too_deep() -> PyErr {
    env_err(Reason::TooDeep, "nesting deeper than 16")
}

/// Converts a Python object at nesting `depth` (outermost = 1) into a `Value`.
fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    // bool before int: bool is a subclass of int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(Value::int(v));
        }
        if let Ok(v) = obj.extract::<u64>() {
            return Ok(Value::UInt(v));
        }
        return Err(env_err(
            Reason::WrongType,
            "integer outside -2**63 .. 2**64-1",
        ));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Err(env_err(Reason::FloatForbidden, "float"));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return match s.to_str() {
            Ok(s) => Ok(Value::Str(s.to_owned())),
            Err(_) => Err(env_err(Reason::WrongType, "text is not encodable as UTF-8")),
        };
    }
    if let Some(b) = bytes_like(obj)? {
        return Ok(Value::Bin(b.into_owned()));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let mut items = Vec::with_capacity(list.len());
        for item in list.iter() {
            items.push(to_value(&item, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let mut items = Vec::with_capacity(tuple.len());
        for item in tuple.iter() {
            items.push(to_value(&item, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        // Keys first (all must be str), then values in canonical key order.
        let mut entries: Vec<(String, Bound<'_, PyAny>)> = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            let Ok(ks) = k.cast::<PyString>() else {
                return Err(env_err(Reason::WrongType, "map key is not str"));
            };
            let Ok(ks) = ks.to_str() else {
                return Err(env_err(
                    Reason::WrongType,
                    "map key is not encodable as UTF-8",
                ));
            };
            entries.push((ks.to_owned(), v));
        }
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let v = to_value(&v, depth + 1)?;
            out.push((k, v));
        }
        return Ok(Value::Map(out));
    }
    Err(env_err(Reason::WrongType, "type not encodable"))
}

// -- module functions --------------------------------------------------------------------------

/// Canonical encoding of a Python value.
#[pyfunction]
fn encode<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let v = to_value(value, 1)?;
    let bytes = codec::encode(&v).map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes))
}

/// Strict canonical decode.
/// Decodes one value at `depth` straight into Python objects (no intermediate `Value`); the
/// reader enforces every rule, in the same order as `codec::decode`.
fn read_py<'py>(py: Python<'py>, r: &mut Reader<'_>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    let head = r.head(depth).map_err(py_err)?;
    Ok(match head {
        Head::Nil => py.None().into_bound(py),
        Head::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Head::UInt(u) => u.into_pyobject(py)?.into_any(),
        Head::NInt(i) => i.into_pyobject(py)?.into_any(),
        Head::Str(s) => PyString::new(py, s).into_any(),
        Head::Bin(b) => PyBytes::new(py, b).into_any(),
        Head::Array(n) => {
            let list = PyList::empty(py);
            for _ in 0..n {
                list.append(read_py(py, r, depth + 1)?)?;
            }
            list.into_any()
        }
        Head::Map(n) => {
            let dict = PyDict::new(py);
            let mut prev = None;
            for _ in 0..n {
                let key = r.key(depth + 1, prev).map_err(py_err)?;
                prev = Some(key);
                let value = read_py(py, r, depth + 1)?;
                dict.set_item(PyString::new(py, key), value)?;
            }
            dict.into_any()
        }
    })
}

/// A bytes-like argument (borrowed when it is bytes), or TypeError.
fn data_arg<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    bytes_like(obj)?
        .ok_or_else(|| PyTypeError::new_err("data must be bytes, bytearray or memoryview"))
}

/// Strict canonical decode.
#[pyfunction]
fn decode<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let data = data_arg(data)?;
    codec::check_size(&data).map_err(py_err)?;
    let mut r = Reader::new(&data);
    let value = read_py(py, &mut r, 1)?;
    r.finish().map_err(py_err)?;
    Ok(value)
}

struct Fields {
    author: Value,
    body: Value,
    created: Value,
    expires: Value,
    kind: Value,
}

fn fields(
    author: &Bound<'_, PyAny>,
    body: &Bound<'_, PyAny>,
    created: &Bound<'_, PyAny>,
    expires: &Bound<'_, PyAny>,
    kind: &Bound<'_, PyAny>,
) -> PyResult<Fields> {
    // In canonical key order, as a decoder would meet them.
    Ok(Fields {
        author: to_value(author, 2)?,
        body: to_value(body, 2)?,
        created: to_value(created, 2)?,
        expires: to_value(expires, 2)?,
        kind: to_value(kind, 2)?,
    })
}

#[pyfunction]
fn signed_bytes<'py>(
    py: Python<'py>,
    author: &Bound<'py, PyAny>,
    body: &Bound<'py, PyAny>,
    created: &Bound<'py, PyAny>,
    expires: &Bound<'py, PyAny>,
    kind: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let f = fields(author, body, created, expires, kind)?;
    let bytes =
        envelope::signed_bytes(f.author, f.body, f.created, f.expires, f.kind).map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes))
}

#[pyfunction]
fn encode_envelope<'py>(
    py: Python<'py>,
    author: &Bound<'py, PyAny>,
    body: &Bound<'py, PyAny>,
    created: &Bound<'py, PyAny>,
    expires: &Bound<'py, PyAny>,
    kind: &Bound<'py, PyAny>,
    sig: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let f = fields(author, body, created, expires, kind)?;
    let sig = to_value(sig, 2)?;
    let bytes = envelope::encode_envelope(f.author, f.body, f.created, f.expires, f.kind, sig)
        .map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes))
}

#[pyfunction]
fn decode_envelope<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let data = data_arg(data)?;
    let env = envelope::parse(&data).map_err(py_err)?;
    // The body is at depth 2 inside the envelope (parse has validated it already).
    let mut body_reader = Reader::new(env.body_raw);
    let body = read_py(py, &mut body_reader, 2)?;
    let items: [Bound<'py, PyAny>; 9] = [
        env.v.into_pyobject(py)?.into_any(),
        PyString::new(py, env.kind).into_any(),
        PyBytes::new(py, env.author).into_any(),
        env.created.into_pyobject(py)?.into_any(),
        env.expires.into_pyobject(py)?.into_any(),
        body,
        PyBytes::new(py, env.sig).into_any(),
        PyBytes::new(py, &env.signed_bytes()).into_any(),
        PyBytes::new(py, &env.id()).into_any(),
    ];
    PyTuple::new(py, items)
}

/// Copies a sequence of bytes-like objects into one buffer. Items over the size cap are not
/// copied (they are refused as too_large whatever they hold): they become `None`.
struct Batch {
    buf: Vec<u8>,
    spans: Vec<Option<(usize, usize)>>,
}

impl Batch {
    fn collect(seq: &Bound<'_, PyAny>, what: &str) -> PyResult<Batch> {
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

    fn items(&self) -> Vec<&[u8]> {
        // An oversized item stands in as an empty slice and is fixed up after verification.
        self.spans
            .iter()
            .map(|s| s.and_then(|(a, b)| self.buf.get(a..b)).unwrap_or(&[]))
            .collect()
    }
}

/// Decoded keys for the raw `ed25519_*` functions (a node verifies the same keys again and
/// again; decoding one costs a tenth of a verification). Caching changes no verdict.
static RAW_KEYS: LazyLock<Mutex<KeyCache>> = LazyLock::new(|| Mutex::new(KeyCache::new(1024)));

fn raw_decoder(key: &[u8; 32]) -> Option<curve25519_dalek::edwards::EdwardsPoint> {
    keycache::decode_through(&RAW_KEYS, key)
}

#[pyfunction]
fn ed25519_verify(
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
fn ed25519_verify_batch<'py>(
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
fn ed25519_batch_check(py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<bool> {
    let items = triples(items)?;
    Ok(py.detach(|| ed25519::batch_check_with(&items, &mut raw_decoder)))
}

// -- the subscription matcher ---------------------------------------------------------------------

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

// -- intents (PROTOCOL.md section 5) -------------------------------------------------------------

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
fn parse_intent<'py>(py: Python<'py>, text: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
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
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(signed_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(encode_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(decode_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_verify, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_batch_check, m)?)?;
    m.add_function(wrap_pyfunction!(parse_intent, m)?)?;
    m.add("MATCH_OK", matcher::FLAG_OK)?;
    m.add("MATCH_MALFORMED", matcher::FLAG_MALFORMED)?;
    m.add("MATCH_NOT_INTENT", matcher::FLAG_NOT_INTENT)?;
    m.add("MATCH_OPS", PyTuple::new(py, matcher::OPS)?)?;
    m.add("MATCH_KINDS", PyTuple::new(py, matcher::KINDS)?)?;
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
