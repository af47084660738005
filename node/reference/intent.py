"""Pure-Python twin of the native intent tokenizer (PROTOCOL.md section 5).

``parse_intent(text)`` returns ``{"text", "tokens", "tags", "handles", "constraints", "words"}`` or raises
IntentSyntaxError(message, word, offset), exactly as ``node._native.parse_intent`` does: the tests compare
the two on fixed cases and on random text. Offsets count characters (code points). The Unicode facts
(which characters make up a name, how they lower-case) come from the generated ``intent_tables``, pinned
to one Unicode version, never from this Python's ``unicodedata``.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from node.errors import IntentSyntaxError
from node.reference.intent_tables import (
    JOIN_LEFT_RANGES,
    JOIN_RIGHT_RANGES,
    JOIN_TRANSPARENT_RANGES,
    LETTER_RANGES,
    LOWER,
    MN_CCC_RANGES,
    MN_RANGES,
    NAME_RANGES,
    VIRAMA_RANGES,
)
from node.reference.intent_tables import UNICODE_VERSION as INTENT_UNICODE_VERSION

MAX_INTENT_CHARS = 1000
MAX_INTENT_NAME_CHARS = 64
MAX_INT_DIGITS = 18

# ASCII and Latin marks, then CJK and full-width brackets and quotes (「『（【〈《〔［｛｢＂＇〝).
LEADING_PUNCTUATION = frozenset(
    "\"'([{<\u201c\u2018\u00ab\u00bf\u00a1"
    "\u300c\u300e\uff08\u3010\u3008\u300a\u3014\uff3b\uff5b\uff62\uff02\uff07\u301d"
)
# ASCII and Latin marks; CJK and full-width stops, commas, marks, closing brackets and quotes
# (。、！？」』）】〉》〕］｝｣｡､，．；：＂＇〞〟‥); Arabic comma, semicolon, question mark and
# Urdu full stop (، ؛ ؟ ۔); Devanagari danda and double danda (। ॥).
TRAILING_PUNCTUATION = frozenset(
    "\"')]}>.,;:!?\u201d\u2019\u00bb\u2026"
    "\u3002\u3001\uff01\uff1f\u300d\u300f\uff09\u3011\u3009\u300b\u3015\uff3d\uff5d\uff63\uff61\uff64"
    "\uff0c\uff0e\uff1b\uff1a\uff02\uff07\u301e\u301f\u2025"
    "\u060c\u061b\u061f\u06d4\u0964\u0965"
)
ZWNJ, ZWJ, MIDDLE_DOT = "\u200c", "\u200d", "\u00b7"
# Unicode White_Space.
WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
GEOHASH_ALPHABET = frozenset("0123456789bcdefghjkmnpqrstuvwxyz")
ASCII_DIGITS = frozenset("0123456789")
ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
ASCII_ALNUM = ASCII_DIGITS | ASCII_LETTERS
KEY_START = frozenset("abcdefghijklmnopqrstuvwxyz")
KEY_REST = KEY_START | ASCII_DIGITS | {"_"}

# ISO 4217 currencies whose minor unit is not 2 decimal digits.
MINOR_DIGITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV",
         "XAF", "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}  # fmt: skip

MONEY_KEYS = ("max", "min", "budget")
DATE_KEYS = ("before", "after", "on")
INT_KEYS = ("qty", "size", "nights", "seats", "guests")
GEOHASH_KEYS = ("near",)
PLACE_KEYS = ("from", "to")

MSG_EMPTY = "text is empty"
MSG_NO_TOKEN = "no ?token: say what you want with at least one, such as ?flight"
MSG_NOT_UNICODE = "text is not valid Unicode"
MSG_TOO_LONG = f"text is longer than {MAX_INTENT_CHARS} characters"

TYPED_KEYS = frozenset((*MONEY_KEYS, *DATE_KEYS, *INT_KEYS, *GEOHASH_KEYS, *PLACE_KEYS))


def minor_digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency, 2)


def _in(ranges: tuple[tuple[int, int], ...], c: str) -> bool:
    cp = ord(c)
    i = bisect_right(ranges, (cp, 0x10FFFF))  # the last range starting at or before cp
    return i > 0 and cp <= ranges[i - 1][1]


def is_name_char(c: str) -> bool:
    """A letter, mark or decimal digit of the pinned Unicode version."""
    return _in(NAME_RANGES, c)


def _after_virama(name: str, i: int) -> bool:
    """UAX #31 A2/B: /$L $M* $V $M1* joiner/ ends at name[i]."""
    j = i - 1
    while j >= 0:
        if _in(VIRAMA_RANGES, name[j]):
            k = j - 1
            while k >= 0 and _in(MN_RANGES, name[k]):
                k -= 1
            if k >= 0 and _in(LETTER_RANGES, name[k]):
                return True
        if not _in(MN_CCC_RANGES, name[j]):
            return False
        j -= 1
    return False


