//! The matcher's unit tests (fixed cases, damage, incremental updates).
use super::*;
use crate::{codec, envelope};

fn enc(v: &Value) -> Vec<u8> {
    codec::encode(v).unwrap()
}

fn s(x: &str) -> Value {
    Value::Str(x.to_owned())
}

fn map(entries: &[(&str, Value)]) -> Value {
    let mut m: Vec<(String, Value)> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    m.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Map(m)
}

fn body_value(tokens: &[&str], tags: &[&str], handles: &[&str], cons: &[(&str, Value)]) -> Value {
    let arr = |xs: &[&str]| Value::Array(xs.iter().map(|x| s(x)).collect());
    map(&[
        ("tokens", arr(tokens)),
        ("tags", arr(tags)),
        ("handles", arr(handles)),
        ("constraints", map(cons)),
        ("text", s("x")),
    ])
}

fn body(tokens: &[&str], tags: &[&str], handles: &[&str], cons: &[(&str, Value)]) -> Vec<u8> {
    enc(&body_value(tokens, tags, handles, cons))
}

fn sub(id: i64, tokens: &[&str]) -> Subscription {
    Subscription {
        id,
        tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
}

fn money(v: u64, cur: &str) -> Value {
    map(&[("money", Value::UInt(v)), ("cur", s(cur))])
}

fn bound(key: &str, op: Op, kind: Kind, value: i64, cur: &str) -> Bound {
    Bound {
        key: key.into(),
        op,
        kind,
        value,
        cur: cur.into(),
    }
}

fn run(index: &MatchIndex, b: &[u8]) -> Option<Vec<i64>> {
    let mut out = Vec::new();
    (index.match_body(b, &mut out) == FLAG_OK).then_some(out)
}

#[test]
fn tokens_tags_handles() {
    let mut a = sub(10, &["flight"]);
    a.tags = vec!["work".into()];
    let mut b = sub(7, &["flight", "hotel"]);
    b.handles = vec!["acme".into()];
    let index = MatchIndex::new(vec![a, b, sub(3, &["taxi"])]).unwrap();
    assert_eq!(
        run(&index, &body(&["flight"], &["work"], &[], &[])),
        Some(vec![10])
    );
    assert_eq!(run(&index, &body(&["flight"], &[], &[], &[])), Some(vec![]));
    assert_eq!(
        run(
            &index,
            &body(&["hotel", "flight"], &["work"], &["acme"], &[])
        ),
        Some(vec![7, 10])
    );
    assert_eq!(
        run(&index, &body(&["taxi", "taxi"], &[], &[], &[])),
        Some(vec![3])
    );
}

#[test]
fn equality_near_and_bounds() {
    let mut eq = sub(0, &["flight"]);
    eq.equals = vec![("to".into(), map(&[("place", s("JFK"))]))];
    let mut near = sub(1, &["flight"]);
    near.near = Some("dr5".into());
    let mut max = sub(2, &["flight"]);
    max.bounds = vec![bound("max", Op::Ge, Kind::Money, 20000, "USD")];
    let index = MatchIndex::new(vec![eq, near, max]).unwrap();
    let place = |p: &str| map(&[("place", s(p))]);
    let geo = |g: &str| map(&[("geohash", s(g))]);
    let one = |c: &str, v: Value| run(&index, &body(&["flight"], &[], &[], &[(c, v)]));
    assert_eq!(one("to", place("JFK")), Some(vec![0]));
    assert_eq!(one("to", place("LAX")), Some(vec![]));
    for (g, hit) in [("dr5ru", true), ("dr", true), ("dr6", false), ("", true)] {
        assert_eq!(
            one("near", geo(g)),
            Some(if hit { vec![1] } else { vec![] }),
            "{g}"
        );
    }
    assert_eq!(
        one("near", map(&[("geohash", Value::UInt(5))])),
        Some(vec![])
    );
    assert_eq!(one("max", money(20000, "USD")), Some(vec![2]));
    assert_eq!(one("max", money(19999, "USD")), Some(vec![]));
    assert_eq!(one("max", money(90000, "EUR")), Some(vec![]));
    let range = map(&[
        (
            "range",
            Value::Array(vec![Value::UInt(100), Value::UInt(20000)]),
        ),
        ("cur", s("USD")),
    ]);
    assert_eq!(one("max", range), Some(vec![2]));
}

#[test]
fn dates_and_ints() {
    let mut d = sub(0, &["hotel"]);
    d.bounds = vec![bound("before", Op::Lt, Kind::Date, 20261220, "")];
    let mut n = sub(1, &["hotel"]);
    n.bounds = vec![bound("guests", Op::Eq, Kind::Int, 3, "")];
    let index = MatchIndex::new(vec![d, n]).unwrap();
    let date = |x: &str| map(&[("date", s(x))]);
    let one = |c: &str, v: Value| run(&index, &body(&["hotel"], &[], &[], &[(c, v)]));
    assert_eq!(one("before", date("2026-12-19")), Some(vec![0]));
    assert_eq!(one("before", date("2026-12-20")), Some(vec![]));
    assert_eq!(one("before", date("2026-1x-01")), Some(vec![]));
    let ints = map(&[("range", Value::Array(vec![Value::UInt(2), Value::UInt(4)]))]);
    assert_eq!(one("guests", ints), Some(vec![1]));
    assert_eq!(
        one("guests", map(&[("int", Value::Bool(true))])),
        Some(vec![])
    );
    assert_eq!(
        one("guests", map(&[("int", Value::NInt(-3))])),
        Some(vec![])
    );
}

#[test]
fn malformed_bodies() {
    let index = MatchIndex::new(vec![sub(5, &["flight"])]).unwrap();
    let good = body(&["flight"], &[], &[], &[]);
    let not_map = enc(&Value::Array(vec![s("flight")]));
    let bad_tokens = enc(&map(&[
        ("tokens", Value::Array(vec![Value::UInt(1)])),
        ("tags", Value::Array(vec![])),
        ("handles", Value::Array(vec![])),
        ("constraints", map(&[])),
    ]));
    let bad_constraint = body(&["flight"], &[], &[], &[("to", s("JFK"))]);
    let batch: Vec<&[u8]> = vec![
        &good,
        b"\xc1garbage",
        &not_map,
        &[],
        &bad_tokens,
        &bad_constraint,
        &good,
    ];
    let m = index.match_bodies(&batch);
    assert_eq!(m.flags, vec![0, 1, 1, 1, 1, 1, 0]);
    assert_eq!(m.offsets, vec![0, 1, 1, 1, 1, 1, 1, 2]);
    assert_eq!(m.ids, vec![5, 5]);
}

#[test]
fn envelopes() {
    let index = MatchIndex::new(vec![sub(1, &["flight"])]).unwrap();
    let make = |kind: &str, body: Value| {
        envelope::encode_envelope(
            Value::Bin(vec![7; 32]),
            body,
            Value::UInt(1),
            Value::UInt(2),
            s(kind),
            Value::Bin(vec![0; 64]),
        )
        .unwrap()
    };
    let intent = make("intent", body_value(&["flight"], &[], &[], &[]));
    let offer = make("offer", body_value(&["flight"], &[], &[], &[]));
    let odd = make("intent", s("flight"));
    // The empty item is how the binding passes an oversized one.
    let batch: Vec<&[u8]> = vec![&intent, &offer, &odd, b"\x80", &intent[1..], &[]];
    let m = index.match_envelopes(&batch);
    assert_eq!(
        m.flags,
        vec![
            FLAG_OK,
            FLAG_NOT_INTENT,
            FLAG_MALFORMED,
            FLAG_MALFORMED,
            FLAG_MALFORMED,
            FLAG_MALFORMED
        ]
    );
    assert_eq!(m.ids, vec![1]);
}

/// Damaged copies of real bodies and envelopes, and random bytes: flags, never a panic, and
/// every item's ids sorted and distinct.
#[test]
fn random_damage_never_panics() {
    let mut a = sub(1, &["flight"]);
    a.near = Some("dr".into());
    let mut b = sub(2, &["flight", "hotel"]);
    b.equals = vec![("to".into(), map(&[("place", s("JFK"))]))];
    let mut c = sub(3, &["hotel"]);
    c.bounds = vec![bound("max", Op::Le, Kind::Money, 500, "USD")];
    let index = MatchIndex::new(vec![a, b, c]).unwrap();
    let good = body_value(
        &["flight", "hotel"],
        &["work"],
        &["acme"],
        &[
            ("to", map(&[("place", s("JFK"))])),
            ("near", map(&[("geohash", s("dr5"))])),
            ("max", money(400, "USD")),
        ],
    );
    let raw_body = enc(&good);
    let raw_env = envelope::encode_envelope(
        Value::Bin(vec![7; 32]),
        good,
        Value::UInt(1),
        Value::UInt(2),
        s("intent"),
        Value::Bin(vec![0; 64]),
    )
    .unwrap();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..3000 {
        let mut item = match round % 3 {
            0 => raw_body.clone(),
            1 => raw_env.clone(),
            _ => (0..next() % 48).map(|_| next() as u8).collect(),
        };
        for _ in 0..1 + next() % 3 {
            if item.is_empty() {
                break;
            }
            let at = (next() as usize) % item.len();
            match next() % 3 {
                0 => item[at] ^= 1 << (next() % 8),
                1 => item.truncate(at),
                _ => item[at] = next() as u8,
            }
        }
        for m in [
            index.match_bodies(&[&item]),
            index.match_envelopes(&[&item]),
        ] {
            assert_eq!(m.offsets.len(), 2);
            assert!(m.ids.windows(2).all(|w| w[0] < w[1]));
            assert!(m.flags[0] == FLAG_OK || m.ids.is_empty());
        }
    }
}

#[test]
fn construction_errors() {
    assert!(MatchIndex::new(vec![sub(0, &[])]).is_err());
    let mut deep = Value::Nil;
    for _ in 0..20 {
        deep = Value::Array(vec![deep]);
    }
    let mut bad = sub(1, &["x"]);
    bad.equals = vec![("to".into(), deep)];
    assert!(MatchIndex::new(vec![bad]).is_err());
    assert!(MatchIndex::new(vec![]).unwrap().is_empty());
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const TOKENS: [&str; 5] = ["flight", "hotel", "taxi", "pizza", "bike"];
const AREAS: [&str; 7] = ["", "d", "dr", "dr5", "dr5ru", "9q", "9q8yy"];

fn random_sub(rng: &mut Rng, id: i64) -> Subscription {
    let mut s = sub(id, &[rng.pick(&TOKENS)]);
    if rng.next().is_multiple_of(4) {
        s.tokens.push(rng.pick(&TOKENS).to_owned());
    }
    match rng.next() % 6 {
        0 => {
            s.equals = vec![(
                "to".into(),
                map(&[("place", s_(rng.pick(&["JFK", "SFO"])))]),
            )]
        }
        1 | 2 => s.near = Some(rng.pick(&AREAS).to_owned()),
        3 => s.tags = vec![rng.pick(&["work", "eco"]).to_owned()],
        4 => {
            s.bounds = vec![bound(
                "max",
                Op::Ge,
                Kind::Money,
                100 * (rng.next() % 5) as i64,
                "USD",
            )]
        }
        _ => {}
    }
    if rng.next().is_multiple_of(5) {
        s.handles = vec!["acme".into()];
    }
    s
}

fn s_(x: &str) -> Value {
    s(x)
}

fn random_bodies(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let tokens = [rng.pick(&TOKENS), rng.pick(&TOKENS)];
            let mut cons = vec![
                ("to", map(&[("place", s(rng.pick(&["JFK", "SFO", "LAX"])))])),
                ("max", money(rng.next() % 600, "USD")),
            ];
            if !rng.next().is_multiple_of(4) {
                cons.push(("near", map(&[("geohash", s(rng.pick(&AREAS)))])));
            }
            let tags: &[&str] = if rng.next().is_multiple_of(2) {
                &["work"]
            } else {
                &[]
            };
            let handles: &[&str] = if rng.next().is_multiple_of(3) {
                &["acme"]
            } else {
                &[]
            };
            body(&tokens, tags, handles, &cons)
        })
        .collect()
}

