//! The tokenizer's unit tests (fixed cases, every refusal's message, odd input).
use super::values::MINOR_DIGITS;
use super::*;

fn ok(text: &str) -> Intent<'_> {
    parse(text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

fn err(text: &str) -> SyntaxError {
    parse(text).expect_err("should be refused")
}

fn c<'a>(text: &'a str, key: &str) -> Constraint<'a> {
    ok(text).constraint(key).cloned().expect("constraint")
}

#[test]
fn the_example_of_the_brief() {
    let i = ok("?flight SFO->JFK before:2026-12-20 max:400USD #travel @acme-air window seat");
    assert_eq!(i.tokens, ["flight"]);
    assert_eq!(i.tags, ["travel"]);
    assert_eq!(i.handles, ["acme-air"]);
    assert_eq!(i.words, ["window", "seat"]);
    assert_eq!(
        i.constraints,
        vec![
            ("from", Constraint::Place("SFO".into())),
            ("to", Constraint::Place("JFK".into())),
            ("before", Constraint::Date("2026-12-20")),
            (
                "max",
                Constraint::Money {
                    minor: 40000,
                    cur: "USD".into()
                }
            ),
        ]
    );
}

#[test]
fn names_are_unicode_lower_cased_and_deduplicated() {
    let i = ok("?Café ?ПОЕЗД #日本 ?café ?поезд #日本 @Shop.Example İ ?İx");
    assert_eq!(i.tokens, ["café", "поезд", "i\u{307}x"]);
    assert_eq!(i.tags, ["日本"]);
    assert_eq!(i.handles, ["shop.example"]);
    // no final-sigma context: every capital sigma becomes σ
    assert_eq!(ok("?ΟΔΟΣ").tokens, ["οδοσ"]);
    // combining marks belong to names
    assert_eq!(ok("?cafe\u{301}").tokens, ["cafe\u{301}"]);
}

#[test]
fn punctuation_around_words_is_stripped() {
    let i = ok("(?flight), “#travel” «@acme»! ¿?taxi? [note:x]. ...");
    assert_eq!(i.tokens, ["flight", "taxi"]);
    assert_eq!(i.tags, ["travel"]);
    assert_eq!(i.handles, ["acme"]);
    assert_eq!(i.constraint("note"), Some(&Constraint::Text("x")));
    assert!(i.words.is_empty());
    assert_eq!(ok("?a wanted: it").words, ["wanted", "it"]);
}

#[test]
fn offsets_count_characters_not_bytes() {
    let e = err("日本語 ?fl*ght");
    assert_eq!((e.word.as_str(), e.offset), ("?fl*ght", 4));
    assert_eq!(e.message, "invalid character '*' (U+002A) in a name");
    let e = err("é (#a§b)");
    assert_eq!((e.word.as_str(), e.offset), ("#a§b", 3));
    assert_eq!(e.message, "invalid character U+00A7 in a name");
}

#[test]
fn whole_text_errors() {
    assert_eq!(err("").message, MSG_EMPTY);
    assert_eq!(err(" \t\n\u{3000}\u{a0}").message, MSG_EMPTY);
    assert_eq!(err("... !!").message, MSG_NO_TOKEN);
    assert_eq!(err("just words").message, MSG_NO_TOKEN);
    assert_eq!(err("?").message, MSG_NO_TOKEN);
    let e = err(&"?x".repeat(501));
    assert_eq!(
        (e.message, e.word, e.offset),
        (msg_too_long(), String::new(), 0)
    );
    ok(&format!("?x{}", " ".repeat(998)));
    ok(&format!("?{}", "é".repeat(64)));
    assert_eq!(
        err(&format!("?{}", "é".repeat(65))).message,
        "name longer than 64 characters"
    );
}

#[test]
fn name_errors() {
    assert_eq!(err("?a #").message, "empty name after '#'");
    assert_eq!(err("?a @").word, "@");
    assert_eq!(
        err("??a").message,
        "invalid character '?' (U+003F) in a name"
    );
    assert_eq!(
        err("?a.b").message,
        "invalid character '.' (U+002E) in a name"
    );
    assert_eq!(ok("?a @a.b_c-d").handles, ["a.b_c-d"]);
}

