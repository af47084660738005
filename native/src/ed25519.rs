//! Ed25519 verification with the ZIP-215 rules (PROTOCOL.md section 2, "Verification").
//!
//! - `A` and `R` are decoded with `CompressedEdwardsY::decompress`, which accepts non-canonical
//!   encodings (y >= p, and x = 0 with the sign bit set), exactly as ZIP-215 asks;
//! - `S` must be canonical (< l);
//! - `k = SHA-512(R || A || M) mod l` over the bytes as received;
//! - valid iff `[8]([S]B - R - [k]A)` is the identity.
//!
//! The batch check is `[8]([sum z_i S_i]B - sum [z_i]R_i - sum [z_i k_i]A_i) == identity` with
//! random 128-bit `z_i` (terms with the same key bytes coalesced), and when it fails the batch is
//! bisected so that exactly the items whose single check fails are reported.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

/// Below this many items a failing (sub-)batch is resolved by single checks.
const BISECT_LEAF: usize = 4;

/// Decodes a point encoding the ZIP-215 way (non-canonical accepted). `None`: no such point.
#[inline]
pub fn decompress(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*bytes).decompress()
}

/// A signature ready for the group equation: decoded `A` and `R`, canonical `S`, challenge `k`.
#[derive(Clone, Copy, Debug)]
pub struct Prepared {
    pub key: [u8; 32],
    pub a: EdwardsPoint,
    pub r: EdwardsPoint,
    pub s: Scalar,
    pub k: Scalar,
}

/// `k = SHA-512(R || A || M) mod l`, with the message given as pieces.
#[inline]
pub fn challenge(r_bytes: &[u8], a_bytes: &[u8], msg_parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(a_bytes);
    for part in msg_parts {
        h.update(part);
    }
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Splits a signature into its `R` bytes and `S` bytes.
#[inline]
fn split_sig(sig: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    (r, s)
}

/// Prepares a signature for an already decoded key. `None` when `R` has no point or `S >= l`
/// (the signature is then invalid whatever else holds).
pub fn prepare(
    a: &EdwardsPoint,
    a_bytes: &[u8; 32],
    msg_parts: &[&[u8]],
    sig: &[u8; 64],
) -> Option<Prepared> {
    let (r_bytes, s_bytes) = split_sig(sig);
    let s: Option<Scalar> = Scalar::from_canonical_bytes(s_bytes).into();
    let s = s?;
    let r = decompress(&r_bytes)?;
    let k = challenge(&r_bytes, a_bytes, msg_parts);
    Some(Prepared {
        key: *a_bytes,
        a: *a,
        r,
        s,
        k,
    })
}

/// The single cofactored check of a prepared signature.
#[inline]
pub fn check_one(p: &Prepared) -> bool {
    // [s]B - [k]A
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &(-p.a), &p.s);
    (sb_minus_ka - p.r).mul_by_cofactor().is_identity()
}

/// `check_one` with a fixed-base table of `A` (`crate::hotkeys`): the same `[s]B - [k]A` from
/// ~64 additions each instead of ~253 doublings, so the same verdict.
#[inline]
pub fn check_one_with(p: &Prepared, a_table: &EdwardsBasepointTable) -> bool {
    let sb_minus_ka = EdwardsPoint::mul_base(&p.s) - a_table * &p.k;
    (sb_minus_ka - p.r).mul_by_cofactor().is_identity()
}

/// Single ZIP-215 verification of raw bytes. Wrong lengths -> false.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    verify_with(public_key, message, signature, &mut decompress)
}

/// Random 128-bit coefficients, one `getrandom` call for the whole batch. `None` if the OS RNG
/// fails (callers then fall back to single checks, which decide the same thing).
pub fn random_coefficients(n: usize) -> Option<Vec<Scalar>> {
    let len = n.checked_mul(16)?;
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).ok()?;
    Some(
        buf.chunks_exact(16)
            .map(|c| {
                let mut b = [0u8; 16];
                b.copy_from_slice(c);
                Scalar::from(u128::from_le_bytes(b))
            })
            .collect(),
    )
}

