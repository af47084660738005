"""Node ids: Bech32m (BIP-350) text of the public key that catches typos."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import IdentityError
from node.identity import Identity
from node.nodeid import HRP, bech32m_decode, bech32m_encode, decode_node_id, encode_node_id, is_node_id

# BIP-350, "Test vectors for Bech32m", copied literally.
BIP350_VALID = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
BIP350_INVALID = [
    "\x20" + "1xj0phk",  # HRP character out of range
    "\x7f" + "1g6xzxy",  # HRP character out of range
    "\x80" + "1vctc34",  # HRP character out of range
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",  # too long
    "qyrz8wqd2c9m",  # no separator character
    "1qyrz8wqd2c9m",  # empty HRP
    "y1b0jsk6g",  # invalid data character
    "lt1igcx5c0",  # invalid data character
    "in1muywd",  # too short checksum
    "mm1crxm3i",  # invalid character in checksum
    "au1s5cgom",  # invalid character in checksum
    "M1VUXWEZ",  # checksum calculated with uppercase form of HRP
    "16plkw9",  # empty HRP
    "1p2gdwpf",  # empty HRP
]
# BIP-173 valid Bech32 strings: a Bech32 checksum is not a Bech32m checksum.
BECH32_NOT_BECH32M = ["A12UEL5L", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "?1ezyfcl"]

KEY = Identity.from_seed(bytes(range(32))).public_key


@pytest.mark.parametrize("text", BIP350_VALID)
def test_bip350_valid_strings_decode_and_reencode(text):
    hrp, data = bech32m_decode(text)
    assert bech32m_encode(hrp, data) == text.lower()


@pytest.mark.parametrize("text", BIP350_INVALID + BECH32_NOT_BECH32M)
def test_bip350_invalid_strings_are_refused(text):
    with pytest.raises(IdentityError):
        bech32m_decode(text)


def test_node_id_shape():
    node_id = encode_node_id(KEY)
    assert node_id.startswith(HRP + "1") and len(node_id) == 62
    assert node_id == node_id.lower()
    assert decode_node_id(node_id) == KEY
    assert decode_node_id(node_id.upper()) == KEY  # one case throughout is fine (QR codes use upper)


@given(st.binary(min_size=32, max_size=32))
def test_round_trip(key):
    assert decode_node_id(encode_node_id(key)) == key


def test_every_single_character_substitution_is_caught():
    node_id = encode_node_id(KEY)
    alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    tried = 0
    for i, original in enumerate(node_id):
        for replacement in alphabet + "1bio":
            if replacement == original:
                continue
            typo = node_id[:i] + replacement + node_id[i + 1 :]
            with pytest.raises(IdentityError):
                decode_node_id(typo)
            tried += 1
    assert tried > 60 * 30


def test_swapped_neighbours_and_dropped_characters_are_caught():
    node_id = encode_node_id(KEY)
    for i in range(4, len(node_id) - 1):
        if node_id[i] != node_id[i + 1]:
            assert not is_node_id(node_id[:i] + node_id[i + 1] + node_id[i] + node_id[i + 2 :])
        assert not is_node_id(node_id[:i] + node_id[i + 1 :])


def _upper_one_letter(text: str) -> str:
    i = next(i for i in range(4, len(text)) if text[i].isalpha())
    return text[:i] + text[i].upper() + text[i + 1 :]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "vrm1",
        lambda nid: _upper_one_letter(nid),  # mixed case
        lambda nid: "vrx" + nid[3:],  # wrong prefix (and so a bad checksum)
        lambda nid: bech32m_encode("abc", bech32m_decode(nid)[1]),  # valid Bech32m, wrong prefix
        lambda nid: bech32m_encode(HRP, bech32m_decode(nid)[1][:-2]),  # valid Bech32m, 31 bytes
        lambda nid: bech32m_encode(HRP, bech32m_decode(nid)[1] + [0, 0]),  # valid Bech32m, 33 bytes
        lambda nid: bech32m_encode(
            HRP, bech32m_decode(nid)[1][:-1] + [bech32m_decode(nid)[1][-1] | 1]
        ),  # padding
    ],
)
def test_malformed_ids_are_refused(bad):
    node_id = encode_node_id(KEY)
    text = bad(node_id) if callable(bad) else bad
    with pytest.raises(IdentityError):
        decode_node_id(text)


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), "00" * 32])
def test_only_32_byte_keys_encode(key):
    with pytest.raises(IdentityError):
        encode_node_id(key)
