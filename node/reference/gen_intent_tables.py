"""Generates the character tables of the intent tokenizer (PROTOCOL.md section 5) for both implementations.

    python -m node.reference.gen_intent_tables          # rewrite the two files
    python -m node.reference.gen_intent_tables --check  # exit 1 when they are out of date

The tokenizer's Unicode facts are pinned to one Unicode version (UNICODE_VERSION) so that every node,
whatever its Python or Rust version, splits and lower-cases an intent the same way. This script must run
on a Python whose ``unicodedata`` has exactly that version (Python 3.11 has 14.0.0); it writes

* ``node/reference/intent_tables.py`` for the pure-Python reference, and
* ``native/src/intent_tables.rs`` for the Rust core,

each holding the same tables:

* NAME_RANGES: inclusive code point ranges of the characters allowed in a ?token/#tag/@handle name
  besides ``_ - .``: General_Category L* (letters), M* (marks) or Nd (decimal digits);
* LOWER: each such character whose full lowercase mapping (UnicodeData + the unconditional rules of
  SpecialCasing, no context) is not itself, with that mapping;
* the classes of UAX #31 section 2.3 that say where a ZERO WIDTH (NON-)JOINER may stand in a name:
  LETTER_RANGES ($L, General_Category L*), MN_RANGES ($M, Mn), MN_CCC_RANGES ($M1, Mn with a non-zero
  Canonical_Combining_Class), VIRAMA_RANGES ($V, Canonical_Combining_Class 9), and from
  Joining_Type: JOIN_LEFT_RANGES ($LJ, Dual_Joining or Left_Joining), JOIN_RIGHT_RANGES ($RJ,
  Dual_Joining or Right_Joining), JOIN_TRANSPARENT_RANGES ($T, Transparent).

Python's ``unicodedata`` has no Joining_Type: that comes from the UCD file committed beside this script,
``ucd/DerivedJoiningType-14.0.0.txt`` (ucd/README.md says where it is from).
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

UNICODE_VERSION = "14.0.0"
_ROOT = Path(__file__).resolve().parents[2]
PY_PATH = _ROOT / "node" / "reference" / "intent_tables.py"
RS_PATH = _ROOT / "native" / "src" / "intent_tables.rs"
JOINING_TYPE_PATH = Path(__file__).resolve().parent / "ucd" / f"DerivedJoiningType-{UNICODE_VERSION}.txt"

# (name, comment) of the range tables after NAME_RANGES, in the order they are written.
CLASS_TABLES = (
    ("LETTER_RANGES", "$L of UAX #31 section 2.3: General_Category L*."),
    ("MN_RANGES", "$M of UAX #31 section 2.3: General_Category Mn."),
    ("MN_CCC_RANGES", "$M1 of UAX #31 section 2.3: General_Category Mn with Canonical_Combining_Class not 0."),
    ("VIRAMA_RANGES", "$V of UAX #31 section 2.3: Canonical_Combining_Class 9 (Virama)."),
    ("JOIN_LEFT_RANGES", "$LJ of UAX #31 section 2.3: Joining_Type Dual_Joining or Left_Joining."),
    ("JOIN_RIGHT_RANGES", "$RJ of UAX #31 section 2.3: Joining_Type Dual_Joining or Right_Joining."),
    ("JOIN_TRANSPARENT_RANGES", "$T of UAX #31 section 2.3: Joining_Type Transparent."),
)


def _is_name_char(c: str) -> bool:
    category = unicodedata.category(c)
    return category[0] in "LM" or category == "Nd"


def _ranges(codepoints) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for cp in codepoints:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return [(a, b) for a, b in out]


def joining_types(path: Path = JOINING_TYPE_PATH) -> dict[int, str]:
    """Code point -> Joining_Type letter (D, L, R, T, C) from DerivedJoiningType.txt; absent is U."""
    text = path.read_text("utf-8")
    if not text.startswith(f"# DerivedJoiningType-{UNICODE_VERSION}.txt"):
        raise SystemExit(f"{path} is not DerivedJoiningType-{UNICODE_VERSION}.txt")
    types: dict[int, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        span, value = (part.strip() for part in data.split(";"))
        lo, _, hi = span.partition("..")
        for cp in range(int(lo, 16), int(hi or lo, 16) + 1):
            types[cp] = value
    return types


def class_tables() -> dict[str, list[tuple[int, int]]]:
    """The UAX #31 joiner-context classes (CLASS_TABLES), as ranges."""
    if unicodedata.unidata_version != UNICODE_VERSION:
        raise SystemExit(
            f"this Python has Unicode {unicodedata.unidata_version}; the tables are pinned to {UNICODE_VERSION}"
        )
    joining = joining_types()
    every = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    gc = {cp: unicodedata.category(chr(cp)) for cp in every}
    tests = {
        "LETTER_RANGES": lambda cp: gc[cp][0] == "L",
        "MN_RANGES": lambda cp: gc[cp] == "Mn",
        "MN_CCC_RANGES": lambda cp: gc[cp] == "Mn" and unicodedata.combining(chr(cp)) != 0,
        "VIRAMA_RANGES": lambda cp: unicodedata.combining(chr(cp)) == 9,
        "JOIN_LEFT_RANGES": lambda cp: joining.get(cp) in ("D", "L"),
        "JOIN_RIGHT_RANGES": lambda cp: joining.get(cp) in ("D", "R"),
        "JOIN_TRANSPARENT_RANGES": lambda cp: joining.get(cp) == "T",
    }
    return {name: _ranges(cp for cp in every if tests[name](cp)) for name, _ in CLASS_TABLES}


