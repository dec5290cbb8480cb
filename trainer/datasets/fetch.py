"""Download one file over HTTP(S) into a folder: progress, resume of a broken download (HTTP Range), sha256 check.

The file grows as `<name>.part` and is renamed only once complete and verified, so a half file is never taken
for a model. Secrets (tokens in headers) never appear in messages: errors name the host and path only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from trainer.textio import plain_name

CONNECT_TIMEOUT_S = 5.0  # offline or a blocked host: say so within seconds
READ_TIMEOUT_S = 60.0
CHUNK = 1 << 20
Progress = Callable[[int, int], None]  # (bytes done, bytes total or 0 when unknown)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(RuntimeError):
    """A download failed; the message says what happened and what to do (en / zh)."""


class ChecksumMismatch(DownloadError):
    pass


def shown(url: str) -> str:
    """The URL without its query (which may carry a token), for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def file_name(url: str, response: httpx.Response | None = None) -> str:
    """The server's file name (Content-Disposition), else the URL's last path part; made safe for a folder."""
    found = None
    if response is not None:
        disposition = response.headers.get("content-disposition", "")
        m = re.search(r"filename\*=(?:UTF-8'')?([^;]+)|filename=\"?([^\";]+)\"?", disposition)
        found = unquote((m.group(1) or m.group(2)).strip()) if m else None
    name = Path(found or unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or "download").name
    return plain_name(name) or "download"


def sha256_of(path: Path, h=None):
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h


def unreachable(url: str, exc: Exception) -> DownloadError:
    host = urlsplit(url).netloc
    return DownloadError(f"cannot reach {host} ({type(exc).__name__}). Check the internet connection, a proxy or "
                         f"HF_ENDPOINT for a mirror, then try again; the part already downloaded is kept. / "
                         f"无法连接 {host}（{type(exc).__name__}）。请检查网络、代理或镜像设置（HF_ENDPOINT）后重试；"
                         "已下载的部分会保留。")


def fetch(url: str, folder: Path, *, name: str | None = None, sha256: str | None = None,
          headers: dict[str, str] | None = None, progress: Progress | None = None) -> Path:
    """Download `url` into `folder` (resuming `<name>.part`), check `sha256` when known; return the file.

    An existing complete file with the right checksum is returned at once; one with another checksum (or no
    checksum to compare) is never overwritten: that is an error naming it."""
    folder.mkdir(parents=True, exist_ok=True)
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    try:
        with httpx.Client(follow_redirects=True, timeout=timeout, headers=headers or {}) as client:
            return _fetch(client, url, folder, name, (sha256 or "").lower() or None, progress)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise unreachable(url, exc) from exc
    except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
        raise DownloadError(f"the download from {urlsplit(url).netloc} broke off ({type(exc).__name__}); start it "
                            "again: it resumes where it stopped. / 下载中断；再次开始即可从中断处继续。") from exc


def _fetch(client: httpx.Client, url: str, folder: Path, name: str | None, sha256: str | None,
           progress: Progress | None) -> Path:
    if name and (folder / name).exists():
        return _existing(folder / name, sha256)
    part = folder / f"{name}.part" if name else None
    start = part.stat().st_size if part and part.exists() else 0
    request_headers = {"Range": f"bytes={start}-"} if start else {}
    with client.stream("GET", url, headers=request_headers) as response:
        if response.status_code == 416 and part:  # the part is already complete
            return _finish(part, folder / name, sha256)
        _check_status(url, response)
        name = name or file_name(str(response.url), response)
        target, part = folder / name, folder / f"{name}.part"
        if target.exists():
            return _existing(target, sha256)
        resumed = response.status_code == 206 and start > 0
        done = start if resumed else 0
        total = done + int(response.headers.get("content-length", 0) or 0)
        with open(part, "ab" if resumed else "wb") as out:
            for block in response.iter_bytes():  # as it arrives: a broken connection keeps what came
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    return _finish(part, target, sha256)


def _check_status(url: str, response: httpx.Response) -> None:
    if response.status_code in (401, 403):
        raise DownloadError(f"{shown(url)} refused access ({response.status_code}): this file needs a token "
                            "(Hugging Face: HF_TOKEN; Civitai: CIVITAI_API_TOKEN or the token field). / "
                            f"{shown(url)} 拒绝访问（{response.status_code}）：该文件需要令牌。")
    if response.status_code == 404:
        raise DownloadError(f"{shown(url)} was not found (404): check the id or link. / "
                            f"{shown(url)} 不存在（404）：请检查编号或链接。")
    if response.status_code >= 400:
        raise DownloadError(f"{shown(url)} answered HTTP {response.status_code}; try again later. / "
                            f"{shown(url)} 返回 HTTP {response.status_code}；请稍后重试。")


def _existing(target: Path, sha256: str | None) -> Path:
    if sha256 and sha256_of(target).hexdigest() == sha256:
        return target
    raise DownloadError(f"{target} already exists{' with other content' if sha256 else ''}; it is not overwritten. "
                        f"Delete or rename it to download again. / {target} 已存在，不会被覆盖；如需重新下载请先删除或改名。")


def _finish(part: Path, target: Path, sha256: str | None) -> Path:
    check_sha256(part, sha256, target.name)
    part.replace(target)
    return target


def check_sha256(path: Path, sha256: str | None, name: str) -> None:
    """Compare `path` with a published sha256 (anything that is not one, e.g. a plain etag, is skipped);
    on a mismatch delete it (a wrong file must not be used or resumed) and raise ChecksumMismatch."""
    if not sha256 or not _SHA256.match(sha256.lower()):
        return
    got = sha256_of(path).hexdigest()
    if got != sha256.lower():
        path.unlink()
        raise ChecksumMismatch(f"{name}: sha256 {got[:12]}… does not match the site's {sha256.lower()[:12]}…; the "
                               f"file was deleted. Download it again. / {name}：sha256 与网站给出的不一致，文件已删除，请重新下载。")
