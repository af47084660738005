"""`make pi-check`: the aarch64 wheel run for real, under qemu-user, in an arm64 Debian root.

What a Raspberry Pi OS (64-bit, Debian bookworm) user gets, emulated on this machine:

1. an arm64 bookworm root made once with ``debootstrap --foreign --variant=minbase`` and every deb it
   downloaded unpacked with ``dpkg -x`` (no second stage, no binfmt registration, no root chroot),
   cached in ``~/.cache/vrm-pi`` (``VRM_PI_CACHE``) so a rerun starts at once;
2. the aarch64 wheel and its dependencies (aarch64 manylinux wheels from PyPI) installed with
   ``pip install --platform … --target SITE``, one SITE per wheel digest, also cached;
3. ``qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.11`` running `vrm init`, the three-node demo,
   an idle `vrm serve` (its RSS after it settles) and a short test subset (the native codec against
   the pure-Python reference, node ids, the protocol vectors) copied out of the source tree, so
   nothing is imported from it (its native library is x86_64).

Each step prints its wall time and peak RSS (qemu's own memory included: the figure is an upper
bound of what the Pi uses). A step that fails stops the check with its output.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PYTHON = "usr/bin/python3.11"
TEST_DEPS = ("pytest>=8", "pytest-trio>=0.8", "hypothesis>=6.100", "http-message-signatures>=3,<4")
TESTS = ("test_codec.py", "test_codec_refusals.py", "test_nodeid.py", "test_protocol_vectors.py")
# Without binfmt registration a child process cannot be an arm64 binary: tests that spawn Python are left out.
DESELECT = ("tests/test_protocol_vectors.py::test_generator_reproduces_the_committed_files",)
# pip --platform takes exact tags: every manylinux level a bookworm (glibc 2.36) system accepts that
# PyPI projects publish for aarch64.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")


def cache_dir() -> Path:
    return Path(os.environ.get("VRM_PI_CACHE") or Path.home() / ".cache" / "vrm-pi")


def arm64_root(cache: Path) -> Path:
    """The unpacked arm64 root, made on first use (a few minutes of downloads), then reused."""
    root = cache / f"{SUITE}-arm64"
    if (root / ".complete").exists():
        return root
    partial = cache / f"{SUITE}-arm64.partial"
    shutil.rmtree(partial, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", "--include=python3,python3-venv",
         SUITE, str(partial), MIRROR],
        check=True,
    )
    debs = sorted((partial / "var" / "cache" / "apt" / "archives").glob("*.deb"))
    for deb in debs:
        subprocess.run(["dpkg", "-x", str(deb), str(partial)], check=True)
    (partial / ".complete").write_text(f"{len(debs)} debs\n")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def site_packages(cache: Path, wheel: Path, pip: list[str]) -> Path:
    """The wheel, its dependencies and the test tools for aarch64 CPython 3.11, in one directory."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
    site = cache / f"site-{digest}"
    if (site / ".complete").exists():
        return site
    partial = Path(str(site) + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [*pip, "install", "--quiet", "--disable-pip-version-check", *platforms, "--only-binary=:all:",
         "--python-version", "3.11", "--implementation", "cp", "--target", str(partial), str(wheel), *TEST_DEPS],
        check=True,
    )
    (partial / ".complete").write_text(wheel.name + "\n")
    partial.rename(site)
    return site


def qemu() -> str:
    found = shutil.which("qemu-aarch64-static") or "/usr/bin/qemu-aarch64-static"
    if not Path(found).exists():
        sys.exit("qemu-aarch64-static is missing: .ci/ensure-debs qemu-user-static")
    return found


def emulated(root: Path, site: Path, env: dict[str, str]) -> list[str]:
    sets = [arg for k, v in {**env, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}.items()
            for arg in ("-E", f"{k}={v}")]
    return [qemu(), "-L", str(root), *sets, str(root / PYTHON)]


def step(
    name: str, command: list[str], *, cwd: Path | None = None, timeout: float = 1800, tail: bool = False
) -> tuple[float, int]:
    """Run ``command``; print and return its wall seconds and peak RSS (MiB)."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = b""
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
        time.sleep(0.05)
    output = process.stdout.read() if process.stdout else b""  # type: ignore[union-attr]
    seconds = time.monotonic() - started
    peak = usage.ru_maxrss // 1024
    code = os.waitstatus_to_exitcode(status)
    print(f"{name:<28} {seconds:7.1f} s   peak RSS {peak:4d} MiB   exit {code}", flush=True)
    if code != 0:
        sys.stdout.write(output.decode("utf-8", "replace")[-6000:])
        sys.exit(f"pi-check: {name} failed")
    if tail:  # e.g. pytest's "N passed in T s"
        lines = [line for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
        print(f"{'':<28} {lines[-1] if lines else ''}", flush=True)
    return seconds, peak


def idle_rss(command: list[str], cwd: Path, settle: float = 5.0) -> int:
    """RSS (MiB) of an idle `vrm serve` once it listens and has settled."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd)
    try:
        for _ in range(3):  # node, federation, admin
            if not process.stdout.readline():  # type: ignore[union-attr]
                sys.exit("pi-check: vrm serve ended before listening")
        time.sleep(settle)
        status = Path(f"/proc/{process.pid}/status").read_text()
        kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        return kib // 1024
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel-dir", type=Path, default=ROOT_DIR / "dist")
    parser.add_argument("--no-tests", action="store_true", help="Skip the test subset.")
    args = parser.parse_args()
    wheels = sorted(args.wheel_dir.glob("vrm_node-*-abi3-*aarch64*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        sys.exit(f"no aarch64 wheel in {args.wheel_dir}: run `make wheels`")
    wheel = wheels[-1]
    cache = cache_dir()
    total = time.monotonic()
    print(f"pi-check: {wheel.name}; cache {cache}; load average {os.getloadavg()[0]:.2f}", flush=True)
    root = arm64_root(cache)
    site = site_packages(cache, wheel, [sys.executable, "-m", "pip"])
    with tempfile.TemporaryDirectory(prefix="vrm-pi-") as work:
        work_dir = Path(work)
        env = {"VRM_HOME": str(work_dir / "home"), "HOME": str(work_dir), "LANG": "C.UTF-8"}
        python = emulated(root, site, env)
        # cwd: the work directory, never the source tree (whose node/ holds an x86_64 library)
        step("import the native core", [*python, "-c", "import node._native"], cwd=work_dir)
        step("vrm init", [*python, "-m", "cli", "init", "--no-passphrase"], cwd=work_dir)
        step("vrm demo (three nodes)", [*python, "-m", "cli", "demo"], cwd=work_dir, timeout=900)
        rss = idle_rss([*python, "-m", "cli", "serve", "--port", "0"], cwd=work_dir)
        print(f"{'idle vrm serve RSS':<28} {rss:4d} MiB (under qemu, emulator included)", flush=True)
        if not args.no_tests:
            shutil.copytree(ROOT_DIR / "tests", work_dir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copy(ROOT_DIR / "PROTOCOL.md", work_dir)  # its vectors are checked against the spec
            step(
                "pytest subset",
                [*python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "trio_mode=true",
                 *(f"tests/{t}" for t in TESTS), *(arg for t in DESELECT for arg in ("--deselect", t))],
                cwd=work_dir,
                tail=True,
            )
    print(f"pi-check passed in {time.monotonic() - total:.0f} s", flush=True)


if __name__ == "__main__":
    main()