def _between_joining_letters(name: str, i: int) -> bool:
    """UAX #31 A1: /$LJ $T* ZWNJ $T* $RJ/ around name[i]."""
    j = i - 1
    while j >= 0 and _in(JOIN_TRANSPARENT_RANGES, name[j]):
        j -= 1
    k = i + 1
    while k < len(name) and _in(JOIN_TRANSPARENT_RANGES, name[k]):
        k += 1
    return j >= 0 and _in(JOIN_LEFT_RANGES, name[j]) and k < len(name) and _in(JOIN_RIGHT_RANGES, name[k])


def _context_refusal(name: str, i: int) -> str | None:
    """Why the joiner or middle dot at name[i] may not stand there, or None when it may."""
    c = name[i]
    if c == MIDDLE_DOT:  # after a letter and its marks (so a lower-cased İ·l, i + U+0307, stays valid)
        j = i - 1
        while j >= 0 and _in(MN_RANGES, name[j]):
            j -= 1
        if j >= 0 and _in(LETTER_RANGES, name[j]) and i + 1 < len(name) and _in(LETTER_RANGES, name[i + 1]):
            return None
        return "U+00B7 (middle dot) in a name only between two letters, as in col·lecció"
    if _after_virama(name, i) or (c == ZWNJ and _between_joining_letters(name, i)):
        return None
    if c == ZWNJ:
        return "U+200C (zero width non-joiner) in a name only after a virama or between joining letters (UAX #31)"
    return "U+200D (zero width joiner) in a name only after a virama (UAX #31)"


def _show(c: str) -> str:
    return f"'{c}' (U+{ord(c):04X})" if "!" <= c <= "~" else f"U+{ord(c):04X}"


class _Refused(Exception):
    """A value's message; the word and offset are added where the word is known."""


