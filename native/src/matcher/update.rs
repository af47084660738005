//! Filing subscriptions in the index and taking them out: each costs what it changes, never a
//! rebuild (the tokens' counts choose the list, emptied lists are dropped, removed records are
//! reclaimed once they are half of their list).

use super::layout::{pack, records, unpack, Posting, RECORD, WORDS_PER_BOUND};
use super::staged::Item;
use super::{
    bound_class, near_key, op_kind, Key, ListKey, MatchIndex, Slot, Staged, Subscription, BY_EQUAL,
    BY_HANDLE, BY_KEY, BY_TAG, FREE, NONE, PLAIN,
};

impl MatchIndex {
    /// Adds subscriptions (ids may repeat, as in `new`); all or nothing: on error (the first
    /// subscription without a token or with a value that cannot be encoded) nothing changes.
    pub fn add(&mut self, subs: Vec<Subscription>) -> Result<(), String> {
        let mut staged = Staged::default();
        for s in &subs {
            staged.push(s)?;
        }
        self.add_staged(&staged)
    }

    /// Adds checked subscriptions (see `add`); refuses only a batch that would overflow the index.
    pub fn add_staged(&mut self, staged: &Staged) -> Result<(), String> {
        if self.len() + staged.len() >= NONE as usize
            || self.slots.len() + staged.len() >= NONE as usize
        {
            return Err("too many subscriptions".to_owned());
        }
        // Count the whole batch first, so that a batch files under its rarest tokens as a build does.
        for item in staged.items() {
            for t in &item.tokens {
                let sym = self.strings.intern(t) as usize;
                if sym >= self.token_subs.len() {
                    self.token_subs.resize(sym + 1, 0);
                }
                self.token_subs[sym] += 1;
            }
        }
        let mut words = Vec::new();
        for item in staged.items() {
            words.clear();
            self.intern(&item, &mut words);
            let n = self.strings.capacity();
            self.token_subs.resize(n.max(self.token_subs.len()), 0);
            self.token_near.resize(n.max(self.token_near.len()), 0);
            self.file(item.id, &words);
        }
        Ok(())
    }

    /// Removes every subscription with one of these ids; returns how many were removed.
    pub fn remove(&mut self, ids: &[i64]) -> usize {
        let mut removed = 0;
        for id in ids {
            let Some(mut slot) = self.ids.remove(id) else {
                continue;
            };
            while slot != NONE {
                let next = self.slots[slot as usize].next;
                self.unfile(slot);
                removed += 1;
                slot = next;
            }
        }
        removed
    }

    /// Packs one staged subscription into `w`, its tokens already interned (by `add_staged`).
    fn intern(&mut self, s: &Item<'_>, w: &mut Vec<u32>) {
        let counts = [
            s.tokens.len(),
            s.tags.len(),
            s.handles.len(),
            s.equals.len(),
            s.bounds.len(),
        ];
        pack(counts, s.near.is_some(), w);
        let st = &mut self.strings;
        w.extend(s.tokens.iter().map(|t| st.get(t).unwrap_or(NONE)));
        for names in [&s.tags, &s.handles] {
            w.extend(names.iter().map(|n| st.intern(n)));
        }
        for (k, v) in &s.equals {
            w.push(st.intern(k));
            w.push(st.intern(v));
        }
        if let Some(p) = s.near {
            w.push(st.intern(p));
        }
        for &(key, op_kind, value, cur) in &s.bounds {
            let v = value as u64;
            w.extend([
                st.intern(key),
                st.intern(cur),
                op_kind,
                v as u32,
                (v >> 32) as u32,
            ]);
        }
    }

    fn list_for(&mut self, key: ListKey) -> u32 {
        let found = match &key {
            ListKey::Keyed(k) => self.keyed.get(k).copied(),
            ListKey::Near(k) => self.near.get(k).copied(),
        };
        if let Some(list) = found {
            return list;
        }
        let list = match self.free_lists.pop() {
            Some(l) => l,
            None => {
                self.lists.push(Posting::default());
                self.list_keys.push(ListKey::Keyed(Key {
                    token: 0,
                    tag: PLAIN,
                    a: 0,
                    b: 0,
                }));
                (self.lists.len() - 1) as u32
            }
        };
        match &key {
            ListKey::Keyed(k) => {
                self.keyed.insert(*k, list);
            }
            ListKey::Near(k) => {
                self.near.insert(k.clone(), list);
                let token = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
                self.token_near[token as usize] += 1;
                self.longest_near = self.longest_near.max(k.len() - 4);
            }
        }
        self.list_keys[list as usize] = key;
        list
    }

