"""Fetch base models and VAEs into the workspace's models/ folder from where people get them.

A source is one of:
- a Hugging Face repo id `org/name` (a diffusers model: the files a trainer needs) or `org/name/file.safetensors`;
- a Civitai model version: `civitai:<version id>`, or a civitai.com link naming `modelVersionId=` or
  `/api/download/models/<id>`;
- any other http(s) link to a file.
Hugging Face goes through huggingface_hub (HF_ENDPOINT and HF_TOKEN honoured; it resumes broken downloads);
links and Civitai through trainer.datasets.fetch (HTTP Range resume). Every file with a published sha256
(the Hub's LFS etag, Civitai's hashes.SHA256) is checked. Files land directly in models/ (a diffusers repo as
models/<org>--<name>/), which is where the model fields look.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from trainer.datasets.fetch import CONNECT_TIMEOUT_S, DownloadError, fetch, file_name, unreachable

Progress = Callable[[str, int, int], None]  # (file, bytes done, bytes total)
CIVITAI = "https://civitai.com"
_HF_FILE = re.compile(r"^([\w.-]+/[\w.-]+)/(.+\.(safetensors|ckpt|pt|bin))$")
_HF_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_CIVITAI_ID = re.compile(r"^civitai:(\d+)$", re.IGNORECASE)


def civitai_endpoint() -> str:
    """Civitai's base URL; CIVITAI_ENDPOINT points it at a mirror (or a test server)."""
    return os.environ.get("CIVITAI_ENDPOINT", CIVITAI).rstrip("/")


def civitai_version(source: str) -> int | None:
    """The model-version id a Civitai source names, or None when it is not a Civitai source."""
    m = _CIVITAI_ID.match(source)
    if m:
        return int(m.group(1))
    parts = urlsplit(source)
    on_civitai = parts.netloc.endswith("civitai.com") or source.startswith(civitai_endpoint() + "/")
    query = parse_qs(parts.query)
    if on_civitai and "modelVersionId" in query:
        return int(query["modelVersionId"][0])
    m = re.search(r"/api/download/models/(\d+)", parts.path) or re.search(r"/model-versions/(\d+)", parts.path)
    if on_civitai and m:
        return int(m.group(1))
    if not parts.netloc.endswith("civitai.com"):
        return None  # a plain link (the Civitai mirror may serve other files too)
    raise DownloadError(f"{source}: this Civitai link names no model version; open the version you want and copy "
                        "its link (it has ?modelVersionId=...). / 该 Civitai 链接没有指明模型版本。")


def download(source: str, models_dir: Path, *, civitai_token: str = "", hf_token: str = "",
             progress: Progress | None = None) -> Path:
    """Fetch `source` into `models_dir`; returns the file or diffusers folder. Raises DownloadError."""
    source = (source or "").strip()
    if not source:
        raise DownloadError("Enter a Hugging Face id, a Civitai model version or a link. / 请填写下载来源。")
    report = progress or (lambda name, done, total: None)
    version = civitai_version(source)
    if version is not None:
        return _civitai(version, models_dir, civitai_token or os.environ.get("CIVITAI_API_TOKEN", ""), report)
    if source.startswith(("http://", "https://")):
        guess = file_name(source)
        name = guess if "." in guess else None  # a name known up front lets a broken download resume
        return fetch(source, models_dir, name=name, progress=lambda d, t: report(name or source, d, t))
    if _HF_FILE.match(source) or _HF_REPO.match(source):
        from trainer.datasets.hf_download import hf_download

        return hf_download(source, models_dir, hf_token or None, report)
    raise DownloadError(f"'{source}' is neither a Hugging Face id (org/name), a Civitai version (civitai:123) nor "
                        "an http(s) link. / 无法识别的下载来源。")


def _civitai(version: int, models_dir: Path, token: str, report: Progress) -> Path:
    """Ask Civitai's API which file the version has (name, link, sha256), then fetch it."""
    api = f"{civitai_endpoint()}/api/v1/model-versions/{version}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(api, headers=headers, timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S))
    except httpx.TransportError as exc:
        raise unreachable(api, exc) from exc
    if answer.status_code == 404:
        raise DownloadError(f"Civitai has no model version {version}; check the number. / Civitai 上没有版本 {version}。")
    if answer.status_code >= 400:
        raise DownloadError(f"Civitai answered HTTP {answer.status_code} for version {version}. / "
                            f"Civitai 返回 HTTP {answer.status_code}。")
    files = answer.json().get("files") or []
    chosen = next((f for f in files if f.get("primary")), files[0] if files else None)
    if not chosen:
        raise DownloadError(f"Civitai version {version} lists no files. / 该版本没有文件。")
    sha = (chosen.get("hashes") or {}).get("SHA256")
    name = Path(chosen["name"]).name
    return fetch(chosen["downloadUrl"], models_dir, name=name, sha256=sha, headers=headers,
                 progress=lambda d, t: report(name, d, t))
