//! Rough timings of the native core (not a test): `cargo run --release --example micro`.
use std::sync::Mutex;
use std::time::Instant;

use _native::codec::Value;
use _native::hotkeys::HotKeys;
use _native::{ed25519, envelope, keycache::KeyCache, verify};

fn best<F: FnMut() -> usize>(reps: usize, n: usize, mut f: F) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(f());
        b = b.min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    b
}

fn main() {
    let n = 256;
    let now = 1_700_000_000_000u64;
    let sks: Vec<ed25519_zebra::SigningKey> = (0..n)
        .map(|i| ed25519_zebra::SigningKey::from([i as u8 ^ 0x5a; 32]))
        .collect();
    let envs: Vec<Vec<u8>> = sks
        .iter()
        .enumerate()
        .map(|(i, sk)| {
            let author: [u8; 32] = sk.verification_key().into();
            let body = Value::Map(vec![
                ("amount".into(), Value::UInt(i as u64)),
                ("note".into(), Value::Str("hello".into())),
            ]);
            let f = |sig: Value| {
                envelope::encode_envelope(
                    Value::Bin(author.to_vec()),
                    body.clone(),
                    Value::UInt(now),
                    Value::UInt(now + 60_000),
                    Value::Str("offer".into()),
                    sig,
                )
            };
            let sb = envelope::signed_bytes(
                Value::Bin(author.to_vec()),
                body.clone(),
                Value::UInt(now),
                Value::UInt(now + 60_000),
                Value::Str("offer".into()),
            )
            .unwrap();
            let sig: [u8; 64] = sk.sign(&sb).into();
            f(Value::Bin(sig.to_vec())).unwrap()
        })
        .collect();
    let cache = Mutex::new(KeyCache::new(4096));
    let nowi = now as i64;
    println!(
        "parse+id       {:6.2} us",
        best(20, n, || envs
            .iter()
            .map(|e| envelope::parse(e).unwrap().id()[0] as usize)
            .sum())
    );
    println!(
        "verify_batch   {:6.2} us/sig",
        best(20, n, || verify::verify_batch(&cache, &envs, nowi).len())
    );
    let cold = Mutex::new(HotKeys::new(0, 1));
    println!(
        "verify_one     {:6.2} us/sig",
        best(5, n, || envs
            .iter()
            .map(|e| verify::verify_one(&cache, &cold, e, nowi).reason as usize)
            .sum())
    );
    let prepared: Vec<ed25519::Prepared> = envs
        .iter()
        .map(|e| {
            let env = envelope::parse(e).unwrap();
            let a = ed25519::decompress(env.author).unwrap();
            ed25519::prepare(&a, env.author, &env.signed_parts(), env.sig).unwrap()
        })
        .collect();
    println!(
        "prepare        {:6.2} us",
        best(20, n, || envs
            .iter()
            .map(|e| {
                let env = envelope::parse(e).unwrap();
                let a = ed25519::decompress(env.author).unwrap();
                ed25519::prepare(&a, env.author, &env.signed_parts(), env.sig).is_some() as usize
            })
            .sum())
    );
    println!(
        "batch equation {:6.2} us/sig",
        best(20, n, || ed25519::prepared_batch_check(&prepared) as usize)
    );
    for m in [16usize, 64, 128] {
        println!(
            "batch eq {m:4}  {:6.2} us/sig",
            best(20, m, || ed25519::prepared_batch_check(&prepared[..m])
                as usize)
        );
    }
    println!(
        "check_one      {:6.2} us",
        best(5, n, || prepared
            .iter()
            .filter(|p| ed25519::check_one(p))
            .count())
    );
}
