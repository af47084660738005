"""The page in a real browser (Debian's chromium, headless, through Playwright), against real nodes on
loopback: a person, alice, and two vendors, acme (whom she knows) and zephyr (whom she does not).

The journey: she signs in through the one-time link `vrm ui` prints, casts an intent in the page (the
preview shows what the tokenizer understood), both vendors offer through their ops, the offers appear
without a reload beside her records of each vendor, she accepts one; acme asks for access, she first
tries an approval wider than asked (refused next to the field, nothing granted), then approves
narrower; acme fetches, she sees the receipt, revokes, acme's next fetch is refused and the receipt
log verifies. Screenshots of every page at desktop and phone width go to test-artifacts/ui/.

The accessibility test runs axe-core (axe-playwright-python) on every page of both roles: no serious
or critical violation.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import trio

from node.errors import AccessRefused
from node.grants import Grants
from node.leads import Leads
from node.records import Records
from tests.browser import DESKTOP, PHONE, Browser, shoot, until
from tests.fednet import FedNet, eventually

TIMEOUT = 240  # a loaded 2-core CI machine: the journey takes 70-80 s there
DAY = 86_400_000
VRM = Path(sys.executable).with_name("vrm")
PERSON_PAGES = ["", "intents", "offers", "vendors", "vendors/acme", "search?q=seat", "vault", "access", "peers"]
VENDOR_PAGES = ["", "sent", "subscriptions", "trends", "held", "peers"]


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


async def world(net: FedNet):
    """alice with a vault and a history with acme; acme and zephyr listening for flights."""
    alice = await net.node("alice")
    acme = await net.node("acme", "vendor")
    zephyr = await net.node("zephyr", "vendor")
    for vendor in (acme, zephyr):
        await net.peer(alice, vendor)
        await vendor.op("subscriptions.add", {"text": "?flight"})
    for name, value in {"email": "alice@example.org", "shipping_address": "1 Main St", "phone": "555-0199"}.items():
        await alice.op("vault.set", {"name": name, "value": value})

    def history(store):
        records = Records(store)
        vendor = records.add_vendor("Acme", handle="acme", node_id=acme.node_id, engagement="engaged")
        records.add_purchase(vendor.id, "SFO-LAX seat", price_minor=18900, currency="USD")
        records.rate(vendor.id, 4, comment="on time")
        issue = records.open_issue(vendor.id, "lost bag")
        records.add_reply(issue.id, "vendor", "found it, on its way")
        records.resolve_issue(issue.id)

    await alice.read(history)
    return alice, acme, zephyr


async def login_link(home_path: Path) -> str:
    done = await trio.run_process([str(VRM), "--home", str(home_path), "ui"], capture_stdout=True, capture_stderr=True)
    [link] = [line for line in done.stdout.decode().splitlines() if "/ui/login?t=" in line]
    return link.strip()


async def test_her_journey_in_the_browser(net):
    with trio.fail_after(TIMEOUT):
        alice, acme, zephyr = await world(net)
        link = await login_link(alice.home.path)
        async with Browser() as b:
            state: dict = {}

            def sign_in():
                state["ctx"] = b.new_context(DESKTOP)
                state["phone"] = b.new_context(PHONE, is_mobile=True, has_touch=True)
                page = state["page"] = state["ctx"].new_page()
                page.goto(link)
                assert "t=" not in page.url  # the token leaves the address bar at once
                page.get_by_role("button", name="Sign in").press("Enter")  # keyboard alone
                page.wait_for_url("**/ui/")
                shoot(page, "journey-1-signed-in", state["phone"])
                cookie = next(c for c in state["ctx"].cookies() if c["name"] == "vrm_session")
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                # the same link again, in another browser: refused, the token is spent
                other = b.new_context(DESKTOP).new_page()
                other.goto(link)
                other.get_by_role("button", name="Sign in").click()
                assert "used already" in other.content()
                other.context.close()

            await b.do(sign_in)

            def cast():
                page = state["page"]
                page.goto(page.url + "intents")
                box = page.get_by_label("What do you need?")
                box.fill("Need ?flight SFO->JFK max:abcUSD")
                page.wait_for_selector("#intent-preview .refused")
                assert "abcUSD" in page.inner_text("#intent-preview")
                box.fill("Need ?flight SFO->JFK max:400USD #work")
                page.wait_for_selector("#intent-preview .chip >> text=?flight")
                assert "#work" in page.inner_text("#intent-preview")
                page.get_by_role("button", name="Cast intent").click()
                page.wait_for_load_state("load")
                page.wait_for_selector("text=Intent cast.")
                assert "Need ?flight SFO->JFK max:400USD #work" in page.inner_text("#intents-live")
                shoot(page, "journey-2-intent-cast", state["phone"])
                page.goto(page.url.split("/ui/")[0] + "/ui/offers")
                page.evaluate("window.notReloaded = true")
                page.wait_for_selector("body[data-live='connected']")

            await b.do(cast)

            async def lead_of(vendor):
                [lead] = await eventually(lambda: vendor.read(lambda s: Leads(s).list()))
                return lead

            for vendor, price, text in ((acme, 34900, "Acme nonstop, seat 12A"), (zephyr, 31900, "Zephyr via ORD")):
                lead = await lead_of(vendor)
                await vendor.op(
                    "offers.make",
                    {"lead": lead.id, "price_minor": price, "currency": "USD", "text": text, "ttl_ms": DAY},
                )

            def compare_and_accept():
                page = state["page"]
                until(page, "document.querySelectorAll('tr.offer').length === 2")
                assert page.evaluate("window.notReloaded") is True  # it came over the live stream
                until(page, "document.title.startsWith('(2)')")
                rows = page.locator("tr.offer")
                zephyr_row, acme_row = rows.nth(0).inner_text(), rows.nth(1).inner_text()  # cheapest first
                assert "319.00 USD" in zephyr_row and "No history with this vendor" in zephyr_row
                assert "349.00 USD" in acme_row and "4.0/5" in acme_row and "100%" in acme_row
                assert "engaged" in acme_row and re.search(r"\b1\b", acme_row)
                shoot(page, "journey-3-offers-compared", state["phone"])
                rows.nth(1).get_by_role("button", name="Accept").click()
                page.wait_for_selector("text=Offer accepted.")
                page.goto(page.url.split("?")[0] + "?status=accepted")
                assert "Acme nonstop" in page.inner_text("#offers-live")
                page.goto(page.url.split("/ui/")[0] + "/ui/access")
                page.evaluate("window.notReloaded = true")
                page.wait_for_selector("body[data-live='connected']")

            await b.do(compare_and_accept)
            await acme.op(
                "access.request",
                {"person": alice.node_id, "fields": ["email", "shipping_address", "phone"],
                 "purpose": "ship the ticket", "duration_ms": 30 * DAY, "for": None},
            )

            def approve_narrower():
                page = state["page"]
                page.wait_for_selector("form.request", timeout=20_000)
                assert page.evaluate("window.notReloaded") is True
                form = page.locator("form.request")
                form.get_by_label("For how many days").fill("60")  # wider than asked: refused
                form.get_by_role("button", name="Approve").click()
                page.wait_for_selector("#err-days-approve")
                assert "longer than asked" in page.inner_text("#err-days-approve")
                assert "No grants." in page.inner_text("#grants-live")
                form = page.locator("form.request")
                form.get_by_label("phone").uncheck()
                form.get_by_label("For how many days").fill("10")
                form.get_by_label("Uses allowed").fill("3")
                form.get_by_role("button", name="Approve").click()
                page.wait_for_selector("text=Access granted.")
                grant = page.locator("tr.grant").inner_text()
                assert "email, shipping_address" in grant and "phone" not in grant and "0 / 3" in grant

            await b.do(approve_narrower)
            [given] = await alice.read(lambda s: Grants(s).list(direction="given"))
            await eventually(lambda: acme.read(lambda s: Grants(s).list(direction="received")))
            fetched = await acme.op("access.fetch", {"grant": given.id})
            assert fetched["values"] == {"email": "alice@example.org", "shipping_address": "1 Main St"}

            def see_receipt_and_revoke():
                page = state["page"]
                page.wait_for_selector("tr.receipt", timeout=20_000)
                until(page, "document.querySelector('tr.grant').innerText.includes('1 / 3')")
                page.get_by_role("button", name="Revoke").click()
                page.wait_for_selector("text=Grant revoked")
                assert "revoked" in page.inner_text("tr.grant .state")

            await b.do(see_receipt_and_revoke)
            with pytest.raises(AccessRefused):
                await acme.op("access.fetch", {"grant": given.id})

            def receipts_verify():
                page = state["page"]
                page.reload()
                assert len(page.locator("tr.receipt").all()) == 2
                assert page.inner_text("#receipt-verify").startswith("Verified: 2 receipts")
                shoot(page, "journey-4-receipts-verified", state["phone"])
                base = page.url.split("/ui/")[0] + "/ui/"
                for path in PERSON_PAGES:
                    page.goto(base + path)
                    shoot(page, "person-" + (path.split("?")[0].replace("/", "-") or "home"), state["phone"])

            await b.do(receipts_verify)
            vendor_link = await login_link(acme.home.path)

            def vendor_pages():
                ctx = b.new_context(DESKTOP)
                page = ctx.new_page()
                page.goto(vendor_link)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url("**/ui/")
                base = page.url
                for path in VENDOR_PAGES:
                    page.goto(base + path)
                    shoot(page, "vendor-" + (path or "leads"), state["phone"])
                page.goto(base + "sent")
                assert "delivered" in page.inner_text("#sent-live") and "accepted" in page.inner_text("#sent-live")
                page.goto(base + "trends")
                assert page.locator("svg.chart rect.chart-bar").count() >= 1

            await b.do(vendor_pages)


async def test_no_serious_accessibility_violation_on_any_page(net):
    from axe_playwright_python.sync_playwright import Axe

    with trio.fail_after(TIMEOUT):
        alice, acme, _ = await world(net)
        links = {"person": await login_link(alice.home.path), "vendor": await login_link(acme.home.path)}
        async with Browser() as b:

            def scan():
                axe = Axe()
                found = []
                for role, pages in (("person", PERSON_PAGES), ("vendor", VENDOR_PAGES)):
                    page = b.new_context(DESKTOP).new_page()
                    page.goto(links[role])
                    found += _violations(axe, page, f"{role} login")
                    page.get_by_role("button", name="Sign in").click()
                    page.wait_for_url("**/ui/")
                    base = page.url
                    for path in pages:
                        page.goto(base + path)
                        found += _violations(axe, page, f"{role} /{path}")
                return found

            found = await b.do(scan)
        assert found == []


def _violations(axe, page, where: str) -> list[str]:
    results = axe.run(page)
    assert results.response["testEngine"]["name"] == "axe-core"  # it ran, under the page's CSP
    return [
        f"{where}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
