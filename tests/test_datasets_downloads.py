"""Model downloads against a local server that answers like the Hugging Face Hub and Civitai: progress,
resume of a broken download, checksum mismatch, an unreachable host, tokens kept out of messages."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import free_port

from trainer.datasets.downloads import download
from trainer.datasets.fetch import ChecksumMismatch, DownloadError

PAYLOAD = bytes(range(256)) * 4096 * 24  # 24 MiB: more than huggingface_hub writes at once (10 MB)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
TOKEN = "sekrit-token-123"
REPO = ["model_index.json", "README.md", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]


class Fake(BaseHTTPRequestHandler):
    """Routes: /files/<name> (a plain link), the Hub's /<org>/<repo>/resolve/main/<file>, Civitai's API."""

    state: dict = {}

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send_file(self, head: bool, extra: dict | None = None):
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        self.state.setdefault("ranges", []).append(start)
        if self.state.pop("break_once", False):  # a connection that drops half-way
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _json(self, data, status=200):
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path.startswith("/files/"):
            return self._send_file(head)
        if self.path.startswith(("/api/models/org/repo", "/api/models/org/docs")):  # model_info: the file list
            files = REPO if "/org/repo" in self.path else ["README.md", "model.ckpt"]
            return self._json({"id": "org/x", "sha": "a" * 40, "siblings": [{"rfilename": f} for f in files]})
        if "/resolve/main/" in self.path:
            return self._send_file(head, {"X-Repo-Commit": "a" * 40, "ETag": f'"{self.state.get("hub_sha", SHA)}"'})
        if self.path.startswith("/api/v1/model-versions/"):
            version = self.path.rsplit("/", 1)[-1]
            if version == "404":
                return self._json({"error": "not found"}, 404)
            sha = SHA if version == "77" else "0" * 64
            return self._json({"id": int(version), "files": [
                {"name": "other.yaml", "primary": False, "downloadUrl": f"{base}/files/other.yaml"},
                {"name": f"civ{version}.safetensors", "primary": True, "hashes": {"SHA256": sha.upper()},
                 "downloadUrl": f"{base}/api/download/models/{version}"}]})
        if self.path.startswith("/api/download/models/"):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._json({"error": "unauthorized"}, 401)
            return self._send_file(head)
        self._json({"error": "no route"}, 404)


@pytest.fixture
def server(monkeypatch):
    Fake.state = {}
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), Fake)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    monkeypatch.setenv("HF_ENDPOINT", base)
    monkeypatch.setenv("CIVITAI_ENDPOINT", base)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield base
    srv.shutdown()


def test_link_download_reports_progress_and_resumes_a_broken_download(server, tmp_path):
    Fake.state["break_once"] = True
    seen = []
    with pytest.raises(DownloadError, match="broke off"):
        download(f"{server}/files/model.safetensors", tmp_path, progress=lambda n, d, t: seen.append((d, t)))
    part = tmp_path / "model.safetensors.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and not (tmp_path / "model.safetensors").exists()
    got = download(f"{server}/files/model.safetensors", tmp_path, progress=lambda n, d, t: seen.append((d, t)))
    assert got.read_bytes() == PAYLOAD and not part.exists()
    assert Fake.state["ranges"][1] > 0, "the second request asked only for the missing bytes"
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_civitai_version_uses_api_token_and_checks_sha256(server, tmp_path, monkeypatch):
    with pytest.raises(DownloadError, match="token") as refused:
        download("civitai:77", tmp_path)
    monkeypatch.setenv("CIVITAI_API_TOKEN", TOKEN)
    got = download("https://civitai.com/models/5?modelVersionId=77", tmp_path)
    assert got.name == "civ77.safetensors" and got.read_bytes() == PAYLOAD
    with pytest.raises(ChecksumMismatch, match="does not match") as bad:
        download("civitai:78", tmp_path, civitai_token=TOKEN)
    assert not list(tmp_path.glob("civ78*")), "a wrong file is deleted, not kept or resumed"
    for exc in (refused.value, bad.value):
        assert TOKEN not in str(exc)
    with pytest.raises(DownloadError, match="no model version 404"):
        download("civitai:404", tmp_path)


def test_existing_file_is_never_overwritten(server, tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"mine")
    with pytest.raises(DownloadError, match="not overwritten"):
        download(f"{server}/files/model.safetensors", tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == b"mine"


def test_hub_file_through_hf_endpoint_with_sha_check(server, tmp_path):
    seen = []
    got = download("org/repo/model.safetensors", tmp_path, progress=lambda n, d, t: seen.append(d))
    assert got == tmp_path / "model.safetensors" and got.read_bytes() == PAYLOAD
    assert seen and seen[-1] == len(PAYLOAD)
    Fake.state["hub_sha"] = "1" * 64
    with pytest.raises(ChecksumMismatch):
        download("org/repo/vae.safetensors", tmp_path)
    assert not (tmp_path / "vae.safetensors").exists()


def test_unreachable_host_says_so_within_seconds(tmp_path, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    monkeypatch.setenv("CIVITAI_ENDPOINT", closed)
    # "org/repo": huggingface_hub's file listing retried for 23 s before the tab said anything
    for source in (f"{closed}/files/a.safetensors", "civitai:77", "org/repo/model.safetensors", "org/repo"):
        began = time.monotonic()
        with pytest.raises(DownloadError, match="(?i)cannot reach|unreachable"):
            download(source, tmp_path)
        assert time.monotonic() - began < 10, source


def test_hub_repo_download_takes_the_files_a_trainer_needs(server, tmp_path):
    folder = download("org/repo", tmp_path)
    assert folder == tmp_path / "org--repo"
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    assert got == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                   "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]  # no README, no fp16 copy
    assert (folder / "unet/diffusion_pytorch_model.safetensors").read_bytes() == PAYLOAD
    # a repo without diffusers weights is a DownloadError (the tab shows those) that says what to enter instead
    with pytest.raises(DownloadError, match="org/docs/<file>.safetensors"):
        download("org/docs", tmp_path)


def test_hub_download_resumes_a_broken_transfer(server, tmp_path):
    Fake.state["break_once"] = True
    try:  # huggingface_hub may resume by itself at once; if it gives up, starting again resumes
        download("org/repo/model.safetensors", tmp_path)
    except DownloadError:
        pass
    got = download("org/repo/model.safetensors", tmp_path)
    assert got.read_bytes() == PAYLOAD
    assert [r for r in Fake.state["ranges"] if r > 0], "the missing bytes were asked for with a Range"


def test_cli_download_prints_the_file_and_fails_clearly(server, tmp_path, capsys):
    from trainer.__main__ import main

    assert main(["download", f"{server}/files/cli.safetensors", "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(tmp_path / "cli.safetensors") and "(100%)" in out.err
    assert main(["download", "civitai:404", "--models-dir", str(tmp_path)]) == 1
    assert "no model version 404" in capsys.readouterr().err
