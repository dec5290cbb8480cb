"""Turn a base-model spec (local path or Hugging Face repo id) into a local path, downloading with progress."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import huggingface_hub
from huggingface_hub import constants
from huggingface_hub import errors as hf_errors
from tqdm.auto import tqdm

Progress = Callable[[str, float], None]

# Diffusers subfolders a trainer needs; safety_checker, feature_extractor, image_encoder are skipped.
COMPONENTS = ("scheduler", "tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2", "unet", "vae",
              "transformer")
# Plain fp32 weights, possibly sharded; variants (`.fp16.`, `.non_ema.`, `.ema.`) have an extra dot part.
_WEIGHTS = re.compile(r"^(diffusion_pytorch_model|model)(-\d+-of-\d+)?\.(safetensors|bin)$")
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_REPO_FILE = re.compile(r"^([\w.-]+/[\w.-]+)/(.+\.(safetensors|ckpt))$")
LOCAL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
# huggingface_hub's client waits without limit on a connection that never answers, then retries for minutes;
# one request with this timeout (per connect and per read; the client tries twice) first turns "no network"
# into an error within about 15 s. HF_HUB_ETAG_TIMEOUT, the hub's own setting for its metadata requests, replaces
# it when the user sets it (a slow mirror may need longer).
PROBE_TIMEOUT_S = 6.0
MIRROR_EXAMPLE = "https://hf-mirror.com"
LOCAL_MODEL_HINT = "download the model yourself and enter its local path (a diffusers folder or a .safetensors file)"


class ModelSourceError(ValueError):
    """The spec names nothing loadable; the message names it and says what to do."""


def resolve_base_model(spec: str, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return a local path for `spec`: a diffusers folder or a single checkpoint file.

    Local folders and files are returned as they are. `org/name` downloads the diffusers files a trainer
    needs into `cache_dir` (the Hugging Face cache layout, so a second call is instant and works offline);
    `org/name/file.safetensors` downloads that one file. `progress(message, fraction)` is told as it goes.
    """
    spec = spec.strip()
    if not spec:
        raise ModelSourceError("no base model given: enter a local path or a Hugging Face id like org/name.")
    local = Path(spec).expanduser()
    if local.exists():
        return _check_local(local)
    repo_file = _REPO_FILE.match(spec)
    if repo_file:
        return _download(repo_file.group(1), [repo_file.group(2)], Path(cache_dir), progress) / repo_file.group(2)
    if _REPO_ID.match(spec):
        _tell(progress, spec)
        try:
            files = hub_files(spec)
        except ModelSourceError as exc:
            return _cached_or_raise(spec, [], Path(cache_dir), exc)
        return _download(spec, select_repo_files(spec, files), Path(cache_dir), progress, listed=True)
    raise ModelSourceError(f"base model not found: {spec}. No such file or folder here, and it is not a "
                           f"Hugging Face id (org/name). Check the path for typos.")


def _check_local(path: Path) -> Path:
    if path.is_dir() or path.suffix.lower() in LOCAL_SUFFIXES:
        return path
    raise ModelSourceError(f"{path} is not a model: use a diffusers folder or a {'/'.join(LOCAL_SUFFIXES)} file.")


def select_repo_files(repo_id: str, files: list[str]) -> list[str]:
    """The files of a repo a trainer needs: model_index.json, and per component its configs, tokenizer
    files and one copy of the weights (fp32 safetensors, else fp32 .bin). A repo without model_index.json
    is taken as a single component (e.g. a VAE repo with config.json at its root)."""
    folders = COMPONENTS if "model_index.json" in files else ("",)
    chosen = ["model_index.json"] if "model_index.json" in files else []
    for folder in folders:
        inside = [f for f in files if str(PurePosixPath(f).parent) == (folder or ".")]
        names = {f: PurePosixPath(f).name for f in inside}
        chosen += [f for f in inside if names[f].endswith((".json", ".txt", ".model")) or folder.startswith("tok")]
        weights = [f for f in inside if _WEIGHTS.match(names[f])]
        safetensors = [f for f in weights if f.endswith(".safetensors")]
        chosen += safetensors or weights
    chosen = sorted(set(chosen))
    if not any(_WEIGHTS.match(PurePosixPath(f).name) for f in chosen):
        raise ModelSourceError(
            f"{repo_id} has no diffusers fp32 weights Danlu can use. If it holds a single checkpoint, enter "
            f"it as {repo_id}/<file>.safetensors.")
    return chosen


def downloading_message(name: str) -> str:
    return f"downloading {name} from the Hugging Face Hub"


def _tell(progress: Progress | None, repo_id: str) -> None:
    if progress is not None:
        progress(downloading_message(repo_id), 0.0)


def hub_files(repo_id: str, local_hint: str = LOCAL_MODEL_HINT) -> list[str]:
    """The repo's file names, from one request that gives up after probe_timeout_s(); a ModelSourceError that
    names the repo and the ways out (`local_hint`, a mirror) when the hub cannot be asked."""
    try:
        info = huggingface_hub.HfApi().model_info(repo_id, timeout=probe_timeout_s())
    except Exception as exc:
        raise ModelSourceError(explain_hub_error(repo_id, exc, local_hint)) from exc
    return [s.rfilename for s in info.siblings or []]


