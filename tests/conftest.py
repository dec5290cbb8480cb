"""Shared test fixtures: a running app on a free port and a Playwright page in Debian's chromium."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

# Under pytest-xdist (pyproject's addopts: two workers) each worker and what it starts uses one torch thread, set
# here before anything imports torch: with two threads each, the workers' threads spun at every barrier waiting for
# a core the other held (the suite took 2869 s of wall and 5160 s of CPU, 670 s and 880 s with one thread each).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
SCREENSHOTS = ROOT / "tests" / "_artifacts" / "screenshots"


def app_env() -> dict[str, str]:
    """The environment of an app under test (and of the engine runs it starts). One OpenMP thread: the engine
    trains beside the app and chromium, and on a 2-core machine torch's second thread waits (spinning) at every
    barrier for a core they hold; a tiny SDXL step took 1.5-6 s so, 0.15 s with one thread."""
    return dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
                OMP_NUM_THREADS="1")


_DEMO_BUILT: list[Path] = []  # the demo model, built at most once per test process


def seed_demo_model(workspace: Path) -> None:
    """Put the demo model into `workspace` as the app would build it on its first page load (the Novice plan
    measures it): a copy of one built once per test process, not the 5-7 s of CPU each fresh workspace's app
    spends building its own. The build on a first page load stays tested: test_ui_novice_run opts out."""
    from trainer.models.demo import DEMO_NAME, ensure_demo_model

    target = workspace / "models" / DEMO_NAME
    if target.exists():
        return
    if not _DEMO_BUILT:
        cache = tempfile.mkdtemp(prefix="danlu-test-demo-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        _DEMO_BUILT.append(ensure_demo_model(Path(cache)))
    shutil.copytree(_DEMO_BUILT[0], target)


def start_in_own_group(argv: list[str], stdout: Path, stderr: Path | None = None, **popen) -> subprocess.Popen:
    """Start `argv` now and return at once, in a process group of its own (kill_groups ends it with everything it
    started), its output to files: a pipe nobody reads yet could fill and stall it. stderr=None joins stdout."""
    with open(stdout, "w") as out, open(stderr, "w") if stderr else contextlib.nullcontext(subprocess.STDOUT) as err:
        return subprocess.Popen(argv, stdout=out, stderr=err, start_new_session=True, **popen)


def kill_groups(procs) -> None:
    """Kill what a test started and did not wait for (a failed test), with the processes it started."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.1)
    raise TimeoutError(f"app did not answer at {url}")


@pytest.fixture
def offline(monkeypatch):
    """No network for this test: the Hub's offline switch is on (HF_HUB_OFFLINE=1) and any connection fails."""
    import huggingface_hub.constants

    def refuse(*args, **kwargs):
        raise OSError("network access during a local load")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def start_app(tmp_path):
    """Factory: start_app(workspace=None, lang='en', extra=[], demo_model=True) -> base URL of a running
    `python app.py`; demo_model=False leaves the demo model for the app to build (see seed_demo_model)."""
    procs: list[subprocess.Popen] = []

    def _start(workspace: Path | None = None, lang: str = "en", extra: list[str] | None = None,
               demo_model: bool = True) -> str:
        port = free_port()
        ws = Path(workspace or tmp_path / "workspace")
        if demo_model:
            seed_demo_model(ws)
        log = open(tmp_path / f"app-{port}.log", "w")
        cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--workspace", str(ws), "--lang", lang]
        proc = subprocess.Popen(cmd + (extra or []), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=app_env())
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/", proc)
        except Exception:
            log.flush()
            raise RuntimeError((tmp_path / f"app-{port}.log").read_text()[-4000:]) from None
        return url

    yield _start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `apt-get install -y chromium` (.ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot for reviewers under tests/_artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
