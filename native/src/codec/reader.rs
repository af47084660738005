//! The strict decoder: a `Reader` over the input bytes reads one item header at a time, refusing
//! every non-canonical form at the byte where it starts, in PROTOCOL.md's order.

use super::{Head, Value, MAX_DEPTH};
use crate::reason::{Error, Reason, Result};

/// A strict reader over the input bytes.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

const TRUNCATED: &str = "unexpected end of input";

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(Error::at(Reason::Malformed, TRUNCATED, self.pos)),
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let slice = self
            .pos
            .checked_add(n)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or(Error::at(Reason::Malformed, TRUNCATED, self.pos))?;
        self.pos += n;
        Ok(slice)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    #[inline]
    fn u8(&mut self) -> Result<u8> {
        self.byte()
    }
    #[inline]
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array::<2>()?))
    }
    #[inline]
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }
    #[inline]
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array::<8>()?))
    }

    /// A length (`u32` on the wire) as `usize`.
    #[inline]
    fn len_of(&self, n: u32) -> Result<usize> {
        usize::try_from(n).map_err(|_| Error::at(Reason::Malformed, "length too large", self.pos))
    }

    fn text(&mut self, len: u32) -> Result<&'a str> {
        let at = self.pos;
        let n = self.len_of(len)?;
        let bytes = self.take(n)?;
        core::str::from_utf8(bytes)
            .map_err(|_| Error::at(Reason::Malformed, "invalid UTF-8 in text", at))
    }

    fn bytes(&mut self, len: u32) -> Result<&'a [u8]> {
        let n = self.len_of(len)?;
        self.take(n)
    }

    /// Reads one item header at nesting `depth` (outermost value = 1), in PROTOCOL.md's order:
    /// type byte (end, forbidden types, floats, container depth), then integer/length (end, shortest
    /// form), then text/bytes content (end, UTF-8).
    pub fn head(&mut self, depth: usize) -> Result<Head<'a>> {
        let start = self.pos;
        let t = self.byte()?;
        let non_canonical = |what| Err(Error::at(Reason::NonCanonical, what, start));
        let deep = depth > MAX_DEPTH;
        let too_deep = Err(Error::at(Reason::TooDeep, "nesting deeper than 16", start));
        match t {
            0x00..=0x7f => Ok(Head::UInt(u64::from(t))),
            0x80..=0x8f => {
                if deep {
                    return too_deep;
                }
                Ok(Head::Map(u32::from(t & 0x0f)))
            }
            0x90..=0x9f => {
                if deep {
                    return too_deep;
                }
                Ok(Head::Array(u32::from(t & 0x0f)))
            }
            0xa0..=0xbf => Ok(Head::Str(self.text(u32::from(t & 0x1f))?)),
            0xc0 => Ok(Head::Nil),
            0xc2 => Ok(Head::Bool(false)),
            0xc3 => Ok(Head::Bool(true)),
            0xc1 => Err(Error::at(
                Reason::Malformed,
                "reserved type byte 0xc1",
                start,
            )),
            0xc7..=0xc9 | 0xd4..=0xd8 => Err(Error::at(Reason::Malformed, "extension type", start)),
            0xca | 0xcb => Err(Error::at(Reason::FloatForbidden, "float", start)),
            0xc4 => {
                let n = self.u8()?;
                Ok(Head::Bin(self.bytes(u32::from(n))?))
            }
            0xc5 => {
                let n = self.u16()?;
                if n < 0x100 {
                    return non_canonical("bytes length not in shortest form");
                }
                Ok(Head::Bin(self.bytes(u32::from(n))?))
            }
            0xc6 => {
                let n = self.u32()?;
                if n < 0x1_0000 {
                    return non_canonical("bytes length not in shortest form");
                }
                Ok(Head::Bin(self.bytes(n)?))
            }
            0xcc => {
                let v = self.u8()?;
                if v < 0x80 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(u64::from(v)))
            }
            0xcd => {
                let v = self.u16()?;
                if v < 0x100 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(u64::from(v)))
            }
            0xce => {
                let v = self.u32()?;
                if v < 0x1_0000 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(u64::from(v)))
            }
            0xcf => {
                let v = self.u64()?;
                if v < 0x1_0000_0000 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::UInt(v))
            }
            0xd0 => {
                let v = i64::from(self.u8()? as i8);
                if v >= -32 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd1 => {
                let v = i64::from(self.u16()? as i16);
                if v >= -128 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd2 => {
                let v = i64::from(self.u32()? as i32);
                if v >= -32_768 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd3 => {
                let v = self.u64()? as i64;
                if v >= -2_147_483_648 {
                    return non_canonical("integer not in shortest form");
                }
                Ok(Head::NInt(v))
            }
            0xd9 => {
                let n = self.u8()?;
                if n < 32 {
                    return non_canonical("text length not in shortest form");
                }
                Ok(Head::Str(self.text(u32::from(n))?))
            }
            0xda => {
                let n = self.u16()?;
                if n < 0x100 {
                    return non_canonical("text length not in shortest form");
                }
                Ok(Head::Str(self.text(u32::from(n))?))
            }
            0xdb => {
                let n = self.u32()?;
                if n < 0x1_0000 {
                    return non_canonical("text length not in shortest form");
                }
                Ok(Head::Str(self.text(n)?))
            }
            0xdc | 0xde => {
                if deep {
                    return too_deep;
                }
                let n = self.u16()?;
                if n < 16 {
                    return non_canonical("container length not in shortest form");
                }
                Ok(if t == 0xdc {
                    Head::Array(u32::from(n))
                } else {
                    Head::Map(u32::from(n))
                })
            }
            0xdd | 0xdf => {
                if deep {
                    return too_deep;
                }
                let n = self.u32()?;
                if n < 0x1_0000 {
                    return non_canonical("container length not in shortest form");
                }
                Ok(if t == 0xdd {
                    Head::Array(n)
                } else {
                    Head::Map(n)
                })
            }
            0xe0..=0xff => Ok(Head::NInt(i64::from(t as i8))),
        }
    }

    /// Skips (validating) the children of an item whose header was just read at `depth`.
    pub fn skip_children(&mut self, head: Head<'a>, depth: usize) -> Result<()> {
        match head {
            Head::Array(n) => {
                for _ in 0..n {
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            Head::Map(n) => {
                let mut prev: Option<&'a str> = None;
                for _ in 0..n {
                    prev = Some(self.key(depth + 1, prev)?);
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Validates one whole value at `depth` without building it.
    pub fn skip_value(&mut self, depth: usize) -> Result<()> {
        let head = self.head(depth)?;
        self.skip_children(head, depth)
    }

    /// Reads a map key at `depth`: decoded as a value first (problems inside it come first), then
    /// not text -> non_canonical, then not greater than `prev` -> non_canonical.
    pub fn key(&mut self, depth: usize, prev: Option<&'a str>) -> Result<&'a str> {
        let start = self.pos;
        let head = self.head(depth)?;
        match head {
            Head::Str(k) => {
                if let Some(p) = prev {
                    if k.as_bytes() <= p.as_bytes() {
                        return Err(Error::at(
                            Reason::NonCanonical,
                            "map keys not in strictly ascending order",
                            start,
                        ));
                    }
                }
                Ok(k)
            }
            other => {
                self.skip_children(other, depth)?;
                Err(Error::at(
                    Reason::NonCanonical,
                    "map key is not text",
                    start,
                ))
            }
        }
    }

    /// Decodes one whole value at `depth` into a `Value`.
    pub fn value(&mut self, depth: usize) -> Result<Value> {
        let head = self.head(depth)?;
        self.build(head, depth)
    }

    /// Builds the `Value` of an item whose header was just read at `depth`.
    pub fn build(&mut self, head: Head<'a>, depth: usize) -> Result<Value> {
        Ok(match head {
            Head::Nil => Value::Nil,
            Head::Bool(b) => Value::Bool(b),
            Head::UInt(v) => Value::UInt(v),
            Head::NInt(v) => Value::NInt(v),
            Head::Str(s) => Value::Str(s.to_owned()),
            Head::Bin(b) => Value::Bin(b.to_vec()),
            Head::Array(n) => {
                // No capacity from the claimed count: grow as items actually decode.
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            Head::Map(n) => {
                let mut entries: Vec<(String, Value)> = Vec::new();
                let mut prev: Option<&'a str> = None;
                for _ in 0..n {
                    let k = self.key(depth + 1, prev)?;
                    prev = Some(k);
                    let v = self.value(depth + 1)?;
                    entries.push((k.to_owned(), v));
                }
                Value::Map(entries)
            }
        })
    }

    /// After the outermost value: any byte left -> trailing_bytes.
    pub fn finish(&self) -> Result<()> {
        if self.pos < self.data.len() {
            Err(Error::at(
                Reason::TrailingBytes,
                "bytes after the value",
                self.pos,
            ))
        } else {
            Ok(())
        }
    }
}
