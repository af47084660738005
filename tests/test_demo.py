"""`vrm demo`, the README's first command, tells the federation's story and it is true: the lead goes
to the matching vendor only, the offers reach the person, the acceptance lands in the records; then
the vendor gets the shipping address under a one-use grant, is refused a second time, the grant is
revoked, the deletion confirmed and the receipt log verifies."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from cli.demo import MASK, SHIPPING_ADDRESS, run_demo, run_envelope_demo


def test_the_demo_story_happens_on_three_real_nodes():
    out = io.StringIO()
    started = time.monotonic()
    assert run_demo(console=Console(file=out, width=200)) == 0, out.getvalue()
    assert time.monotonic() - started < 15
    text = out.getvalue()
    assert len(re.findall(r"http://127\.0\.0\.1:\d+", text)) == 3

    # Each vendor has exactly the lead its subscription matches, though both heard both intents.
    leads = {line.split("│")[1].strip(): line for line in text.splitlines() if "#1: ?" in line}
    assert set(leads) == {"Acme Air", "Blue Bikes"}
    assert "?flight SFO->JFK" in leads["Acme Air"] and "?bike" not in leads["Acme Air"]
    assert "?bike near:9q8yy" in leads["Blue Bikes"] and "?flight" not in leads["Blue Bikes"]

    # Both offers reached the person, with the vendor's handle and the price.
    offers = [line for line in text.splitlines() if "│ @" in line]
    assert any("@acme-air" in line and "349.00 USD" in line for line in offers), offers
    assert any("@blue-bikes" in line and "749.00 USD" in line for line in offers), offers

    # The acceptance came back to the vendor and landed in the person's records.
    assert "Acme Air sees its offer accepted, Blue Bikes its offer declined" in text
    assert "@acme-air (Acme Air) is now one of her vendors" in text
    timeline = text.split("is now one of her vendors", 1)[1]
    assert re.search(r"bought \?flight SFO->JFK max:400USD", timeline), timeline
    assert "Accepted offer" in timeline

    # The last act: consented access, in the order the story tells it.
    act = text.split("Consented access", 1)[1]
    steps = [
        "asks for shipping_address",
        "approves it for one use",
        "Acme fetches with a signed request",
        "A second fetch is refused: budget_spent",
        "Alice revokes the grant",
        "deletion confirmed",
        "Alice's receipt log",
        "verify-log: intact: 2 receipts, chained and signed",
    ]
    positions = [act.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))
    # The address is printed once: where the vendor fetched it; the vault shows it masked.
    assert text.count(SHIPPING_ADDRESS) == 1
    assert re.search(rf"shipping_address = {re.escape(SHIPPING_ADDRESS)}", act)
    assert f"shipping_address = {MASK}" in act
    log = act.split("Alice's receipt log", 1)[1]
    rows = [line for line in log.splitlines() if "│ Acme Air" in line]
    assert [line.split("│")[5].strip() for line in rows] == ["ok", "budget_spent"], rows
    assert "the demo stalled" not in text and "done in" in text


def test_a_stalled_step_is_named_and_the_nodes_still_stop(monkeypatch):
    monkeypatch.setattr("cli.demo.STEP_TIMEOUT_S", 0)  # no step can happen in no time
    out = io.StringIO()
    assert run_demo(console=Console(file=out, width=200)) == 1
    assert "the demo stalled: waited 0 s for Acme Air to learn Alice's URL" in out.getvalue()


def test_the_envelope_demo_verifies_the_good_and_names_each_refusal():
    out = io.StringIO()
    assert run_envelope_demo(batch_size=64, console=Console(file=out, width=200)) == 0
    text = out.getvalue()
    assert "Single ZIP-215 verification: ok" in text
    assert "id matches: True" in text
    for row, verdict in (("a valid intent", "ok"), ("SFO changed to LAX", "bad_signature"),
                         ("expired yesterday", "expired"), ("a truncated envelope", "malformed")):  # fmt: skip
        line = next(line for line in text.splitlines() if row in line)
        assert f" {verdict} " in line, line
    assert "61 accepted, 3 refused" in text
