"""The page's locks, without a browser: no page or API without a session, a forged cross-site POST is
refused and changes nothing, the login token works once, the headers a browser enforces are there.

Requests go through httpx.ASGITransport to the page app of a real running node (the same app, auth and
store the admin listener serves), so what is checked is what a browser would meet.
"""

from __future__ import annotations

import re

import httpx
import pytest
import trio

from node.clock import wall_clock_ms
from node.intents import Intents
from node.vault import Vault
from node.home import init_home
from node.identity import Identity
from node.keystore import derive_vault_key, load_identity
from tests.fednet import FAST, FedNet, Node

TIMEOUT = 30
ORIGIN = "http://127.0.0.1"
PERSON_PAGES = ["/ui/", "/ui/intents", "/ui/offers", "/ui/vendors", "/ui/search?q=x", "/ui/vault", "/ui/access", "/ui/peers"]
VENDOR_PAGES = ["/ui/", "/ui/sent", "/ui/subscriptions", "/ui/trends", "/ui/held", "/ui/peers"]


@pytest.fixture
async def net(nursery, tmp_path):
    yield FedNet(nursery, tmp_path)


def client_for(node: Node, *, lan: bool = False) -> httpx.AsyncClient:
    assert node.runtime is not None
    app = node.runtime._ui_app(lan=lan)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN)


async def login(node: Node, client: httpx.AsyncClient) -> str:
    """Sign in through a fresh one-time link; the session's CSRF token."""
    token, _ = node.runtime.ui_auth.mint()  # what `vrm ui` asks the daemon for
    page = await client.get(f"/ui/login?t={token}")
    assert page.status_code == 200 and token in page.text
    done = await client.post("/ui/login", data={"token": token}, headers={"origin": ORIGIN})
    assert done.status_code == 303 and done.headers["location"] == "/ui/"
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    home = await client.get("/ui/")
    return re.search(r'data-csrf="([^"]+)"', home.text)[1]