#[test]
fn money() {
    let m = |minor, cur: &str| Constraint::Money {
        minor,
        cur: cur.into(),
    };
    assert_eq!(c("?a max:400USD", "max"), m(40000, "USD"));
    assert_eq!(c("?a max:12.5eur", "max"), m(1250, "EUR"));
    assert_eq!(c("?a max:12.05EUR", "max"), m(1205, "EUR"));
    assert_eq!(c("?a max:5000JPY", "max"), m(5000, "JPY"));
    assert_eq!(c("?a max:1.234KWD", "max"), m(1234, "KWD"));
    assert_eq!(c("?a max:3CHF", "max"), m(300, "CHF"));
    assert_eq!(
        c("?a budget:100..250.5USD", "budget"),
        Constraint::MoneyRange {
            lo: 10000,
            hi: 25050,
            cur: "USD".into()
        }
    );
    assert_eq!(
        c("?a budget:100USD..250USD", "budget"),
        Constraint::MoneyRange {
            lo: 10000,
            hi: 25000,
            cur: "USD".into()
        }
    );
    assert_eq!(
        c(&format!("?a max:{}USD", "9".repeat(15)), "max"),
        m(99_999_999_999_999_900, "USD")
    );
    for (bad, message) in [
        (
            "max:400",
            "max: expected an amount with its currency, such as 400USD or 12.50EUR",
        ),
        (
            "max:USD",
            "max: expected an amount with its currency, such as 400USD or 12.50EUR",
        ),
        (
            "max:4.USD",
            "max: expected an amount with its currency, such as 400USD or 12.50EUR",
        ),
        (
            "max:4US",
            "max: expected an amount with its currency, such as 400USD or 12.50EUR",
        ),
        (
            "max:4€",
            "max: expected an amount with its currency, such as 400USD or 12.50EUR",
        ),
        ("max:1.5JPY", "max: JPY allows at most 0 decimal digits"),
        ("max:1.505USD", "max: USD allows at most 2 decimal digits"),
        ("max:10000000000000000USD", "max: amount too large"),
        ("max:1000000000000000000JPY", "max: amount too large"),
        (
            "min:5USD..4USD",
            "min: the ends of the range are out of order",
        ),
        (
            "min:5EUR..6USD",
            "min: the ends of the range are in different currencies",
        ),
        (
            "min:5USD..6",
            "min: expected an amount with its currency, such as 400USD or 12.50EUR",
        ),
    ] {
        let e = err(&format!("?a {bad}"));
        assert_eq!(
            (e.message.as_str(), e.word.as_str(), e.offset),
            (message, bad, 3),
            "{bad}"
        );
    }
}

#[test]
fn dates() {
    assert_eq!(c("?a on:2024-02-29", "on"), Constraint::Date("2024-02-29"));
    assert_eq!(c("?a on:2000-02-29", "on"), Constraint::Date("2000-02-29"));
    assert_eq!(
        c("?a on:2026-12-20..2026-12-24", "on"),
        Constraint::DateRange("2026-12-20", "2026-12-24")
    );
    for bad in [
        "2023-02-29",
        "1900-02-29",
        "2026-04-31",
        "2026-13-01",
        "2026-00-10",
        "0000-01-01",
        "2026-01-00",
    ] {
        assert_eq!(
            err(&format!("?a after:{bad}")).message,
            "after: not a calendar date",
            "{bad}"
        );
    }
    for bad in [
        "2026-1-01",
        "26-01-01",
        "2026/01/01",
        "2026-01-011",
        "２０２６-01-01",
    ] {
        assert_eq!(
            err(&format!("?a after:{bad}")).message,
            "after: expected a date such as 2026-12-20"
        );
    }
    assert_eq!(
        err("?a on:2026-12-24..2026-12-20").message,
        "on: the ends of the range are out of order"
    );
}

#[test]
fn integers_geohash_places_text() {
    assert_eq!(c("?a qty:3", "qty"), Constraint::Int(3));
    assert_eq!(c("?a nights:2..4", "nights"), Constraint::IntRange(2, 4));
    assert_eq!(c("?a guests:007", "guests"), Constraint::Int(7));
    assert_eq!(
        err("?a seats:4..2").message,
        "seats: the ends of the range are out of order"
    );
    assert_eq!(
        err("?a size:M").message,
        "size: expected a whole number such as 3, or a range such as 2..4"
    );
    assert_eq!(
        err("?a qty:-1").message,
        "qty: expected a whole number such as 3, or a range such as 2..4"
    );
    assert_eq!(
        err(&format!("?a qty:{}", "1".repeat(19))).message,
        "qty: number too large"
    );
    assert_eq!(
        c("?a near:9Q8YY", "near"),
        Constraint::Geohash("9q8yy".into())
    );
    for bad in ["9q8ya", "", "0123456789bcd", "9q8y!x"] {
        if bad.is_empty() {
            continue;
        }
        assert!(err(&format!("?a near:{bad}"))
            .message
            .starts_with("near: expected a geohash"));
    }
    assert_eq!(c("?a from:sfo", "from"), Constraint::Place("SFO".into()));
    assert!(err("?a to:J")
        .message
        .starts_with("to: expected a place code"));
    assert_eq!(
        c("?a color:Red..Blue", "color"),
        Constraint::Text("Red..Blue")
    );
    assert_eq!(
        c("?a https://x.example/a:b", "https"),
        Constraint::Text("//x.example/a:b")
    );
    // not constraints: upper-case or non-ASCII keys, leading digits, times
    assert_eq!(
        ok("?a Max:1 10:30 é:x 1a:b").words,
        ["Max:1", "10:30", "é:x", "1a:b"]
    );
}