/// The combined batch sum `[sum z_i S_i]B - sum [z_i]R_i - sum [z_i k_i]A_i` over `items[i]` for
/// `i` in `idx`, with coefficients `z[i]` (the equation holds iff `[8]` of it is the identity).
/// Terms with equal key bytes are coalesced into one. The sum is additive over disjoint subsets.
fn batch_sum(items: &[Prepared], z: &[Scalar], idx: &[usize]) -> Option<EdwardsPoint> {
    let n = idx.len();
    let mut scalars: Vec<Scalar> = Vec::with_capacity(2 * n + 1);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(2 * n + 1);
    // The basepoint term first; its coefficient is accumulated below.
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    let mut b_coeff = Scalar::ZERO;
    let mut key_terms: HashMap<[u8; 32], usize> = HashMap::with_capacity(n);
    for &i in idx {
        let (p, zi) = (items.get(i)?, z.get(i)?);
        b_coeff += zi * p.s;
        // - [z_i] R_i
        scalars.push(-zi);
        points.push(p.r);
        // - [z_i k_i] A_i, coalesced by key bytes
        let zk = -(zi * p.k);
        match key_terms.get(&p.key) {
            Some(&slot) => *scalars.get_mut(slot)? += zk,
            None => {
                key_terms.insert(p.key, scalars.len());
                scalars.push(zk);
                points.push(p.a);
            }
        }
    }
    *scalars.first_mut()? = b_coeff;
    Some(EdwardsPoint::vartime_multiscalar_mul(
        scalars.iter(),
        points.iter(),
    ))
}

/// Whether a batch sum satisfies the cofactored equation.
#[inline]
fn holds(sum: &EdwardsPoint) -> bool {
    sum.mul_by_cofactor().is_identity()
}

/// The combined equation over a subset. Empty -> true.
fn batch_equation(items: &[Prepared], z: &[Scalar], idx: &[usize]) -> bool {
    idx.is_empty() || batch_sum(items, z, idx).is_some_and(|s| holds(&s))
}

/// Single checks of `items[i]` for `i` in `idx`, into `ok`.
fn singles(items: &[Prepared], idx: &[usize], ok: &mut [bool]) {
    for &i in idx {
        if let (Some(p), Some(slot)) = (items.get(i), ok.get_mut(i)) {
            *slot = check_one(p);
        }
    }
}

/// Takes `n` terms from the bisection budget; false when it is spent.
fn spend(budget: &mut usize, n: usize) -> bool {
    match budget.checked_sub(n) {
        Some(left) => {
            *budget = left;
            true
        }
        None => false,
    }
}

/// Marks in `ok` the items of `idx` whose signature fails, given the batch sum `sum` over `idx`
/// (which fails the equation or not). The coefficients are the same at every level and the sum
/// is additive, so only the left half of a failing node is computed: right = node - left.
///
/// `budget` bounds the items put through sub-batch sums (1.5n for a batch of n: one bad item
/// needs about n, two about 1.5n). Once it is spent, what is left is checked singly, so a batch
/// full of bad signatures costs under twice the single checks rather than n log n terms.
fn bisect(
    items: &[Prepared],
    z: &[Scalar],
    idx: &[usize],
    sum: &EdwardsPoint,
    ok: &mut [bool],
    budget: &mut usize,
) {
    if holds(sum) {
        return;
    }
    if idx.len() < BISECT_LEAF || !spend(budget, idx.len() / 2) {
        singles(items, idx, ok);
        return;
    }
    let (left, right) = idx.split_at(idx.len() / 2);
    let Some(left_sum) = batch_sum(items, z, left) else {
        singles(items, idx, ok);
        return;
    };
    let right_sum = sum - left_sum;
    bisect(items, z, left, &left_sum, ok, budget);
    bisect(items, z, right, &right_sum, ok, budget);
}

