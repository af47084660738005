"""The project's protocol vectors (tests/vectors/protocol.json, PROTOCOL.md section 4) on both backends.

Every complete vector is rebuilt from its seed and fields, byte for byte; every refused vector gives its
reason; the vectors printed in PROTOCOL.md are the ones in the JSON; and the generator reproduces the
committed files.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import pytest

from node.identity import Identity
from node.reasons import ENVELOPE_REASONS, Reason
from tests.vectors.loaders import (
    PROJECT_DIR,
    Author,
    canonical,
    envelope_map,
    load_protocol,
    reason_of,
    refused_bytes,
    unhex_value,
)

PROTOCOL = load_protocol()
ENVELOPES = PROTOCOL["envelopes"]
REFUSED = PROTOCOL["refused"]
ACCEPTED_EDGE = PROTOCOL["accepted_edge_cases"]


def test_the_vector_file_covers_the_spec():
    assert len(ENVELOPES) >= 3
    assert {Reason(v["code"]) for v in REFUSED} == ENVELOPE_REASONS - {Reason.OK}
    for v in REFUSED:
        assert Reason(v["code"]).label == v["reason"], v["name"]
    assert {v["kind"] for v in ENVELOPES} <= set(
        ("accept", "decline", "deletion", "grant", "intent", "offer", "receipt", "request", "revoke", "withdraw")
    )


def test_intent_vectors_carry_valid_section_5_bodies(backend):
    """Another implementation copies these vectors: an intent among them must be a valid intent."""
    from node.intents import check_body

    intents = [v for v in ENVELOPES if v["kind"] == "intent"]
    assert intents
    for vector in intents:
        parsed, terms = check_body(unhex_value(vector["body"]), backend=backend)
        assert parsed.tokens and terms


@pytest.mark.parametrize("vector", ENVELOPES, ids=[v["name"] for v in ENVELOPES])
def test_complete_vector(backend, vector):
    seed = bytes.fromhex(vector["seed"])
    pk = bytes.fromhex(vector["public_key"])
    body = unhex_value(vector["body"])
    kind, created, expires = vector["kind"], vector["created"], vector["expires"]
    signed = bytes.fromhex(vector["signed_bytes"])
    sig = bytes.fromhex(vector["signature"])
    id_ = bytes.fromhex(vector["id"])
    raw = bytes.fromhex(vector["envelope"])

    # keys and signature from the seed, by two implementations (Ed25519 is deterministic)
    assert Identity.from_seed(seed).public_key == pk
    assert Author(seed).public_key == pk
    assert Identity.from_seed(seed).sign(signed) == sig
    assert Author(seed).sign(signed) == sig

    # the backend reproduces every byte
    assert backend.signed_bytes(pk, body, created, expires, kind) == signed
    assert signed.startswith(backend.SIGNING_PREFIX)
    assert backend.encode_envelope(pk, body, created, expires, kind, sig) == raw
    assert hashlib.sha256(signed).digest() == id_
    assert backend.decode_envelope(raw) == (1, kind, pk, created, expires, body, sig, signed, id_)
    # ... and so does msgpack-python
    assert canonical(envelope_map(None, public_key=pk, body=body, kind=kind, created=created, expires=expires, sig=sig)) == raw

    now = vector.get("valid_at", created + 1)
    verifier = backend.Verifier()
    assert tuple(verifier.verify_one(raw, now)) == (0, id_)
    assert tuple(verifier.verify_batch([raw, raw], now)) == (b"\x00\x00", id_ * 2)
    assert verifier.verify_one(raw, expires)[0] == Reason.EXPIRED

    from node import envelope

    made = envelope.create(Identity.from_seed(seed), kind, body, created=created, expires=expires, backend=backend)
    assert made.raw == raw and made.id == id_ and made.sig == sig


@pytest.mark.parametrize("vector", REFUSED, ids=[v["name"] for v in REFUSED])
def test_refused_vector(backend, vector):
    raw = refused_bytes(vector)
    reason = Reason(vector["code"])
    assert reason.label == vector["reason"]
    now = vector["now_ms"]
    verifier = backend.Verifier()
    code, id_ = verifier.verify_one(raw, now)
    assert Reason(code) == reason
    codes, ids = verifier.verify_batch([raw], now)
    assert codes == bytes([reason]) and ids == id_
    if reason <= Reason.BAD_EXPIRY:
        assert id_ == bytes(32)
        assert reason_of(backend.decode_envelope, raw) == reason
    else:
        assert id_ == backend.decode_envelope(raw)[8]


def test_refused_vectors_in_batches(native, reference):
    """All refused vectors with the same clock in one batch, with the valid base envelope around them."""
    by_now: dict[int, list[dict]] = {}
    for v in REFUSED:
        by_now.setdefault(v["now_ms"], []).append(v)
    for now, vectors in by_now.items():
        items = [refused_bytes(v) for v in vectors]
        expected = bytes(v["code"] for v in vectors)
        for backend in (native, reference):
            codes, ids = backend.Verifier().verify_batch(items, now)
            assert codes == expected, (backend, now)
        assert native.Verifier().verify_batch(items, now) == reference.Verifier().verify_batch(items, now)


@pytest.mark.parametrize("vector", ACCEPTED_EDGE, ids=[v["name"] for v in ACCEPTED_EDGE])
def test_accepted_edge_case(backend, vector):
    raw = bytes.fromhex(vector["hex"])
    id_ = bytes.fromhex(vector["id"])
    verifier = backend.Verifier()
    assert tuple(verifier.verify_one(raw, vector["now_ms"])) == (0, id_)
    # in a batch with the ordinary vectors and a bad one, still accepted (cofactored batch == single)
    others = [bytes.fromhex(v["envelope"]) for v in ENVELOPES]
    bad = bytearray(raw)
    bad[-10] ^= 1  # inside S
    items = others + [raw, bytes(bad)]
    now = vector["now_ms"]
    codes, ids = verifier.verify_batch(items, now)
    expected = [verifier.verify_one(item, now)[0] for item in items]
    assert list(codes) == expected
    assert codes[-2] == 0 and codes[-1] == Reason.BAD_SIGNATURE
    assert ids[-64:-32] == id_


# -- PROTOCOL.md ----------------------------------------------------------------------------------------

PROTOCOL_MD = (PROJECT_DIR / "PROTOCOL.md").read_text(encoding="utf-8")
BLOCK = PROTOCOL_MD[PROTOCOL_MD.index("<!-- vectors:begin -->") : PROTOCOL_MD.index("<!-- vectors:end -->")]


def printed_envelopes() -> dict[str, dict[str, str]]:
    """``#### Envelope `name``` sections: label in the first 13 columns, wrapped values joined."""
    out = {}
    for match in re.finditer(r"#### Envelope `([^`]+)`\s*```text\n(.*?)```", BLOCK, re.S):
        fields: dict[str, list[str]] = {}
        label = None
        for line in match.group(2).splitlines():
            head, value = line[:13].strip(), line[14:] if len(line) > 13 else ""
            if head:
                label = head
                fields[label] = []
            assert label is not None, line
            fields[label].append(value.strip() if label != "body" else value)
        out[match.group(1)] = {k: ("\n".join(v) if k == "body" else "".join(v)) for k, v in fields.items()}
    return out