async def test_no_page_api_or_stream_without_a_session(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        acme = await net.node("acme", "vendor")
        for node, pages in ((alice, PERSON_PAGES), (acme, VENDOR_PAGES)):
            async with client_for(node) as client:
                for path in pages + ["/ui/api/parse?text=%3Fflight", "/ui/events", "/ui/access/export"]:
                    response = await client.get(path, headers={"accept": "text/html"})
                    assert response.status_code == 401, path
                    assert "vrm ui" in response.text
                client.cookies.set("vrm_session", "made-up", path="/ui")
                assert (await client.get("/ui/")).status_code == 401
                # and with a session, every page answers
                await login(node, client)
                for path in pages:
                    response = await client.get(path)
                    assert response.status_code == 200, (path, response.text[:500])
                if node is acme:
                    preview = (await client.get("/ui/api/subscription", params={"text": "?flight max<=500USD"})).json()
                    assert preview["ok"] and preview["tokens"] == ["flight"]
                    assert preview["comparisons"] == ["max <= 500 USD"]
                    bad = (await client.get("/ui/api/subscription", params={"text": "?flight max<=abc"})).json()
                    assert bad["ok"] is False and bad["message"]
        # The link endpoint is for the admin token's holder alone
        async with client_for(alice) as client:
            assert (await client.post("/ui/link")).status_code == 401
            wrong = await client.post("/ui/link", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
            link = await client.post("/ui/link", headers={"authorization": f"Bearer {alice.runtime._token}"})
            assert link.status_code == 200 and link.json()["path"].startswith("/ui/login?t=")


async def test_the_login_token_works_once(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        token, _ = alice.runtime.ui_auth.mint()
        async with client_for(alice) as first:
            ok = await first.post("/ui/login", data={"token": token}, headers={"origin": ORIGIN})
            assert ok.status_code == 303
            assert (await first.get("/ui/")).status_code == 200
        async with client_for(alice) as second:
            again = await second.post("/ui/login", data={"token": token}, headers={"origin": ORIGIN})
            assert again.status_code == 401 and "used already" in again.text
            assert "set-cookie" not in again.headers
            assert (await second.get("/ui/")).status_code == 401
            # the used token appears nowhere on the page any more
            assert token not in (await second.get("/ui/login?t=")).text


async def test_a_forged_cross_site_post_is_refused_and_changes_nothing(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        async with client_for(alice) as client:
            csrf = await login(node=alice, client=client)
            cast = {"action": "cast", "text": "Need ?flight SFO->JFK", "expires": "7d"}
            forged = [
                ({**cast}, {"origin": "http://evil.example"}),  # no token, another origin
                ({**cast, "csrf": csrf}, {"origin": "http://evil.example"}),  # token leaked, origin wrong
                ({**cast, "csrf": "guess"}, {"origin": ORIGIN}),  # right origin, wrong token
                ({**cast, "csrf": csrf}, {}),  # no Origin header at all
                ({**cast, "csrf": csrf}, {"origin": ORIGIN, "sec-fetch-site": "cross-site"}),
            ]
            for data, headers in forged:
                response = await client.post("/ui/intents", data=data, headers=headers)
                assert response.status_code == 403, (data, headers)
            assert await alice.read(lambda s: Intents(s).list(status="all")) == []
            # the same form from the page itself goes through
            ok = await client.post("/ui/intents", data={**cast, "csrf": csrf}, headers={"origin": ORIGIN})
            assert ok.status_code == 303
            [intent] = await alice.read(lambda s: Intents(s).list(status="all"))
            assert intent.tokens == ("flight",)


async def test_a_refused_form_shows_the_reason_by_its_field_and_changes_nothing(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        async with client_for(alice) as client:
            csrf = await login(alice, client)
            bad = {"action": "cast", "text": "Need ?flight max:abcUSD", "expires": "7d", "csrf": csrf}
            response = await client.post("/ui/intents", data=bad, headers={"origin": ORIGIN})
            assert response.status_code == 400
            assert 'id="err-text"' in response.text and 'aria-invalid="true"' in response.text
            assert "Need ?flight max:abcUSD" in response.text  # what she typed is kept
            assert await alice.read(lambda s: Intents(s).list(status="all")) == []
            preview = (await client.get("/ui/api/parse", params={"text": "Need ?flight max:abcUSD"})).json()
            assert preview["ok"] is False and preview["word"]
            good = (await client.get("/ui/api/parse", params={"text": "Need ?flight SFO->JFK #work"})).json()
            assert good["ok"] and good["tokens"] == ["flight"] and good["tags"] == ["work"]


async def test_security_headers_and_the_vault_value_only_with_the_passphrase(net, tmp_path):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        await alice.op("vault.set", {"name": "email", "value": "SECRET-alice@example.org"})
        async with client_for(alice) as client:
            csrf = await login(alice, client)
            page = await client.get("/ui/vault")
            csp = page.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
            assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
            assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
            assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
            assert assets and all(a.startswith("/ui/static/") for a in assets)  # no third-party origin
            assert "email" in page.text and "SECRET" not in page.text
            shown = await client.post(
                "/ui/vault", data={"action": "reveal", "name": "email", "passphrase": "", "csrf": csrf},
                headers={"origin": ORIGIN},
            )
            # a home without a passphrase: the value is shown (there is nothing to re-enter)
            assert shown.status_code == 200 and "SECRET-alice@example.org" in shown.text
            assert (await alice.read(lambda s: Vault(s, None).list()))[0].name == "email"


async def test_the_lan_listener_needs_the_pairing_code_and_keeps_its_sessions_apart(net):
    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        token, pairing = alice.runtime.ui_auth.mint()
        async with client_for(alice, lan=True) as phone:
            wrong = await phone.post("/ui/login", data={"token": token, "pairing": "000000" if pairing != "000000" else "111111"}, headers={"origin": ORIGIN})
            assert wrong.status_code == 401
            # a wrong code spent the token: guessing codes against one link is one guess
            again = await phone.post("/ui/login", data={"token": token, "pairing": pairing}, headers={"origin": ORIGIN})
            assert again.status_code == 401
            token, pairing = alice.runtime.ui_auth.mint()
            ok = await phone.post("/ui/login", data={"token": token, "pairing": pairing}, headers={"origin": ORIGIN})
            assert ok.status_code == 303
            assert (await phone.get("/ui/")).status_code == 200
            assert (await phone.post("/ui/link", headers={"authorization": f"Bearer {alice.runtime._token}"})).status_code == 401
            session = phone.cookies.get("vrm_session")
        async with client_for(alice) as laptop:
            laptop.cookies.set("vrm_session", session, path="/ui")
            assert (await laptop.get("/ui/")).status_code == 401


async def test_a_vault_value_is_shown_only_after_the_passphrase(net, tmp_path):
    with trio.fail_after(TIMEOUT):
        passphrase = "correct horse battery"
        home = init_home(tmp_path / "bob", passphrase, "person")
        options = {**FAST, "vault_key": derive_vault_key(home.key_path, passphrase)}
        bob = await net.start(Node("bob", home, load_identity(home.key_path, passphrase), options))
        await bob.op("vault.set", {"name": "email", "value": "SECRET-bob@example.org"})
        async with client_for(bob) as client:
            csrf = await login(bob, client)
            ask = {"action": "reveal", "name": "email", "csrf": csrf}
            wrong = await client.post("/ui/vault", data={**ask, "passphrase": "guess"}, headers={"origin": ORIGIN})
            assert wrong.status_code == 409 and "SECRET" not in wrong.text
            assert 'id="err-passphrase-reveal"' in wrong.text  # the reason, next to the passphrase field
            right = await client.post("/ui/vault", data={**ask, "passphrase": passphrase}, headers={"origin": ORIGIN})
            assert right.status_code == 200 and "SECRET-bob@example.org" in right.text
            assert "SECRET" not in (await client.get("/ui/vault")).text  # shown once, not kept


async def test_the_peers_page_shows_each_peers_score_and_why(net):
    from node.peers import Peers
    from node.scores import Scores, Standing

    with trio.fail_after(TIMEOUT):
        alice = await net.node("alice")
        flaky = Identity.generate()

        def misbehaved(store):
            with store.transaction():
                Peers(store).add(public_key=flaky.public_key, url="http://flaky.test", role="vendor", name="Flaky")
            standing = Standing(flaky.public_key.hex())
            now = wall_clock_ms()
            for _ in range(3):  # three malformed batches: 100 - 3 x 20 = 40, under the throttle line
                standing.offend({"malformed_batch": 1}, now=now)
            Scores(store).save(standing, now)

        await alice.read(misbehaved)
        async with client_for(alice) as client:
            await login(alice, client)
            page = (await client.get("/ui/peers")).text
            assert "Flaky" in page and "40.0 (throttled)" in page and "malformed_batch ×3" in page