/// Verifies prepared signatures: one combined equation, bisected on failure. `result[i]` is the
/// verdict on `items[i]` and equals `check_one(&items[i])` (up to the 2^-128 batch error).
pub fn verify_prepared_batch(items: &[Prepared]) -> Vec<bool> {
    let mut ok = vec![true; items.len()];
    let n = items.len();
    if n == 0 {
        return ok;
    }
    let all: Vec<usize> = (0..n).collect();
    if n == 1 {
        singles(items, &all, &mut ok);
        return ok;
    }
    let sum = random_coefficients(n).and_then(|z| Some((batch_sum(items, &z, &all)?, z)));
    match sum {
        Some((sum, z)) => {
            let mut budget = n.saturating_add(n / 2);
            bisect(items, &z, &all, &sum, &mut ok, &mut budget);
        }
        None => singles(items, &all, &mut ok),
    }
    ok
}

/// Only the combined equation (no fallback) over prepared items. Empty -> true.
pub fn prepared_batch_check(items: &[Prepared]) -> bool {
    if items.is_empty() {
        return true;
    }
    match random_coefficients(items.len()) {
        Some(z) => {
            let idx: Vec<usize> = (0..items.len()).collect();
            batch_equation(items, &z, &idx)
        }
        // No randomness: the AND of the single checks is what the equation decides.
        None => items.iter().all(check_one),
    }
}

/// Prepares raw `(public_key, message, signature)`; `None` for a wrong length, an undecodable
/// point or `S >= l`. `decode_key` decodes the key bytes (directly, or through a cache).
pub fn prepare_raw_with(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
    decode_key: &mut impl FnMut(&[u8; 32]) -> Option<EdwardsPoint>,
) -> Option<Prepared> {
    let pk = <&[u8; 32]>::try_from(public_key).ok()?;
    let sig = <&[u8; 64]>::try_from(signature).ok()?;
    let a = decode_key(pk)?;
    prepare(&a, pk, &[message], sig)
}

/// `prepare_raw_with` decoding the key directly.
pub fn prepare_raw(public_key: &[u8], message: &[u8], signature: &[u8]) -> Option<Prepared> {
    prepare_raw_with(public_key, message, signature, &mut decompress)
}

/// Single verification with a caller-supplied key decoder (e.g. a cache).
pub fn verify_with(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
    decode_key: &mut impl FnMut(&[u8; 32]) -> Option<EdwardsPoint>,
) -> bool {
    prepare_raw_with(public_key, message, signature, decode_key).is_some_and(|p| check_one(&p))
}

/// Batch verification of raw triples with bisection: `result[i] == verify(items[i])`.
pub fn verify_batch<M: AsRef<[u8]>>(items: &[(M, M, M)]) -> Vec<bool> {
    verify_batch_with(items, &mut decompress)
}

/// `verify_batch` with a caller-supplied key decoder.
pub fn verify_batch_with<M: AsRef<[u8]>>(
    items: &[(M, M, M)],
    decode_key: &mut impl FnMut(&[u8; 32]) -> Option<EdwardsPoint>,
) -> Vec<bool> {
    let mut out = vec![false; items.len()];
    let mut prepared = Vec::with_capacity(items.len());
    let mut where_ = Vec::with_capacity(items.len());
    for (i, (pk, msg, sig)) in items.iter().enumerate() {
        if let Some(p) = prepare_raw_with(pk.as_ref(), msg.as_ref(), sig.as_ref(), decode_key) {
            prepared.push(p);
            where_.push(i);
        }
    }
    for (ok, i) in verify_prepared_batch(&prepared).into_iter().zip(where_) {
        if let Some(slot) = out.get_mut(i) {
            *slot = ok;
        }
    }
    out
}

/// Only the combined batch equation over raw triples: false if any item has a wrong length, an
/// undecodable point or `S >= l`. Empty -> true.
pub fn batch_check<M: AsRef<[u8]>>(items: &[(M, M, M)]) -> bool {
    batch_check_with(items, &mut decompress)
}

/// `batch_check` with a caller-supplied key decoder.
pub fn batch_check_with<M: AsRef<[u8]>>(
    items: &[(M, M, M)],
    decode_key: &mut impl FnMut(&[u8; 32]) -> Option<EdwardsPoint>,
) -> bool {
    let mut prepared = Vec::with_capacity(items.len());
    for (pk, msg, sig) in items {
        match prepare_raw_with(pk.as_ref(), msg.as_ref(), sig.as_ref(), decode_key) {
            Some(p) => prepared.push(p),
            None => return false,
        }
    }
    prepared_batch_check(&prepared)
}
