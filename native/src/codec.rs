//! Canonical MessagePack subset (PROTOCOL.md section 1): strict decoding and canonical encoding.
//!
//! Decoding is one left-to-right pass and the first problem met decides the reason, in the order
//! PROTOCOL.md gives. Nothing here trusts a length taken from the input: every read is a checked
//! slice of the remaining bytes, and no buffer is ever sized from a claimed count.
//!
//! `reader` holds the decoder (`Reader`: one item header at a time, with the canonical-form rules
//! of each type byte), `writer` the encoder (shortest forms, map keys sorted), `json` a value as the
//! JSON text Python's `json.dumps(sort_keys=True, ensure_ascii=False)` gives.

mod json;
mod reader;
mod writer;

pub use json::to_json;

pub use reader::Reader;
pub use writer::{
    encode, encode_into, write_array_header, write_bin, write_map_header, write_nint, write_str,
    write_uint,
};

use crate::reason::{Error, Reason, Result};

/// Nesting limit: the outermost value is at depth 1; a container at depth 16 may hold only scalars.
pub const MAX_DEPTH: usize = 16;
/// Size cap of an envelope (and of `decode`'s input).
pub const MAX_ENVELOPE_BYTES: usize = 65_536;

/// A canonical value. `NInt` always holds a negative number; `UInt` every non-negative one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Nil,
    Bool(bool),
    UInt(u64),
    NInt(i64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    /// Entries in any order; `encode` sorts them by the UTF-8 bytes of the key.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// An integer in canonical form (`UInt` if non-negative, else `NInt`).
    pub fn int(v: i64) -> Value {
        match u64::try_from(v) {
            Ok(u) => Value::UInt(u),
            Err(_) => Value::NInt(v),
        }
    }
}

/// One decoded item header. Containers carry their entry count; their children follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head<'a> {
    Nil,
    Bool(bool),
    UInt(u64),
    NInt(i64),
    Str(&'a str),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
}

/// The size cap: longer than MAX_ENVELOPE_BYTES -> too_large (checked before anything is read).
pub fn check_size(data: &[u8]) -> Result<()> {
    if data.len() > MAX_ENVELOPE_BYTES {
        Err(Error::new(
            Reason::TooLarge,
            "input longer than 65536 bytes",
        ))
    } else {
        Ok(())
    }
}

/// Strict canonical decode with the size cap (`too_large` first).
pub fn decode(data: &[u8]) -> Result<Value> {
    check_size(data)?;
    decode_uncapped(data)
}

/// Strict canonical decode without the size cap.
pub fn decode_uncapped(data: &[u8]) -> Result<Value> {
    let mut r = Reader::new(data);
    let v = r.value(1)?;
    r.finish()?;
    Ok(v)
}

/// Checks that `data` is one canonical value (size cap included) without building it.
pub fn validate(data: &[u8]) -> Result<()> {
    check_size(data)?;
    let mut r = Reader::new(data);
    r.skip_value(1)?;
    r.finish()
}
