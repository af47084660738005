"""The signed envelopes every benchmark runs on: distinct authors, typical bodies, valid and live."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# The receiver's clock for every verification (passed explicitly, so no envelope expires mid-run).
NOW_MS = 1_750_000_000_000
KINDS = ("intent", "offer", "accept", "request", "grant", "receipt")


@dataclass
class Corpus:
    envelopes: list[bytes]  # full canonical envelopes
    items: list[tuple[bytes, bytes, bytes]]  # (public key, signed bytes, signature) of each
    values: list[dict]  # each envelope as a decoded map (for encode benchmarks)
    pyca_keys: list[Ed25519PublicKey]  # pre-loaded public key of each item
    authors: int

    def __len__(self) -> int:
        return len(self.envelopes)


def typical_body(i: int) -> dict:
    return {
        "amount": 1000 + 37 * i,
        "currency": "EUR",
        "item": f"order line {i}: a second-hand road bike, 56 cm frame",
        "ref": hashlib.sha256(b"ref%d" % i).digest()[:16],
        "tags": ["bike", "used", "pickup"],
        "terms": {"deliver_by": NOW_MS + 86_400_000 * (i % 7), "deposit": 50, "returns": True},
    }


def make_corpus(backend, n: int, authors: int = 64) -> Corpus:
    """n envelopes signed by `authors` distinct keys (round robin), built with `backend`."""
    keys = [Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench-author-%d" % a).digest()) for a in range(authors)]
    publics = [k.public_key() for k in keys]
    raw_publics = [p.public_bytes_raw() for p in publics]
    envelopes, items, values, pyca_keys = [], [], [], []
    for i in range(n):
        a = i % authors
        body = typical_body(i)
        created, expires = NOW_MS - 60_000 - i, NOW_MS + 3_600_000 + i
        kind = KINDS[i % len(KINDS)]
        signed = backend.signed_bytes(raw_publics[a], body, created, expires, kind)
        sig = keys[a].sign(signed)
        raw = backend.encode_envelope(raw_publics[a], body, created, expires, kind, sig)
        envelopes.append(raw)
        items.append((raw_publics[a], signed, sig))
        values.append(backend.decode(raw))
        pyca_keys.append(Ed25519PublicKey.from_public_bytes(raw_publics[a]))
    return Corpus(envelopes, items, values, pyca_keys, authors)


WANTS = ("flight", "hotel", "taxi", "bike", "plumber", "sofa", "laptop", "piano", "tutor", "haircut")
ROUTES = ("SFO->JFK", "LHR->CDG", "BER->MUC", "NRT->SIN")


def make_intents(backend, n: int, authors: int = 64) -> list[bytes]:
    """``n`` signed, live ``intent`` envelopes with section-5 bodies (about one in ten asks for one of
    WANTS, the rest for rarer things), from ``authors`` keys, valid at NOW_MS."""
    from node.intents import parse_intent

    keys = [Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench-intent-%d" % a).digest()) for a in range(authors)]
    publics = [k.public_key().public_bytes_raw() for k in keys]
    out = []
    for i in range(n):
        want = WANTS[(i // 10) % len(WANTS)] if i % 10 == 0 else f"thing{i % 997}"
        text = f"Need ?{want} {ROUTES[i % len(ROUTES)]} before:2027-0{1 + i % 9}-1{i % 10} max:{100 + i % 900}USD #n{i}"
        body = parse_intent(text, backend=backend).body(["no-resale"])
        created, expires = NOW_MS - 60_000 - i, NOW_MS + 86_400_000
        a = i % authors
        signed = backend.signed_bytes(publics[a], body, created, expires, "intent")
        out.append(backend.encode_envelope(publics[a], body, created, expires, "intent", keys[a].sign(signed)))
    return out


def subscriptions(count: int = 40) -> list[tuple]:
    """``count`` compiled subscriptions (MatchIndex input) over WANTS, some narrowed by a tag."""
    return [
        (i, [WANTS[i % len(WANTS)]], [] if i < len(WANTS) else [f"n{i}"], [], [], None, []) for i in range(count)
    ]
