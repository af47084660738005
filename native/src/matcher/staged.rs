//! Subscriptions checked and flattened into one buffer before they enter the index: the binding
//! reads them from Python into it (with the GIL), the index takes them from it (without), and a
//! million of them cost one allocation instead of a dozen each, freed whole afterwards.

use super::Subscription;
use crate::codec;

/// Checked subscriptions, back to back: id, then length-prefixed tokens, tags, handles, equalities
/// (key, encoded value), near (flag + prefix), bounds (key, op | kind << 8, value, currency).
#[derive(Default)]
pub struct Staged {
    buf: Vec<u8>,
    len: usize,
}

/// One staged subscription, borrowed from the buffer.
pub(super) struct Item<'a> {
    pub id: i64,
    pub tokens: Vec<&'a [u8]>,
    pub tags: Vec<&'a [u8]>,
    pub handles: Vec<&'a [u8]>,
    pub equals: Vec<(&'a [u8], &'a [u8])>,
    pub near: Option<&'a [u8]>,
    pub bounds: Vec<(&'a [u8], u32, i64, &'a [u8])>,
}

impl Staged {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks and appends one subscription: it needs a token and encodable equality values.
    pub fn push(&mut self, s: &Subscription) -> Result<(), String> {
        if s.tokens.is_empty() {
            return Err(format!("subscription {} has no token", s.id));
        }
        let mut values = Vec::with_capacity(s.equals.len());
        for (k, v) in &s.equals {
            values.push(
                codec::encode(v).map_err(|e| {
                    format!("subscription {}: value of {k:?}: {}", s.id, e.detail())
                })?,
            );
        }
        let b = &mut self.buf;
        b.extend_from_slice(&s.id.to_le_bytes());
        for names in [&s.tokens, &s.tags, &s.handles] {
            put_len(b, names.len());
            for n in names.iter() {
                put_bytes(b, n.as_bytes());
            }
        }
        put_len(b, s.equals.len());
        for ((k, _), v) in s.equals.iter().zip(&values) {
            put_bytes(b, k.as_bytes());
            put_bytes(b, v);
        }
        match &s.near {
            Some(p) => {
                b.push(1);
                put_bytes(b, p.as_bytes());
            }
            None => b.push(0),
        }
        put_len(b, s.bounds.len());
        for bound in &s.bounds {
            put_bytes(b, bound.key.as_bytes());
            put_len(b, (bound.op as usize) | ((bound.kind as usize) << 8));
            b.extend_from_slice(&bound.value.to_le_bytes());
            put_bytes(b, bound.cur.as_bytes());
        }
        self.len += 1;
        Ok(())
    }

    pub(super) fn items(&self) -> impl Iterator<Item = Item<'_>> {
        let mut r = Reader {
            buf: &self.buf,
            at: 0,
        };
        std::iter::from_fn(move || r.item())
    }
}

fn put_len(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    put_len(b, bytes.len());
    b.extend_from_slice(bytes);
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn names(&mut self) -> Option<Vec<&'a [u8]>> {
        let n = self.u32()? as usize;
        (0..n).map(|_| self.bytes()).collect()
    }

    fn item(&mut self) -> Option<Item<'a>> {
        let id = self.i64()?;
        let tokens = self.names()?;
        let tags = self.names()?;
        let handles = self.names()?;
        let n = self.u32()? as usize;
        let equals = (0..n)
            .map(|_| Some((self.bytes()?, self.bytes()?)))
            .collect::<Option<_>>()?;
        let near = match self.take(1)?[0] {
            0 => None,
            _ => Some(self.bytes()?),
        };
        let n = self.u32()? as usize;
        let bounds = (0..n)
            .map(|_| Some((self.bytes()?, self.u32()?, self.i64()?, self.bytes()?)))
            .collect::<Option<_>>()?;
        Some(Item {
            id,
            tokens,
            tags,
            handles,
            equals,
            near,
            bounds,
        })
    }
}
