"""Behind TLS: `vrm serve --tls-cert/--tls-key` terminates HTTPS itself, and a vendor node behind
Debian's nginx (TLS on loopback, a self-signed certificate) takes signed federation requests made to
its public URL — the proxy forwards the host it was asked for (X-Forwarded-Host) — while a proxy
that rewrites the signed path or host gets every request refused, and its admin API answers
through the proxy with its token."""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from federation.admin import PREFIX, read_admin_file
from federation.auth import SignatureAuth, SignatureMiddleware, verified_peer
from federation.limits import ForwardedClient
from federation.noncecache import NonceCache
from node.identity import Identity
from node.leads import Leads
from node.nodeid import encode_node_id
from tests.fednet import FedNet, eventually

ROOT = Path(__file__).resolve().parent.parent
VRM = Path(sys.executable).with_name("vrm")
TIMEOUT = 60
FLIGHT = "Need ?flight SFO->JFK max:400USD"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def certificate(tmp_path):
    return self_signed(tmp_path)


@pytest.fixture(scope="module")
def nginx() -> str:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        subprocess.run([str(ROOT / ".ci" / "ensure-debs"), "nginx"], check=True, timeout=900)
    return shutil.which("nginx") or "/usr/sbin/nginx"


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 8m;
    ssl_certificate {cert};
    ssl_certificate_key {key};

    # The recommended setup: forward the host and scheme the client used; the node trusts this proxy.
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        location / {{
            proxy_pass http://127.0.0.1:{node_port};
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
        # A proxy that strips a prefix changes the signed path.
        location /rewritten/ {{
            proxy_pass http://127.0.0.1:{node_port}/;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
        # The admin API only for this host (the token guards it too).
        location {admin_prefix}/ {{
            allow 127.0.0.1;
            deny all;
            proxy_pass http://127.0.0.1:{admin_port};
        }}
    }}
    # A proxy that rewrites the host (nginx's default Host is the upstream's) and forwards nothing.
    server {{
        listen 127.0.0.1:{bad_port} ssl;
        location / {{ proxy_pass http://127.0.0.1:{node_port}; }}
    }}
}}
"""


def start_nginx(binary: str, prefix: Path, **values) -> subprocess.Popen:
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, admin_prefix=PREFIX, **values))
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", "stderr"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + TIMEOUT
    for port in (values["port"], values["bad_port"]):
        while True:
            assert process.poll() is None, process.communicate()[1].decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
    return process


async def test_federation_and_admin_through_nginx(tmp_path, nginx, certificate, monkeypatch):
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the nodes' httpx clients trust our certificate
    port, bad_port = free_port(), free_port()
    public = f"https://localhost:{port}"
    proxy = None
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            net = FedNet(nursery, tmp_path)
            try:
                acme = await net.node(
                    "acme", "vendor", public_url=public, app_options={"trusted_proxies": frozenset({"127.0.0.1"})}
                )
                await acme.op("subscriptions.add", {"text": "?flight"})
                admin_port = int(acme.runtime.admin_url.rsplit(":", 1)[1])
                proxy = start_nginx(
                    nginx, tmp_path / "nginx", cert=cert, key=key, port=port, bad_port=bad_port,
                    node_port=acme.port, admin_port=admin_port,
                )
                alice = await net.node("alice")

                # Signed GET /v1/node and POST /v1/hello to the public URL, through the proxy.
                peer = await alice.op("peers.add", {"url": public, "node_id": acme.node_id})
                assert (peer["node_id"], peer["url"]) == (acme.node_id, public)
                # A signed gossip push through it too: the intent becomes acme's lead.
                intent = await alice.op("intent.cast", {"text": FLIGHT, "ttl_ms": 3_600_000, "terms": []})
                leads = await eventually(lambda: acme.read(lambda s: Leads(s).list()))
                assert [lead.intent_id for lead in leads] == [intent["id"]]

                signed = httpx.AsyncClient(auth=SignatureAuth(alice.identity), verify=trusting(cert), timeout=10)
                async with signed:
                    assert (await signed.get(public + "/v1/node")).status_code == 200
                    for url in (public + "/rewritten/v1/node", f"https://localhost:{bad_port}/v1/node"):
                        refused = await signed.get(url)
                        assert refused.status_code == 401, url
                        assert refused.headers["Vrm-Signature-Error"] == "bad_signature", url

                admin = read_admin_file(acme.home.path)
                async with httpx.AsyncClient(verify=trusting(cert), timeout=10) as http:
                    status = await http.get(public + PREFIX + "/status", headers={"Authorization": f"Bearer {admin.token}"})
                    assert status.status_code == 200 and status.json()["public_url"] == public
                    assert status.json()["node_id"] == acme.node_id
                    assert (await http.get(public + PREFIX + "/status")).status_code == 401
            finally:
                if proxy is not None:
                    proxy.terminate()
                    proxy.wait(timeout=TIMEOUT)
                await net.stop_all()


async def test_forwarded_host_is_believed_only_from_trusted_proxies():
    signer = Identity.generate()

    async def who(request):
        return PlainTextResponse(verified_peer(request).node_id)

    def app(trusted):
        routes = [Route("/v1/node", who)]
        return SignatureMiddleware(Starlette(routes=routes), nonces=NonceCache(), trusted_proxies=frozenset(trusted))

    # Signed for https://node.example; arrives over plain http at 127.0.0.1:8470 with the forwarded host.
    request = httpx.Request("GET", "https://node.example/v1/node")
    for name, value in SignatureAuth(signer).auth_flow(request).__next__().headers.items():
        request.headers[name] = value
    headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    headers |= {"Host": "127.0.0.1:8470", "X-Forwarded-Host": "node.example", "X-Forwarded-Proto": "https"}
    cases = ((["10.0.0.1"], "10.0.0.1", 200), ([], "10.0.0.1", 401), (["10.0.0.1"], "10.0.0.2", 401))
    for (trusted, client, status), forwarded_for in itertools.product(cases, (False, True)):
        served = app(trusted)
        if forwarded_for:  # as the node serves it: the client the proxy names becomes the source
            served = ForwardedClient(served, trusted_proxies=frozenset(trusted))
        transport = httpx.ASGITransport(served, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport) as http:
            extra = {"X-Forwarded-For": "198.51.100.7"} if forwarded_for else {}
            answer = await http.get("http://127.0.0.1:8470/v1/node", headers=headers | extra)
        assert answer.status_code == status, (trusted, client, forwarded_for)
        if status == 200:
            assert answer.text == encode_node_id(signer.public_key)


def test_vrm_serve_terminates_tls_itself(tmp_path, certificate):
    cert, key = certificate
    home = tmp_path / "node"
    env = {**os.environ, "VRM_HOME": str(home)}
    subprocess.run([str(VRM), "init", "--no-passphrase"], env=env, check=True, capture_output=True, timeout=TIMEOUT)
    bad = subprocess.run(
        [str(VRM), "serve", "--tls-cert", str(cert)], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert bad.returncode == 6 and "server.tls_key" in bad.stderr
    process = subprocess.Popen(
        [str(VRM), "serve", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = dict(process.stdout.readline().strip().split(" ", 1) for _ in range(3))
        url = lines["federation"]
        assert url.startswith("https://127.0.0.1:")
        signer = Identity.generate()
        with httpx.Client(auth=SignatureAuth(signer), verify=trusting(cert), timeout=10) as http:
            answer = http.get(url + "/v1/node")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/msgpack"
        with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP to the TLS port is not served
            httpx.get(url.replace("https://", "http://") + "/v1/node", timeout=5)
    finally:
        process.terminate()
        process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0