def parse_intent(text: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise IntentSyntaxError(MSG_NOT_UNICODE)
    if len(text) > MAX_INTENT_CHARS:
        raise IntentSyntaxError(MSG_TOO_LONG)
    if all(c in WHITE_SPACE for c in text):
        raise IntentSyntaxError(MSG_EMPTY)

    tokens: list[str] = []
    tags: list[str] = []
    handles: list[str] = []
    constraints: dict[str, dict[str, Any]] = {}
    words: list[str] = []
    for word, offset in _words(text):
        try:
            sigil = word[0]
            if sigil in "?#@":
                name = _name(word, sigil)
                names = tokens if sigil == "?" else tags if sigil == "#" else handles
                if name not in names:
                    names.append(name)
            elif (places := _route(word)) is not None:
                for key in PLACE_KEYS:
                    if key in constraints:
                        raise _Refused(f"constraint '{key}' given twice")
                constraints["from"] = {"place": places[0]}
                constraints["to"] = {"place": places[1]}
            elif (pair := _key_value(word)) is not None:
                key, value = pair
                if key in constraints:
                    raise _Refused(f"constraint '{key}' given twice")
                constraints[key] = _typed(key, value)
            elif word in TYPED_KEYS and text[offset + len(word) : offset + len(word) + 1] == ":":
                _typed(word, "")  # `max:` with no value: always refused, with the key's own message
            else:
                words.append(word)
        except _Refused as exc:
            raise IntentSyntaxError(str(exc), word, offset) from None
    if not tokens:
        raise IntentSyntaxError(MSG_NO_TOKEN)
    return {
        "text": text,
        "tokens": tokens,
        "tags": tags,
        "handles": handles,
        "constraints": constraints,
        "words": words,
    }


def _words(text: str) -> list[tuple[str, int]]:
    """(word, offset) for every white-space separated word, punctuation stripped, empty ones dropped."""
    out = []
    start = None
    for i, c in enumerate(text + " "):
        if c in WHITE_SPACE:
            if start is not None:
                raw = text[start:i]
                lead = 0
                while lead < len(raw) and raw[lead] in LEADING_PUNCTUATION:
                    lead += 1
                end = len(raw)
                while end > lead and raw[end - 1] in TRAILING_PUNCTUATION:
                    end -= 1
                if end > lead:
                    out.append((raw[lead:end], start + lead))
                start = None
        elif start is None:
            start = i
    return out


def _name(word: str, sigil: str) -> str:
    name = word[1:]
    if not name:
        raise _Refused(f"empty name after '{sigil}'")
    for i, c in enumerate(name):
        if is_name_char(c) or c in "_-" or (sigil == "@" and c == "."):
            continue
        if c in (ZWNJ, ZWJ, MIDDLE_DOT):
            refusal = _context_refusal(name, i)
            if refusal is None:
                continue
            raise _Refused(refusal)
        raise _Refused(f"invalid character {_show(c)} in a name")
    if len(name) > MAX_INTENT_NAME_CHARS:
        raise _Refused(f"name longer than {MAX_INTENT_NAME_CHARS} characters")
    return "".join(LOWER.get(c, c) for c in name)  # per character: no final-sigma context


def _place(text: str) -> str | None:
    if 2 <= len(text) <= 8 and all(c in ASCII_ALNUM for c in text):
        return text.upper()
    return None


def _route(word: str) -> tuple[str, str] | None:
    at = word.find("->")
    if at < 0:
        return None
    start, end = _place(word[:at]), _place(word[at + 2 :])
    return None if start is None or end is None else (start, end)


def _key_value(word: str) -> tuple[str, str] | None:
    at = word.find(":")
    if at < 0:
        return None
    key, value = word[:at], word[at + 1 :]
    if key and key[0] in KEY_START and all(c in KEY_REST for c in key) and value:
        return key, value
    return None


def _typed(key: str, value: str) -> dict[str, Any]:
    if key in MONEY_KEYS:
        return _money(key, value)
    if key in DATE_KEYS:
        return _ranged(key, value, _date, "date")
    if key in INT_KEYS:
        return _ranged(key, value, _int, "int")
    if key in GEOHASH_KEYS:
        lowered = value.lower() if value.isascii() else value
        if 1 <= len(value) <= 12 and all(c in GEOHASH_ALPHABET for c in lowered):
            return {"geohash": lowered}
        raise _Refused(f"{key}: expected a geohash of 1 to 12 characters from 0-9 and b-z except i, l, o")
    if key in PLACE_KEYS:
        place = _place(value)
        if place is None:
            raise _Refused(f"{key}: expected a place code of 2 to 8 letters or digits, such as SFO")
        return {"place": place}
    return {"text": value}


def _ranged(key: str, value: str, parse, name: str) -> dict[str, Any]:
    at = value.find("..")
    if at < 0:
        return {name: parse(key, value)}
    lo, hi = parse(key, value[:at]), parse(key, value[at + 2 :])
    if lo > hi:
        raise _Refused(f"{key}: the ends of the range are out of order")
    return {"range": [lo, hi]}


def _all_digits(text: str) -> bool:
    return bool(text) and all(c in ASCII_DIGITS for c in text)


def _int(key: str, text: str) -> int:
    if not _all_digits(text):
        raise _Refused(f"{key}: expected a whole number such as 3, or a range such as 2..4")
    if len(text) > MAX_INT_DIGITS:
        raise _Refused(f"{key}: number too large")
    return int(text)


def _is_leap(year: int) -> bool:
    return (year % 4 == 0 and year % 100 != 0) or year % 400 == 0


def _days_in_month(year: int, month: int) -> int:
    if month in (1, 3, 5, 7, 8, 10, 12):
        return 31
    if month in (4, 6, 9, 11):
        return 30
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 0


def _date(key: str, text: str) -> str:
    if not (
        len(text) == 10
        and text[4] == "-"
        and text[7] == "-"
        and all(c in ASCII_DIGITS for i, c in enumerate(text) if i not in (4, 7))
    ):
        raise _Refused(f"{key}: expected a date such as 2026-12-20")
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    if year == 0 or day == 0 or day > _days_in_month(year, month):
        raise _Refused(f"{key}: not a calendar date")
    return text


def _amount(text: str) -> tuple[str, str | None, str | None] | None:
    """(integer digits, fraction digits or None, currency or None), or None when the shape is wrong."""
    n = 0
    while n < len(text) and text[n] in ASCII_DIGITS:
        n += 1
    if n == 0:
        return None
    units, rest = text[:n], text[n:]
    fraction = None
    if rest.startswith("."):
        f = 1
        while f < len(rest) and rest[f] in ASCII_DIGITS:
            f += 1
        if f == 1:
            return None
        fraction, rest = rest[1:f], rest[f:]
    if not rest:
        return units, fraction, None
    if len(rest) == 3 and all(c in ASCII_LETTERS for c in rest):
        return units, fraction, rest.upper()
    return None


def _minor_units(key: str, amount: tuple[str, str | None, str | None], currency: str) -> int:
    units, fraction, _ = amount
    digits = minor_digits(currency)
    if len(units) + digits > MAX_INT_DIGITS:  # the minor units stay below 2**63
        raise _Refused(f"{key}: amount too large")
    fraction = fraction or ""
    if len(fraction) > digits:
        raise _Refused(f"{key}: {currency} allows at most {digits} decimal digits")
    return int(units) * 10**digits + (int(fraction.ljust(digits, "0")) if digits else 0)


def _money(key: str, value: str) -> dict[str, Any]:
    bad = f"{key}: expected an amount with its currency, such as 400USD or 12.50EUR"
    at = value.find("..")
    if at < 0:
        amount = _amount(value)
        if amount is None or amount[2] is None:
            raise _Refused(bad)
        return {"money": _minor_units(key, amount, amount[2]), "cur": amount[2]}
    lo, hi = _amount(value[:at]), _amount(value[at + 2 :])
    if lo is None or hi is None or hi[2] is None:
        raise _Refused(bad)
    currency = hi[2]
    if lo[2] is not None and lo[2] != currency:
        raise _Refused(f"{key}: the ends of the range are in different currencies")
    low, high = _minor_units(key, lo, currency), _minor_units(key, hi, currency)
    if low > high:
        raise _Refused(f"{key}: the ends of the range are out of order")
    return {"range": [low, high], "cur": currency}