def tables() -> tuple[list[tuple[int, int]], dict[int, str]]:
    if unicodedata.unidata_version != UNICODE_VERSION:
        raise SystemExit(
            f"this Python has Unicode {unicodedata.unidata_version}; the tables are pinned to {UNICODE_VERSION}"
        )
    ranges: list[list[int]] = []
    lower: dict[int, str] = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if not _is_name_char(c):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
        if c.lower() != c:  # a single character: no context (final sigma) applies
            lower[cp] = c.lower()
    return [(a, b) for a, b in ranges], lower


_HEADER = "Generated by `python -m node.reference.gen_intent_tables` from Unicode {v}; do not edit."


def render_py(ranges: list[tuple[int, int]], lower: dict[int, str], classes: dict[str, list[tuple[int, int]]]) -> str:
    lines = [f'"""{_HEADER.format(v=UNICODE_VERSION)}"""', "", "# @generated", ""]
    lines.append(f'UNICODE_VERSION = "{UNICODE_VERSION}"')
    lines.append("")
    lines.append("# Inclusive code point ranges of name characters: General_Category L*, M* or Nd.")
    lines.append("NAME_RANGES = (")
    for a, b in ranges:
        lines.append(f"    (0x{a:04X}, 0x{b:04X}),")
    lines.append(")")
    lines.append("")
    lines.append("# Full lowercase mappings (no context) of the name characters that have one.")
    lines.append("LOWER = {")
    for cp, low in lower.items():
        escaped = "".join(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}" for ch in low)
        lines.append(f'    "\\U{cp:08x}": "{escaped}",')
    lines.append("}")
    for name, comment in CLASS_TABLES:
        lines += ["", f"# {comment}", f"{name} = ("]
        lines += [f"    (0x{a:04X}, 0x{b:04X})," for a, b in classes[name]]
        lines.append(")")
    return "\n".join(lines) + "\n"


def render_rs(ranges: list[tuple[int, int]], lower: dict[int, str], classes: dict[str, list[tuple[int, int]]]) -> str:
    lines = [f"// {_HEADER.format(v=UNICODE_VERSION)}", "// @generated", ""]
    lines.append(f'pub const UNICODE_VERSION: &str = "{UNICODE_VERSION}";')
    lines.append("")
    lines.append("/// Inclusive code point ranges of name characters: General_Category L*, M* or Nd.")
    lines.append("pub const NAME_RANGES: &[(u32, u32)] = &[")
    for a, b in ranges:
        lines.append(f"    (0x{a:04X}, 0x{b:04X}),")
    lines.append("];")
    lines.append("")
    lines.append("/// Full lowercase mappings (no context) of the name characters that have one, by code point.")
    lines.append("pub const LOWER: &[(u32, &str)] = &[")
    for cp, low in lower.items():
        escaped = "".join(f"\\u{{{ord(ch):04x}}}" for ch in low)
        lines.append(f'    (0x{cp:04X}, "{escaped}"),')
    lines.append("];")
    for name, comment in CLASS_TABLES:
        lines += ["", f"/// {comment}", f"pub const {name}: &[(u32, u32)] = &["]
        lines += [f"    (0x{a:04X}, 0x{b:04X})," for a, b in classes[name]]
        lines.append("];")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ranges, lower = tables()
    classes = class_tables()
    wanted = {PY_PATH: render_py(ranges, lower, classes), RS_PATH: render_rs(ranges, lower, classes)}
    if "--check" in argv:
        stale = [str(p) for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
