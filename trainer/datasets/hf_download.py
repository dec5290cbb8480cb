"""Hugging Face downloads into the workspace's models/ folder, through huggingface_hub.

huggingface_hub builds the URLs (HF_ENDPOINT honoured, read at call time), sends HF_TOKEN or the given token,
and resumes a broken file from its `.incomplete` part. The LFS etag it reports is the file's sha256, which
is checked once the file is complete.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tqdm.auto import tqdm

from trainer.datasets.downloads import Progress
from trainer.datasets.fetch import CONNECT_TIMEOUT_S, DownloadError, check_sha256

_HF_FILE = re.compile(r"^([\w.-]+/[\w.-]+)/(.+)$")


def endpoint() -> str | None:
    """HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def hf_download(source: str, models_dir: Path, token: str | None, report: Progress) -> Path:
    """`org/name/file` -> models/<file>; `org/name` -> models/<org>--<name>/ with the files a trainer needs."""
    import huggingface_hub

    from trainer.models.hub import probe_timeout_s, select_repo_files

    m = _HF_FILE.match(source)
    if m and "." in m.group(2).rsplit("/", 1)[-1]:
        return _file(m.group(1), m.group(2), models_dir, token, report)
    repo = source
    try:  # one request with a timeout: list_repo_files retried an unreachable hub for 23 s before failing
        info = huggingface_hub.HfApi(endpoint=endpoint(), token=token).model_info(repo, timeout=probe_timeout_s())
        wanted = select_repo_files(repo, [s.rfilename for s in info.siblings or []])
    except Exception as exc:
        raise _explain(repo, exc) from exc
    folder = models_dir / repo.replace("/", "--")
    for name in wanted:
        _file(repo, name, folder, token, report)
    return folder


def _file(repo: str, name: str, folder: Path, token: str | None, report: Progress) -> Path:
    import huggingface_hub

    url = huggingface_hub.hf_hub_url(repo, name, endpoint=endpoint())
    try:
        meta = huggingface_hub.get_hf_file_metadata(url, token=token, timeout=CONNECT_TIMEOUT_S, endpoint=endpoint())
        local = huggingface_hub.hf_hub_download(repo, name, local_dir=folder, token=token, endpoint=endpoint(),
                                                etag_timeout=CONNECT_TIMEOUT_S, tqdm_class=_bar(report, name))
    except Exception as exc:
        raise _explain(repo, exc) from exc
    check_sha256(Path(local), meta.etag, Path(local).name)  # the LFS etag is the file's sha256
    return Path(local)


def _bar(report: Progress, name: str) -> type[tqdm]:
    """A silent tqdm that hands huggingface_hub's byte counts to `report`."""

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no console bar; a disabled tqdm does not count, so count here
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)

        def update(self, n=1):
            self.done += int(n or 0)
            report(name, self.done, int(self.total or 0))

    return Bar


def _explain(repo: str, exc: Exception) -> DownloadError:
    """huggingface_hub's error as a DownloadError with the Hub's own advice (trainer.models.hub words it)."""
    from trainer.models.hub import ModelSourceError
    from trainer.models.hub import explain_hub_error as hub_words

    if isinstance(exc, DownloadError):
        return exc
    return DownloadError(str(exc) if isinstance(exc, ModelSourceError) else hub_words(repo, exc))
