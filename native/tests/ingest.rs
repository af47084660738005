//! The one-pass ingest: duplicates skip verification, the intent body check, matching, threads,
//! the recent-id set, and no panic on hostile bytes.

mod common;

use std::sync::Mutex;

use _native::codec::Value;
use _native::ingest::{expected_body, ingest, RecentIds};
use _native::intent_body;
use _native::keycache::KeyCache;
use _native::matcher::{MatchIndex, Subscription};
use _native::reason::Reason;
use _native::verify::verify_batch;
use common::*;

const DAY: u64 = 86_400_000;

fn intent(sk: &ed25519_zebra::SigningKey, text: &str, created: u64) -> Vec<u8> {
    let body = expected_body(text, &["no-resale"]).expect("parses");
    envelope_with(sk, body, created, created + DAY, "intent")
}

fn codes(items: &[_native::ingest::Item<'_>]) -> Vec<Reason> {
    items.iter().map(|i| i.reason).collect()
}

fn run<'a>(
    recent: &Mutex<RecentIds>,
    batch: &[&'a [u8]],
    threads: usize,
    index: Option<&MatchIndex>,
) -> Vec<_native::ingest::Item<'a>> {
    let cache = Mutex::new(KeyCache::new(16));
    ingest(&cache, recent, batch, NOW, threads, index)
}

#[test]
fn duplicates_and_forgeries() {
    let sk = signer([21; 32]);
    let good = intent(&sk, "?flight to:JFK", NOW as u64);
    let mut forged = good.clone();
    let at = forged.len() - 10; // inside "sig" (the last entry is "v": 1)
    forged[at] ^= 1;
    let recent = Mutex::new(RecentIds::new(8));
    let out = run(&recent, &[&good, &good, &forged], 1, None);
    assert_eq!(
        codes(&out),
        [Reason::Ok, Reason::Duplicate, Reason::Duplicate]
    );
    let out = run(&recent, &[&forged, &forged, &good, &good], 1, None);
    assert_eq!(
        codes(&out),
        [
            Reason::BadSignature,
            Reason::BadSignature,
            Reason::Ok,
            Reason::Duplicate
        ]
    );
    let id = out[2].id.unwrap();
    recent.lock().unwrap().insert(id);
    assert_eq!(
        codes(&run(&recent, &[&forged], 1, None)),
        [Reason::Duplicate]
    );
}

#[test]
fn recent_ids_are_bounded_fifo() {
    let mut r = RecentIds::new(2);
    for i in 0..3u8 {
        r.insert([i; 32]);
    }
    r.insert([2; 32]);
    assert_eq!(r.len(), 2);
    assert!(!r.contains(&[0; 32]) && r.contains(&[1; 32]) && r.contains(&[2; 32]));
    let mut off = RecentIds::new(0);
    off.insert([1; 32]);
    assert!(off.is_empty());
}

#[test]
fn body_check_and_match() {
    let sk = signer([22; 32]);
    let sub = Subscription {
        id: 9,
        tokens: vec!["flight".into()],
        ..Default::default()
    };
    let index = MatchIndex::new(vec![sub]).unwrap();
    let good = intent(&sk, "?flight to:JFK", NOW as u64);
    let other = intent(&sk, "?taxi", NOW as u64);
    // a body whose tokens do not follow from its text
    let mut wrong = expected_body("?flight", &[]).unwrap();
    if let Value::Map(entries) = &mut wrong {
        entries[5].1 = Value::Array(vec![s("boat")]);
    }
    let wrong = envelope_with(&sk, wrong, NOW as u64, NOW as u64 + DAY, "intent");
    let offer = envelope_signed(&sk, 1);
    let recent = Mutex::new(RecentIds::new(0));
    let out = run(&recent, &[&good, &other, &wrong, &offer], 1, Some(&index));
    assert_eq!(
        codes(&out),
        [Reason::Ok, Reason::Ok, Reason::InvalidBody, Reason::Ok]
    );
    assert_eq!(out[0].matched, vec![9]);
    assert!(out[1].matched.is_empty() && out[3].matched.is_empty());
    let body = expected_body("?flight max:300USD", &["no-resale", "no-profiling"]).unwrap();
    assert_eq!(
        intent_body::check(&enc(&body)).and_then(|c| c.value()),
        Some(body)
    );
    let dup_terms = expected_body("?flight", &["no-resale", "no-resale"]).unwrap();
    assert_eq!(
        intent_body::check(&enc(&dup_terms)).and_then(|c| c.value()),
        None
    );
    let unknown = expected_body("?flight", &["sell-it"]).unwrap();
    assert_eq!(
        intent_body::check(&enc(&unknown)).and_then(|c| c.value()),
        None
    );
}

#[test]
fn threads_change_no_verdict() {
    let sks: Vec<_> = (0..4u8).map(|i| signer([i + 30; 32])).collect();
    let n = scale(600, 300);
    let mut items: Vec<Vec<u8>> = (0..n)
        .map(|i| intent(&sks[i % 4], "?flight", NOW as u64 - i as u64))
        .collect();
    let mut rng = Rng::new(7);
    for _ in 0..n / 20 {
        let i = rng.below(n);
        let at = items[i].len() - 10;
        items[i][at] ^= 1;
    }
    for _ in 0..n / 20 {
        let (i, j) = (rng.below(n), rng.below(n));
        items[i] = items[j].clone();
    }
    let batch: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
    let recent = Mutex::new(RecentIds::new(0));
    let one = run(&recent, &batch, 1, None);
    let four = run(&recent, &batch, 4, None);
    assert_eq!(codes(&one), codes(&four));
    let cache = Mutex::new(KeyCache::new(16));
    let plain = verify_batch(&cache, &batch, NOW);
    for (a, b) in one.iter().zip(&plain) {
        if a.reason != Reason::Duplicate {
            assert_eq!(a.reason, b.reason);
        }
        assert_eq!(a.id, b.id);
    }
    assert!(one.iter().any(|i| i.reason == Reason::BadSignature));
}

#[test]
fn hostile_bytes_never_panic() {
    let sk = signer([23; 32]);
    let good = intent(&sk, "?flight", NOW as u64);
    let mut rng = Rng::new(11);
    let recent = Mutex::new(RecentIds::new(4));
    let mut items = Vec::new();
    for _ in 0..scale(2000, 300) {
        let mut v = good.clone();
        match rng.below(3) {
            0 => {
                let i = rng.below(v.len());
                v[i] ^= 1u8 << rng.below(8);
            }
            1 => v.truncate(rng.below(v.len())),
            _ => {
                let k = rng.below(60);
                v = rng.vec(k);
            }
        }
        items.push(v);
    }
    let batch: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
    let out = run(&recent, &batch, 2, None);
    assert_eq!(out.len(), batch.len());
}
