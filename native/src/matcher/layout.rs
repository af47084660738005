//! How the index lays subscriptions out in words: one subscription's symbols packed behind a
//! header word, and a posting list's records back to back, read in order when matching.

pub(super) const WORDS_PER_BOUND: usize = 5; // key, currency, op | kind << 8, value low, value high

/// A subscription's symbols, packed: a header word (counts of 6 bits each, tokens, tags, handles,
/// equalities, bounds, then a near flag; bit 31 set: the five counts follow as words), then the
/// symbols in that order, equalities as (key, value) pairs, the near prefix, bounds of 5 words.
#[derive(Clone, Copy)]
pub(super) struct Packed<'a> {
    pub(super) tokens: &'a [u32],
    pub(super) tags: &'a [u32],
    pub(super) handles: &'a [u32],
    pub(super) equals: &'a [u32],
    pub(super) near: Option<u32>,
    pub(super) bounds: &'a [u32],
}

const SMALL: usize = 63;
const EXTENDED: u32 = 1 << 31;

pub(super) fn pack(counts: [usize; 5], near: bool, words: &mut Vec<u32>) {
    if counts.iter().all(|&c| c < SMALL) {
        let mut h = u32::from(near) << 30;
        for (i, &c) in counts.iter().enumerate() {
            h |= (c as u32) << (6 * i);
        }
        words.push(h);
    } else {
        words.push(EXTENDED | (u32::from(near) << 30));
        words.extend(counts.iter().map(|&c| c as u32));
    }
}

pub(super) fn unpack(data: &[u32]) -> Packed<'_> {
    let h = data.first().copied().unwrap_or(0);
    let (mut counts, mut at) = ([0usize; 5], 1);
    if h & EXTENDED != 0 {
        for (i, c) in counts.iter_mut().enumerate() {
            *c = data.get(1 + i).copied().unwrap_or(0) as usize;
        }
        at = 6;
    } else {
        for (i, c) in counts.iter_mut().enumerate() {
            *c = ((h >> (6 * i)) & 63) as usize;
        }
    }
    let mut take = |n: usize| {
        let s = data.get(at..at + n).unwrap_or(&[]);
        at += n;
        s
    };
    let tokens = take(counts[0]);
    let tags = take(counts[1]);
    let handles = take(counts[2]);
    let equals = take(2 * counts[3]);
    let near = if h & (1 << 30) != 0 {
        take(1).first().copied()
    } else {
        None
    };
    let bounds = take(WORDS_PER_BOUND * counts[4]);
    Packed {
        tokens,
        tags,
        handles,
        equals,
        near,
        bounds,
    }
}

// A posting list holds its subscriptions' records back to back, so matching reads them in order:
// [id low, id high, slot (NONE: removed), n, n words of packed symbols].
pub(super) const RECORD: usize = 4;

#[derive(Default)]
pub(super) struct Posting {
    pub(super) words: Vec<u32>,
    pub(super) live: u32,
    /// Words of removed records, reclaimed when they are half the list.
    pub(super) dead: usize,
}

/// The records of a posting list: (id, slot, packed symbols); removed ones included.
pub(super) fn records(words: &[u32]) -> impl Iterator<Item = (usize, i64, u32, &[u32])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let head = words.get(at..at + RECORD)?;
        let start = at + RECORD;
        let data = words.get(start..start + head[3] as usize)?;
        let offset = at;
        at = start + data.len();
        let id = (u64::from(head[0]) | (u64::from(head[1]) << 32)) as i64;
        Some((offset, id, head[2], data))
    })
}
