"""Loading helpers for the test vectors (in the spirit of pyca/cryptography's load_vectors_from_file).

Two kinds of vectors:

* the public Ed25519 suites copied unchanged into ``tests/vectors/public/`` with their licences and
  provenance (CCTV, speccheck, Wycheproof, RFC 8032; see its README.md): ``load_cctv()``, ``load_speccheck()``, ``load_wycheproof()``, ``load_rfc8032()``
  each return a list of :class:`SigVector`;
* the project's own vectors in ``tests/vectors/`` (``protocol.json``, ``edge.json``), written by
  ``tests/vectors/generate.py``: ``load_protocol()``, ``load_edge()``.

It also gives, from their own modules, :func:`zip215_verify` (``zip215.py``), a deliberately small,
slow, textbook ZIP-215 check written from the ZIP (not from our code), used as an independent oracle for
per-item verdicts, and the independent envelope builder with its comparison and mutation helpers
(``envelopes.py``): tests import them all from here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Re-exported: tests import these from here.
from tests.vectors.envelopes import (  # noqa: F401
    FIELD_ORDER,
    KINDS,
    NOW_MS,
    SIGNING_PREFIX,
    Author,
    build_envelope,
    canonical,
    envelope_map,
    expected_id,
    expected_signed_bytes,
    mutate,
    outcome,
    reason_of,
    tagged,
)
from tests.vectors.zip215 import (  # noqa: F401
    ED25519_L,
    TORSION_8,
    cofactorless_verify,
    secret_scalar,
    sign_with_torsion,
    zip215_decode_point,
    zip215_encode_point,
    zip215_verify,
)

TESTS_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = TESTS_DIR.parent
PROJECT_VECTORS_DIR = TESTS_DIR / "vectors"


PUBLIC_VECTORS_DIR = PROJECT_VECTORS_DIR / "public"


def load_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_vectors_from_file(relative: str, loader, *, base: Path = PUBLIC_VECTORS_DIR):
    """``loader(parsed_json)`` applied to ``base/relative`` (default: the public suites in the repository)."""
    return loader(load_json(base / relative))


@dataclass(frozen=True)
class SigVector:
    """One Ed25519 verification case."""

    suite: str
    name: str  # stable, human-readable id (used as pytest id)
    public_key: bytes
    message: bytes
    signature: bytes
    expected: bool | None  # the suite's own verdict under ZIP-215 where it has one
    flags: tuple[str, ...] = field(default=())

    @property
    def item(self) -> tuple[bytes, bytes, bytes]:
        return (self.public_key, self.message, self.signature)


# -- public suites ----------------------------------------------------------------------------------

CCTV_ACCEPTED = 826
SPECCHECK_ACCEPTED_CASES = frozenset({0, 1, 2, 3, 4, 5, 9, 10, 11})
WYCHEPROOF_ACCEPTED = 89
# Wycheproof marks tcId 151 invalid; it is valid under ZIP-215 (documented in tests/vectors/public/README.md).
WYCHEPROOF_ZIP215_DEVIATIONS = frozenset({151})
RFC8032_ACCEPTED = 5


def _cctv(data) -> list[SigVector]:
    return [
        SigVector(
            suite="cctv",
            name=f"cctv-{entry['number']}",
            public_key=bytes.fromhex(entry["key"]),
            message=entry["msg"].encode("utf-8"),
            signature=bytes.fromhex(entry["sig"]),
            expected=None,  # CCTV gives flags, not verdicts
            flags=tuple(entry.get("flags") or ()),
        )
        for entry in data
    ]


def _speccheck(data) -> list[SigVector]:
    return [
        SigVector(
            suite="speccheck",
            name=f"speccheck-{i}",
            public_key=bytes.fromhex(entry["pub_key"]),
            message=bytes.fromhex(entry["message"]),
            signature=bytes.fromhex(entry["signature"]),
            expected=i in SPECCHECK_ACCEPTED_CASES,
        )
        for i, entry in enumerate(data)
    ]


def _wycheproof(data) -> list[SigVector]:
    out = []
    for group in data["testGroups"]:
        pk = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            valid = test["result"] == "valid"
            if test["tcId"] in WYCHEPROOF_ZIP215_DEVIATIONS:
                valid = True
            out.append(
                SigVector(
                    suite="wycheproof",
                    name=f"wycheproof-{test['tcId']}",
                    public_key=pk,
                    message=bytes.fromhex(test["msg"]),
                    signature=bytes.fromhex(test["sig"]),
                    expected=valid,
                    flags=tuple(test.get("flags") or ()),
                )
            )
    return out


def _rfc8032(data) -> list[SigVector]:
    return [
        SigVector(
            suite="rfc8032",
            name=f"rfc8032-{entry['name']}",
            public_key=bytes.fromhex(entry["public_key"]),
            message=bytes.fromhex(entry["message"]),
            signature=bytes.fromhex(entry["signature"]),
            expected=bool(entry.get("valid", True)),
        )
        for entry in data["vectors"]
    ]


def load_cctv() -> list[SigVector]:
    return load_vectors_from_file("cctv/ed25519vectors.json", _cctv)


def load_speccheck() -> list[SigVector]:
    return load_vectors_from_file("speccheck/cases.json", _speccheck)


def load_wycheproof() -> list[SigVector]:
    return load_vectors_from_file("wycheproof/ed25519_test.json", _wycheproof)


def load_rfc8032() -> list[SigVector]:
    return load_vectors_from_file("rfc8032/rfc8032_7_1_ed25519.json", _rfc8032)


PUBLIC_SUITES = {
    # suite: (loader, number of cases, number accepted under ZIP-215)
    "cctv": (load_cctv, 914, CCTV_ACCEPTED),
    "speccheck": (load_speccheck, 12, len(SPECCHECK_ACCEPTED_CASES)),
    "wycheproof": (load_wycheproof, 151, WYCHEPROOF_ACCEPTED),
    "rfc8032": (load_rfc8032, 5, RFC8032_ACCEPTED),
}


# -- the project's own vectors ----------------------------------------------------------------------


def unhex_value(value: Any) -> Any:
    """JSON form of a canonical value -> Python: ``{"hex": ".."}`` is bytes, lists/dicts recurse."""
    if isinstance(value, dict):
        if set(value) == {"hex"} and isinstance(value["hex"], str):
            return bytes.fromhex(value["hex"])
        return {k: unhex_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unhex_value(v) for v in value]
    return value


def load_protocol() -> dict[str, Any]:
    """tests/vectors/protocol.json: "envelopes" (complete), "refused", "accepted_edge_cases"."""
    return load_json(PROJECT_VECTORS_DIR / "protocol.json")


def load_edge() -> list[SigVector]:
    """tests/vectors/edge.json as SigVectors; ``expected`` is the ZIP-215 verdict, and the flags say
    what a cofactorless check gives ("cofactorless:true"/"cofactorless:false")."""
    data = load_json(PROJECT_VECTORS_DIR / "edge.json")
    return [
        SigVector(
            suite="edge",
            name=v["name"],
            public_key=bytes.fromhex(v["public_key"]),
            message=bytes.fromhex(v["message"]),
            signature=bytes.fromhex(v["signature"]),
            expected=bool(v["zip215"]),
            flags=(f"cofactorless:{str(bool(v['cofactorless'])).lower()}",),
        )
        for v in data["vectors"]
    ]


def refused_bytes(vector: dict[str, Any]) -> bytes:
    """A refused vector's bytes: "hex", or "hex_parts" (each part's hex repeated "repeat" times)."""
    if "hex" in vector:
        return bytes.fromhex(vector["hex"])
    return b"".join(bytes.fromhex(part["hex"]) * int(part.get("repeat", 1)) for part in vector["hex_parts"])