/// An index changed by interleaved adds and removes matches exactly as one built from what is
/// left, and as every subscription checked on its own.
#[test]
fn updates_in_place_equal_a_rebuild() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let bodies = random_bodies(&mut rng, 200);
    let items: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    let mut live = MatchIndex::new(vec![]).unwrap();
    let mut present: Vec<Subscription> = Vec::new();
    for round in 0..40 {
        let batch: Vec<Subscription> = (0..1 + rng.next() % 30)
            .map(|_| {
                let id = (rng.next() % 400) as i64;
                random_sub(&mut rng, id)
            })
            .collect();
        live.add(batch.clone()).unwrap();
        present.extend(batch);
        let gone: Vec<i64> = (0..rng.next() % 12)
            .map(|_| (rng.next() % 400) as i64)
            .collect();
        let expect = present.iter().filter(|s| gone.contains(&s.id)).count();
        assert_eq!(live.remove(&gone), expect);
        present.retain(|s| !gone.contains(&s.id));
        assert_eq!(live.len(), present.len());
        if round % 8 == 7 || round == 39 {
            let rebuilt = MatchIndex::new(present.clone()).unwrap();
            let got = live.match_bodies(&items);
            assert_eq!(got, rebuilt.match_bodies(&items), "round {round}");
            for (i, b) in items.iter().enumerate() {
                let mut want: Vec<i64> = present
                    .iter()
                    .filter(|s| {
                        run(&MatchIndex::new(vec![(*s).clone()]).unwrap(), b) == Some(vec![s.id])
                    })
                    .map(|s| s.id)
                    .collect();
                want.sort_unstable();
                want.dedup();
                let (a, z) = (got.offsets[i] as usize, got.offsets[i + 1] as usize);
                assert_eq!(got.ids[a..z], want[..], "round {round} body {i}");
            }
        }
    }
    // Emptied, the index frees what it held and still works.
    let all: Vec<i64> = present.iter().map(|s| s.id).collect();
    live.remove(&all);
    assert!(live.is_empty());
    assert!(live.keyed.is_empty() && live.near.is_empty());
    assert_eq!(live.strings.get(b"flight"), None);
    live.add(vec![sub(1, &["flight"])]).unwrap();
    assert_eq!(run(&live, &body(&["flight"], &[], &[], &[])), Some(vec![1]));
}

