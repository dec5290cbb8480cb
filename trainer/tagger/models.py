"""Which WD tagger models exist, where their files come from, and which onnxruntime provider runs them.

A model is a folder holding `model.onnx` and `selected_tags.csv`: either one the user already has, or one
that huggingface_hub downloads from SmilingWolf's repos into the workspace model cache.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainer.textio import read_text

MODEL_FILE = "model.onnx"
TAGS_FILE = "selected_tags.csv"
HUB_OWNER = "SmilingWolf"

# v3 first (better and take a dynamic batch); several v2 exports are fixed at batch 1.
CATALOGUE = (
    "wd-vit-tagger-v3",
    "wd-swinv2-tagger-v3",
    "wd-convnext-tagger-v3",
    "wd-vit-large-tagger-v3",
    "wd-eva02-large-tagger-v3",
    "wd-v1-4-moat-tagger-v2",
    "wd-v1-4-swinv2-tagger-v2",
    "wd-v1-4-convnextv2-tagger-v2",
    "wd-v1-4-vit-tagger-v2",
)
DEFAULT_MODEL = "wd-vit-tagger-v3"

# Category numbers in selected_tags.csv.
RATING, GENERAL, CHARACTER = 9, 0, 4

# "auto" tries these in order. TensorRT is opt-in: it compiles an engine per input shape first (minutes).
AUTO_PROVIDERS = ("CUDAExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
PROVIDER_CHOICES = ("auto", *PROVIDER_ALIASES)

# What to do instead of downloading (the tab's field and the CLI flag that take a local model folder).
LOCAL_FOLDER_HINT = (f"download {MODEL_FILE} and {TAGS_FILE} yourself and give their folder as the local model "
                     f"folder (--model-dir on the command line)")

# on_progress(filename, bytes_done, bytes_total) while a file downloads; (filename, 0, 0) when it starts.
DownloadProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Labels:
    names: list[str]
    categories: list[int]

    def indices(self, category: int) -> list[int]:
        return [i for i, c in enumerate(self.categories) if c == category]


def read_labels(path: Path) -> Labels:
    """Parse selected_tags.csv (columns tag_id,name,category,count)."""
    text, _ = read_text(path)
    rows = csv.DictReader(text.splitlines())
    missing = {"name", "category"} - set(rows.fieldnames or [])
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected tag_id,name,category,count")
    names, cats = [], []
    for line_no, row in enumerate(rows, start=2):
        try:
            cats.append(int(row["category"]))
        except (TypeError, ValueError):
            raise ValueError(f"{path}, line {line_no}: category '{row['category']}' is not a number") from None
        names.append(row["name"])
    if not names:
        raise ValueError(f"{path}: no tags; the file must list one tag a row")
    return Labels(names, cats)


def local_model_files(folder: str | Path) -> tuple[Path, Path]:
    """(model.onnx, selected_tags.csv) of a local folder, with an error that says what is missing."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"tagger model folder '{folder}' does not exist")
    files = (folder / MODEL_FILE, folder / TAGS_FILE)
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"tagger model folder '{folder}' lacks {missing}; it needs {MODEL_FILE} and {TAGS_FILE}")
    return files


def hub_repo(name: str) -> str:
    if name not in CATALOGUE:
        raise ValueError(f"unknown tagger model '{name}'; choose one of {', '.join(CATALOGUE)} or give a local folder")
    return f"{HUB_OWNER}/{name}"


def download_model(name: str, cache_dir: str | Path, on_progress: DownloadProgress | None = None) -> Path:
    """Folder `cache_dir/<name>` with the model's two files, downloading them from the Hub if absent.

    Files already there are used without asking the network, so tagging works offline once downloaded
    (delete the folder to fetch a newer version). An unreachable hub is an error within seconds that says how
    to use a local folder or a mirror.
    """
    from trainer.models.hub import ModelSourceError, explain_hub_error, hub_files

    repo = hub_repo(name)
    folder = Path(cache_dir) / name
    missing = [f for f in (TAGS_FILE, MODEL_FILE) if not (folder / f).is_file()]
    if not missing:
        return folder
    if on_progress:
        on_progress(missing[0], 0, 0)  # "downloading <model> ..." shows before the first byte arrives
    hub_files(repo, LOCAL_FOLDER_HINT)
    for filename in missing:
        from huggingface_hub import hf_hub_download

        kwargs = {"tqdm_class": _progress_tqdm(filename, on_progress)} if on_progress else {}
        try:
            hf_hub_download(repo_id=repo, filename=filename, local_dir=folder, **kwargs)
        except Exception as exc:  # network, auth, disk: all mean "no model", said in one clear line
            raise ModelSourceError(f"{filename}: {explain_hub_error(repo, exc, LOCAL_FOLDER_HINT)}") from exc
    return folder


def _progress_tqdm(filename: str, on_progress: DownloadProgress):
    from tqdm.auto import tqdm

    class _Reporting(tqdm):  # huggingface_hub drives this bar; we forward its counts
        done = 0  # counted here too: a disabled bar (HF_HUB_DISABLE_PROGRESS_BARS) does not count

        def update(self, n=1):
            self.done += n or 0
            on_progress(filename, int(self.done), int(self.total or 0))
            return super().update(n)

    return _Reporting


def resolve_model_folder(
    model: str | None, local_dir: str | Path | None, cache_dir: str | Path, on_progress: DownloadProgress | None = None
) -> Path:
    """A local folder wins over the catalogue name; otherwise download (or reuse) the named model."""
    if local_dir and str(local_dir).strip():
        local_model_files(str(local_dir).strip())
        return Path(str(local_dir).strip()).expanduser()
    return download_model(model or DEFAULT_MODEL, cache_dir, on_progress)


def choose_providers(requested: str = "auto", available: list[str] | None = None) -> list[str]:
    """Providers to hand onnxruntime, best first, always ending with CPU."""
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    if requested == "auto":
        wanted = [p for p in AUTO_PROVIDERS if p in available]
    else:
        if requested not in PROVIDER_ALIASES:
            raise ValueError(f"provider '{requested}' is unknown; choose one of {', '.join(PROVIDER_CHOICES)}")
        wanted = [PROVIDER_ALIASES[requested]]
        if wanted[0] not in available:
            raise RuntimeError(
                f"provider '{requested}' is not in this onnxruntime build (it has {', '.join(available)}); "
                "install onnxruntime-gpu / onnxruntime-directml, or choose 'auto'"
            )
        if wanted[0] == "TensorrtExecutionProvider" and "CUDAExecutionProvider" in available:
            wanted.append("CUDAExecutionProvider")  # TensorRT hands unsupported nodes to CUDA
    return [p for p in wanted if p != "CPUExecutionProvider"] + ["CPUExecutionProvider"]