def probe_timeout_s() -> float:
    """Seconds the hub probe waits: the user's HF_HUB_ETAG_TIMEOUT when set to a number, else PROBE_TIMEOUT_S."""
    try:
        return float(os.environ["HF_HUB_ETAG_TIMEOUT"])
    except (KeyError, ValueError):
        return PROBE_TIMEOUT_S


def _cached_or_raise(repo_id: str, files: list[str], cache_dir: Path, error: ModelSourceError) -> Path:
    """Offline, but downloaded before: the cached snapshot when it holds `files` (all of them); else `error`,
    the hub's own message with its advice."""
    try:
        cached = Path(huggingface_hub.snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
    except Exception:
        cached = None
    if cached is None or not all((cached / name).is_file() for name in files):
        raise error
    return cached


def download_files(repo_id: str, files: list[str], cache_dir: Path, progress: Progress | None = None) -> Path:
    """Download `files` of a hub repo into `cache_dir` with progress; return the local snapshot folder."""
    return _download(repo_id, files, Path(cache_dir), progress)


def _download(repo_id: str, files: list[str], cache_dir: Path, progress: Progress | None,
              listed: bool = False) -> Path:
    report = progress or (lambda message, fraction: None)
    if not listed:
        _tell(progress, repo_id)
        try:
            hub_files(repo_id)  # fails fast when the hub does not answer; the downloads themselves retry for minutes
        except ModelSourceError as exc:
            return _cached_or_raise(repo_id, files, cache_dir, exc)
    snapshot = None
    for i, name in enumerate(files):
        report(f"{downloading_message(repo_id)}: {name} ({i + 1}/{len(files)})", i / len(files))
        try:
            local = huggingface_hub.hf_hub_download(repo_id, name, cache_dir=cache_dir,
                                                    tqdm_class=_file_progress(report, repo_id, name, i, len(files)))
        except Exception as exc:
            raise ModelSourceError(explain_hub_error(repo_id, exc)) from exc
        snapshot = Path(local).parents[len(PurePosixPath(name).parts) - 1]
    report(f"downloaded {repo_id}", 1.0)
    return snapshot


def _file_progress(report: Progress, repo_id: str, name: str, index: int, count: int) -> type[tqdm]:
    """A tqdm class that turns huggingface_hub's byte counter into `report` calls for the whole download."""

    class FileBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no console bar; the GUI shows the progress
            super().__init__(*args, **kwargs)
            self.done = 0  # a disabled tqdm stops counting self.n, so keep our own count

        def update(self, n=1):
            super().update(n)
            self.done += n or 0
            if self.total:
                share = min(self.done / self.total, 1.0)
                report(f"{downloading_message(repo_id)}: {name} ({index + 1}/{count}, {share:.0%})",
                       (index + share) / count)

    return FileBar


def explain_hub_error(repo_id: str, exc: Exception, local_hint: str = LOCAL_MODEL_HINT) -> str:
    """One line for the user: what failed for `repo_id`, and what to do (`local_hint` says how to use a local
    copy instead)."""
    if isinstance(exc, hf_errors.GatedRepoError):
        return (f"{repo_id} is gated: accept its licence on huggingface.co, then log in with "
                f"`huggingface-cli login` (or set HF_TOKEN) and try again.")
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return (f"{repo_id} was not found on the Hugging Face Hub: check the id for typos; if it is private, "
                f"log in with `huggingface-cli login` (or set HF_TOKEN).")
    # LocalEntryNotFoundError ("not reachable and not cached") is a subclass of EntryNotFoundError.
    if isinstance(exc, hf_errors.LocalEntryNotFoundError) or _is_network_error(exc):
        return (f"could not download {repo_id}: the Hugging Face Hub ({constants.ENDPOINT}) is unreachable "
                f"(no answer, or offline mode) and the model is not in the cache. Offline or behind a firewall? "
                f"Set HF_ENDPOINT to a mirror before starting Danlu (e.g. HF_ENDPOINT={MIRROR_EXAMPLE}), or "
                f"{local_hint}.")
    if isinstance(exc, (hf_errors.EntryNotFoundError, hf_errors.RevisionNotFoundError)):
        return f"{repo_id}: file missing in the repo ({exc}). Check the file name."
    return (f"could not download {repo_id}: {exc}. If the network is the problem, set HF_ENDPOINT to a mirror "
            f"(e.g. HF_ENDPOINT={MIRROR_EXAMPLE}), or {local_hint}.")


def _is_network_error(exc: BaseException | None) -> bool:
    # httpx's ConnectError/ReadTimeout are not OSError subclasses, so look along the chain by name too.
    while exc is not None:
        if isinstance(exc, (ConnectionError, TimeoutError)) or "Connect" in type(exc).__name__ \
                or "Timeout" in type(exc).__name__:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