def test_protocol_md_envelopes_match_the_json(backend):
    printed = printed_envelopes()
    assert len(printed) >= 2
    by_name = {v["name"]: v for v in ENVELOPES}
    for name, fields in printed.items():
        vector = by_name[name]
        for key in ("seed", "public_key", "kind", "signed_bytes", "signature", "id", "envelope"):
            assert fields[key] == vector[key], (name, key)
        assert int(fields["created"]) == vector["created"] and int(fields["expires"]) == vector["expires"]
        assert json.loads(fields["body"]) == vector["body"], name
        # the printed bytes are themselves right, not only equal to the JSON
        raw = bytes.fromhex(fields["envelope"])
        code, id_ = backend.Verifier().verify_one(raw, int(fields["created"]) + 1)
        assert (code, id_.hex()) == (0, fields["id"])
        assert hashlib.sha256(bytes.fromhex(fields["signed_bytes"])).hexdigest() == fields["id"]


def test_protocol_md_refused_table_matches_the_json():
    rows = re.findall(r"^\| `([^`]+)` \| (.*?) \| (\d*) \| (\d+) \| `([a-z_]+)` \|$", BLOCK, re.M)
    assert [name for name, *_ in rows] == [v["name"] for v in REFUSED]
    for (name, what, now, code, reason), vector in zip(rows, REFUSED):
        assert int(code) == vector["code"] and reason == vector["reason"] == Reason(int(code)).label, name
        if now:
            assert int(now) == vector["now_ms"], name
    default_now = {v["now_ms"] for v, row in zip(REFUSED, rows) if not row[2]}
    assert len(default_now) == 1


def _printed_refused_bytes() -> dict[str, bytes]:
    """The hex block after the refused table, read as a second implementer would: a line with a name
    starts a vector, a line without continues it, `hex × n` is that run repeated."""
    block = BLOCK.split("The bytes of each, in hex", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    printed: dict[str, bytearray] = {}
    name = None
    for line in block.splitlines():
        label, rest = line[: line.index(" ")], line[line.index(" ") :].strip()
        if label:
            name = label
            printed[name] = bytearray()
        run, times = (rest.split(" × ") + ["1"])[:2]
        printed[name] += bytes.fromhex(run) * int(times)
    return {k: bytes(v) for k, v in printed.items()}


def test_protocol_md_prints_every_refused_vector_byte_for_byte(reference):
    printed = _printed_refused_bytes()
    assert list(printed) == [v["name"] for v in REFUSED]
    for vector in REFUSED:
        assert printed[vector["name"]] == refused_bytes(vector), vector["name"]
        assert reference.Verifier().verify_one(printed[vector["name"]], vector["now_ms"])[0] == vector["code"]


def test_node_id_vectors():
    from node.nodeid import decode_node_id, encode_node_id

    vectors = PROTOCOL["node_ids"]
    assert len(vectors) >= 3
    for vector in vectors:
        key = bytes.fromhex(vector["public_key"])
        assert encode_node_id(key) == vector["node_id"] and vector["node_id"].startswith("vrm1")
        assert len(vector["node_id"]) == 62 and decode_node_id(vector["node_id"].upper()) == key
        assert f"node_id       {vector['node_id']}" in BLOCK


def test_protocol_md_reason_table_matches_reasons_py():
    rows = re.findall(r"^\| (\d+) \| `([a-z_]+)` \|", PROTOCOL_MD, re.M)
    assert [(int(code), label) for code, label in rows] == [(int(r), r.label) for r in Reason]


def test_generator_reproduces_the_committed_files():
    result = subprocess.run(
        [sys.executable, "-m", "tests.vectors.generate", "--check"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
