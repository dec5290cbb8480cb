"""A running `python app.py` shared by the tests of one module (starting the app costs seconds each time)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from conftest import ROOT, app_env, free_port, seed_demo_model, wait_http


@contextlib.contextmanager
def running_app(workspace: Path, lang: str = "en", extra: list[str] | None = None,
                root: Path = ROOT) -> Iterator[str]:
    """The base URL of an app serving `workspace` (with the demo model in it), stopped when the block ends.
    `root`: the checkout whose app.py runs (bench/page_load.py measures another one beside this one)."""
    seed_demo_model(workspace)
    port = free_port()
    log_path = workspace.parent / f"app-{port}.log"
    cmd = [sys.executable, str(root / "app.py"), "--port", str(port), "--workspace", str(workspace), "--lang", lang]
    env = app_env() | ({"PYTHONPATH": str(root)} if root != ROOT else {})  # its own trainer/ui, not the install's
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd + (extra or []), cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_http(url + "/", proc)
            except Exception:
                log.flush()
                raise RuntimeError(log_path.read_text()[-4000:]) from None
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for_lora(workspace, name: str, timeout_s: float = 420):
    """The path of the run's final `<name>.safetensors` once it exists (written atomically, so complete)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = list((Path(workspace) / "runs").glob(f"*/output/{name}.safetensors"))
        if found:
            return found[0]
        time.sleep(0.25)
    raise AssertionError(f"no LoRA after {timeout_s}s: {list((Path(workspace) / 'runs').rglob('*'))[:20]}")


def app_process(port: int) -> psutil.Process:
    """The app (a child of this process, at any depth) listening on `port`."""
    for p in psutil.Process().children(recursive=True):
        if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in p.net_connections("tcp")):
            return p
    raise RuntimeError(f"no child process listens on port {port}")