    fn file(&mut self, id: i64, data: &[u32]) {
        let p = unpack(data);
        let counts = &self.token_subs;
        let token = p
            .tokens
            .iter()
            .copied()
            .min_by_key(|&t| counts[t as usize])
            .unwrap_or(0);
        let keyed = |tag, a, b| ListKey::Keyed(Key { token, tag, a, b });
        let key = if let [k, v, ..] = p.equals {
            keyed(BY_EQUAL, *k, *v)
        } else if let Some(n) = p.near {
            ListKey::Near(near_key(token, self.strings.bytes(n)).into())
        } else if let Some(&h) = p.handles.first() {
            keyed(BY_HANDLE, h, 0)
        } else if let Some(&t) = p.tags.first() {
            keyed(BY_TAG, t, 0)
        } else if let [k, cur, op_kind_word, ..] = p.bounds {
            keyed(BY_KEY, *k, bound_class(op_kind(*op_kind_word).1, *cur))
        } else {
            keyed(PLAIN, 0, 0)
        };
        let list = self.list_for(key);
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(FREE);
                (self.slots.len() - 1) as u32
            }
        };
        let posting = &mut self.lists[list as usize];
        let offset = posting.words.len() as u32;
        let raw = id as u64;
        posting
            .words
            .extend([raw as u32, (raw >> 32) as u32, slot, data.len() as u32]);
        posting.words.extend_from_slice(data);
        posting.live += 1;
        let next = self.ids.insert(id, slot).unwrap_or(NONE);
        self.slots[slot as usize] = Slot { list, offset, next };
    }

    fn unfile(&mut self, slot: u32) {
        let s = std::mem::replace(&mut self.slots[slot as usize], FREE);
        self.free_slots.push(slot);
        let posting = &mut self.lists[s.list as usize];
        let at = s.offset as usize;
        let n = posting.words[at + 3] as usize;
        posting.words[at + 2] = NONE;
        posting.live -= 1;
        posting.dead += RECORD + n;
        // Release what the record names before its words can be reused.
        let p = unpack(&posting.words[at + RECORD..at + RECORD + n]);
        for &t in p.tokens {
            self.token_subs[t as usize] -= 1;
        }
        let st = &mut self.strings;
        for &sym in p
            .tokens
            .iter()
            .chain(p.tags)
            .chain(p.handles)
            .chain(p.equals)
        {
            st.release(sym);
        }
        if let Some(n) = p.near {
            st.release(n);
        }
        for b in p.bounds.chunks_exact(WORDS_PER_BOUND) {
            st.release(b[0]);
            st.release(b[1]);
        }
        if posting.live == 0 {
            *posting = Posting::default();
            match &self.list_keys[s.list as usize] {
                ListKey::Keyed(k) => {
                    self.keyed.remove(k);
                }
                ListKey::Near(k) => {
                    self.near.remove(k);
                    let token = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
                    self.token_near[token as usize] -= 1;
                }
            }
            self.free_lists.push(s.list);
        } else if 2 * posting.dead > posting.words.len() {
            self.compact(s.list);
        }
    }

    /// Drops a list's removed records (amortised: it waits until they are half its words).
    fn compact(&mut self, list: u32) {
        let posting = &mut self.lists[list as usize];
        let old = std::mem::take(&mut posting.words);
        let mut words = Vec::with_capacity(old.len() - posting.dead);
        for (offset, _, slot, data) in records(&old) {
            if slot == NONE {
                continue;
            }
            let start = words.len();
            words.extend_from_slice(&old[offset..offset + RECORD + data.len()]);
            self.slots[slot as usize].offset = start as u32;
        }
        posting.words = words;
        posting.dead = 0;
    }
}