#[test]
fn routes_and_repeated_keys() {
    let i = ok("?flight lax->nrt");
    assert_eq!(i.constraint("from"), Some(&Constraint::Place("LAX".into())));
    assert_eq!(i.constraint("to"), Some(&Constraint::Place("NRT".into())));
    assert_eq!(ok("?a A->B x->").words, ["A->B", "x-"]);
    let e = err("?a from:SFO SFO->JFK");
    assert_eq!(
        (e.message.as_str(), e.word.as_str(), e.offset),
        ("constraint 'from' given twice", "SFO->JFK", 12)
    );
    let e = err("?a max:1USD x max:2USD");
    assert_eq!(
        (e.message.as_str(), e.offset),
        ("constraint 'max' given twice", 14)
    );
}

#[test]
fn cjk_and_full_width_marks_are_punctuation() {
    for c in ['「', '『', '（', '【', '《'] {
        assert!(is_leading(c), "{c:?}");
    }
    for c in [
        '。', '、', '！', '？', '」', '』', '）', '，', '．', '：', '؟', '،', '।',
    ] {
        assert!(is_trailing(c), "{c:?}");
        assert!(!is_name_char(c), "{c:?}");
    }
    assert_eq!(ok("?寿司 #東京。").tags, ["東京"]);
    assert_eq!(ok("「?寿司」、 #大阪！").tokens, ["寿司"]);
}

#[test]
fn joiners_and_middle_dots_follow_uax31() {
    // Persian ZWNJ between joining letters; Devanagari ZWJ/ZWNJ after a virama; Catalan l·l
    assert_eq!(ok("?x #می\u{200C}خواهم").tags, ["می\u{200C}خواهم"]);
    assert_eq!(ok("?x #क्\u{200D}ष").tags, ["क्\u{200D}ष"]);
    assert_eq!(ok("?x #क्\u{200C}ष").tags, ["क्\u{200C}ष"]);
    assert_eq!(ok("?col\u{B7}lecció").tokens, ["col\u{B7}lecció"]);
    assert_eq!(ok("?İ\u{B7}l").tokens, ["i\u{307}\u{B7}l"]);
    for bad in [
        "?a\u{200C}b",
        "?a\u{200D}b",
        "?\u{200C}",
        "?\u{B7}l",
        "?l\u{B7}",
        "?l\u{B7}\u{B7}l",
        "?ا\u{200C}ب",
    ] {
        let e = err(bad);
        assert!(e.message.contains("in a name only"), "{bad:?}: {e}");
        assert_eq!(e.offset, 0);
    }
}

#[test]
fn a_typed_key_without_value_is_refused() {
    let e = err("?flight max:");
    assert_eq!((e.word.as_str(), e.offset), ("max", 8));
    assert_eq!(e.message, err("?flight max:lots").message);
    assert!(err("?x before:.")
        .message
        .starts_with("before: expected a date"));
    assert!(err("?x (qty:)")
        .message
        .starts_with("qty: expected a whole number"));
    assert_eq!(
        ok("?help needed: a plumber").words,
        ["needed", "a", "plumber"]
    );
    assert_eq!(ok("?x max").words, ["max"]);
}

#[test]
fn minor_digit_table_is_sorted() {
    assert!(MINOR_DIGITS.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(tables::NAME_RANGES.windows(2).all(|w| w[0].1 < w[1].0));
    assert!(tables::LOWER.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn no_panic_on_odd_input() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let alphabet: Vec<char> = "?#@:.->..()\"' \tabcXYZ0129é日Σİ\u{301}\u{0}\u{10FFFF}\u{FFFD}"
        .chars()
        .collect();
    for _ in 0..20_000 {
        let mut s = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 24) as usize;
        for k in 0..len {
            let r = seed.rotate_left(k as u32 * 5) as usize;
            s.push(alphabet[r % alphabet.len()]);
        }
        let _ = parse(&s);
    }
}
