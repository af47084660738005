//! Python objects <-> `Value`: the canonical encoder's input, the strict decoder's output built
//! straight into Python objects, and the envelope functions over them.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::{bytes_like, data_arg, env_err, py_err};
use crate::codec::{self, Head, Reader, Value, MAX_DEPTH};
use crate::envelope;
use crate::reason::Reason;

fn too_deep() -> PyErr {
    env_err(Reason::TooDeep, "nesting deeper than 16")
}

/// A list's or a tuple's items at nesting `depth` as one array.
fn array_of<'py>(
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(to_value(&item, depth + 1)?);
    }
    Ok(Value::Array(out))
}

/// Converts a Python object at nesting `depth` (outermost = 1) into a `Value`.
pub(super) fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
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
        return array_of(list.iter(), depth);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return array_of(tuple.iter(), depth);
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

/// Canonical encoding of a Python value.
#[pyfunction]
pub(super) fn encode<'py>(
    py: Python<'py>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let v = to_value(value, 1)?;
    let bytes = codec::encode(&v).map_err(py_err)?;
    Ok(PyBytes::new(py, &bytes))
}

/// Strict canonical decode.
/// Decodes one value at `depth` straight into Python objects (no intermediate `Value`); the
/// reader enforces every rule, in the same order as `codec::decode`.
pub(super) fn read_py<'py>(
    py: Python<'py>,
    r: &mut Reader<'_>,
    depth: usize,
) -> PyResult<Bound<'py, PyAny>> {
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

/// Strict canonical decode.
#[pyfunction]
pub(super) fn decode<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
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
pub(super) fn signed_bytes<'py>(
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
pub(super) fn encode_envelope<'py>(
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
pub(super) fn decode_envelope<'py>(
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
