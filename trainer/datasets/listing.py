"""Where uploaded datasets live in the workspace, and which ones there are (one rule for every tab)."""

from __future__ import annotations

import re
from pathlib import Path

DATASETS = "datasets"
# A dataset or concept name becomes one folder name: letters (any script), digits, space, _ . - ; no path parts.
_SAFE_NAME = re.compile(r"^[\w][\w .\-]{0,99}$")


def datasets_root(workspace: str | Path) -> Path:
    return Path(workspace) / DATASETS


def list_datasets(workspace: str | Path) -> list[Path]:
    """The dataset folders under the workspace's datasets/ (hidden ones are half-imported), sorted by name."""
    root = datasets_root(workspace)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def check_name(name: str, what: str) -> str:
    """`name` stripped, or ValueError naming the field when it could not be one folder name."""
    name = (name or "").strip()
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"{what} '{name}': use letters, digits, spaces, '_', '.' or '-' (no '/', no leading dot). / "
                         f"{what}“{name}”：只能使用字母、数字、空格、'_'、'.'、'-'（不能含 '/'，不能以点开头）。")
    return name


def free_name(parent: Path, name: str, *, is_file: bool = False, taken: set[str] | frozenset = frozenset()) -> str:
    """`name`, or `name-2`, `name-3`... the first that neither exists in `parent` nor is in `taken` (never
    overwrite). Files keep their extension last (`a-2.png`)."""
    if not (parent / name).exists() and name not in taken:
        return name
    stem, suffix = (Path(name).stem, Path(name).suffix) if is_file else (name, "")
    n = 2
    while (parent / f"{stem}-{n}{suffix}").exists() or f"{stem}-{n}{suffix}" in taken:
        n += 1
    return f"{stem}-{n}{suffix}"


MODEL_SUFFIXES = (".safetensors", ".ckpt")


def list_models(models_dir: str | Path) -> list[Path]:
    """Base models and VAEs in the workspace's models/: diffusers folders (model_index.json, or a VAE's
    config.json) and single files. Hidden entries and unfinished downloads (.part) are left out."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")
            and ((p / "model_index.json").is_file() or (p / "config.json").is_file()
                 or (p.is_file() and p.suffix.lower() in MODEL_SUFFIXES))]