#[test]
fn a_failed_add_changes_nothing() {
    let mut index = MatchIndex::new(vec![sub(1, &["flight"])]).unwrap();
    assert!(index.add(vec![sub(2, &["hotel"]), sub(3, &[])]).is_err());
    assert_eq!(index.len(), 1);
    assert_eq!(index.strings.get(b"hotel"), None);
    assert_eq!(
        run(&index, &body(&["hotel", "flight"], &[], &[], &[])),
        Some(vec![1])
    );
}

#[test]
fn whole_prefix_lookups_both_ways() {
    let subs = ["", "d", "dr5", "dr5ru", "dr6", "9q"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut s = sub(i as i64, &["pizza"]);
            s.near = Some((*p).to_owned());
            s
        })
        .collect();
    let index = MatchIndex::new(subs).unwrap();
    let near = |g: &str| {
        run(
            &index,
            &body(&["pizza"], &[], &[], &[("near", map(&[("geohash", s(g))]))]),
        )
    };
    assert_eq!(near("dr5ruxyz"), Some(vec![0, 1, 2, 3]));
    assert_eq!(near("dr"), Some(vec![0, 1, 2, 3, 4]));
    assert_eq!(near(""), Some(vec![0, 1, 2, 3, 4, 5]));
    assert_eq!(near("9"), Some(vec![0, 5]));
    assert_eq!(near("u"), Some(vec![0]));
}

#[test]
fn many_names_in_one_subscription() {
    let tokens: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let mut big = sub(1, &[]);
    big.tokens = tokens.clone();
    big.tags = vec!["work".into(); 70];
    let index = MatchIndex::new(vec![big]).unwrap();
    let names: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_eq!(
        run(&index, &body(&names, &["work"], &[], &[])),
        Some(vec![1])
    );
    assert_eq!(
        run(&index, &body(&names[1..], &["work"], &[], &[])),
        Some(vec![])
    );
}
