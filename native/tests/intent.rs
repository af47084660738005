//! The intent tokenizer from the outside: invariants over many random texts (no panic, errors point
//! into the text, results well formed, names stable under re-parsing) and a few end-to-end cases.

mod common;

use _native::intent::{
    is_name_char, is_space, parse, Constraint, SyntaxError, MAX_NAME_CHARS, MAX_TEXT_CHARS,
    MSG_EMPTY, MSG_NO_TOKEN,
};
use common::Rng;

const PIECES: &[&str] = &[
    "?",
    "#",
    "@",
    ":",
    "..",
    "->",
    ".",
    "-",
    "_",
    "(",
    ")",
    "\"",
    "'",
    ",",
    "!",
    "?flight",
    "#tag",
    "@h.x",
    "max:",
    "min:",
    "budget:",
    "on:",
    "before:",
    "qty:",
    "nights:",
    "near:",
    "from:",
    "to:",
    "note:",
    "400",
    "12.5",
    "USD",
    "eur",
    "JPY",
    "2026-02-29",
    "2024-02-29",
    "9q8yy",
    "SFO",
    "JFK",
    "é",
    "日本",
    "ПОЕЗД",
    "Σ",
    "İ",
    "\u{301}",
    "🚀",
    " ",
    "\t",
    "\u{3000}",
    "\u{a0}",
    "0",
    "9",
    "\u{0}",
    "\u{10FFFF}",
    "\u{FFFD}",
    "\u{200B}",
    "。",
    "」",
    "「",
    "！",
    "؟",
    "\u{200C}",
    "\u{200D}",
    "\u{B7}",
    "l",
    "ا",
    "ب",
    "क",
    "\u{94D}",
];

fn random_text(rng: &mut Rng) -> String {
    let mut text = String::new();
    if rng.below(2) == 0 {
        text.push_str("?x ");
    }
    for _ in 0..rng.below(20) {
        if rng.below(8) == 0 {
            // any scalar value
            let c = char::from_u32(rng.next_u64() as u32 % 0x11_0000).unwrap_or('\u{FFFD}');
            text.push(c);
        } else {
            text.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    text
}

fn check_error(text: &str, e: &SyntaxError) {
    let chars: Vec<char> = text.chars().collect();
    if e.word.is_empty() {
        assert_eq!(e.offset, 0, "{text:?}: {e}");
        return;
    }
    let word: Vec<char> = e.word.chars().collect();
    let at = chars.get(e.offset..e.offset + word.len());
    assert_eq!(
        at,
        Some(&word[..]),
        "{text:?}: the offset does not point at {:?}",
        e.word
    );
    assert!(!word.iter().any(|&c| is_space(c)));
}

#[test]
fn invariants_hold_on_random_text() {
    let mut rng = Rng::new(2026);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..50_000 {
        let text = random_text(&mut rng);
        match parse(&text) {
            Err(e) => {
                refused += 1;
                check_error(&text, &e);
            }
            Ok(intent) => {
                ok += 1;
                assert!(!intent.tokens.is_empty());
                for names in [&intent.tokens, &intent.tags, &intent.handles] {
                    for (i, name) in names.iter().enumerate() {
                        assert!(!name.is_empty());
                        assert!(!names[..i].contains(name), "{text:?}: {name:?} twice");
                    }
                }
                for (i, (key, _)) in intent.constraints.iter().enumerate() {
                    assert!(intent.constraints[..i].iter().all(|(k, _)| k != key));
                }
                for word in &intent.words {
                    assert!(text.contains(word) && !word.is_empty());
                }
                // the names survive being parsed again: lower-casing is stable
                let again = format!("?{}", intent.tokens.join(" ?"));
                assert_eq!(parse(&again).map(|i| i.tokens), Ok(intent.tokens.clone()));
            }
        }
    }
    assert!(ok > 5_000 && refused > 5_000, "ok {ok}, refused {refused}");
}

#[test]
fn the_limits() {
    let at_cap = format!("?x {}", "日".repeat(MAX_TEXT_CHARS - 3));
    assert_eq!(parse(&at_cap).map(|i| i.words.len()), Ok(1));
    let over = format!("{at_cap}日");
    let e = parse(&over).unwrap_err();
    assert_eq!((e.word.as_str(), e.offset), ("", 0));
    assert!(e.message.contains("1000"));
    let name = "ü".repeat(MAX_NAME_CHARS);
    assert_eq!(
        parse(&format!("?{name}")).map(|i| i.tokens),
        Ok(vec![name.clone()])
    );
    assert!(parse(&format!("?{name}ü")).is_err());
}

#[test]
fn whole_text_errors_have_no_word() {
    for (text, message) in [
        ("", MSG_EMPTY),
        ("\u{2028} \u{85}", MSG_EMPTY),
        ("words only, #tag @handle", MSG_NO_TOKEN),
    ] {
        let e = parse(text).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.word.as_str(), e.offset),
            (message, "", 0)
        );
        assert_eq!(e.to_string(), message);
    }
    let e = parse("🚀 ?a*").unwrap_err();
    assert_eq!(e.offset, 2);
    assert_eq!(
        e.to_string(),
        "invalid character '*' (U+002A) in a name at \"?a*\" (character 2)"
    );
}

#[test]
fn a_realistic_intent() {
    let text = "Need (?flight) SFO->JFK before:2026-12-20 max:400USD #work @acme-air, window seat!";
    let i = parse(text).unwrap();
    assert_eq!(i.tokens, ["flight"]);
    assert_eq!(i.tags, ["work"]);
    assert_eq!(i.handles, ["acme-air"]);
    assert_eq!(i.words, ["Need", "window", "seat"]);
    assert_eq!(
        i.constraint("max"),
        Some(&Constraint::Money {
            minor: 40_000,
            cur: "USD".into()
        })
    );
    assert_eq!(i.constraint("from"), Some(&Constraint::Place("SFO".into())));
    assert_eq!(
        i.constraint("before"),
        Some(&Constraint::Date("2026-12-20"))
    );
}

#[test]
fn name_characters() {
    for c in [
        'a', 'Z', '0', 'é', 'ß', '日', 'П', '\u{301}', '\u{94D}', '٣',
    ] {
        assert!(is_name_char(c), "{c:?}");
    }
    for c in ['_', '-', '.', ' ', '*', '🚀', '\u{200B}', '\u{0}', '²', 'Ⅻ'] {
        assert!(!is_name_char(c), "{c:?}");
    }
}

#[test]
fn cjk_punctuation_joiners_and_empty_typed_keys() {
    let i =
        parse("?寿司 #東京。 「#大阪」、 #می\u{200C}خواهم #क्\u{200D}ष ?col\u{B7}lecció").unwrap();
    assert_eq!(i.tokens, ["寿司", "col\u{B7}lecció"]);
    assert_eq!(i.tags, ["東京", "大阪", "می\u{200C}خواهم", "क्\u{200D}ष"]);
    for (text, word, offset) in [
        ("?flight max:", "max", 8),
        ("?x #a\u{200C}b", "#a\u{200C}b", 3),
        ("?x #\u{B7}l", "#\u{B7}l", 3),
    ] {
        let e = parse(text).unwrap_err();
        assert_eq!((e.word.as_str(), e.offset), (word, offset), "{text:?}");
        check_error(text, &e);
    }
}
