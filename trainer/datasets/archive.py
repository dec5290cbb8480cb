"""Runs, output files and datasets as zip files the browser can download (the server may be remote)."""

from __future__ import annotations

import zipfile
from pathlib import Path

# Workspace folders whose entries may be downloaded, in the order the picker lists them.
DOWNLOADABLE = ("outputs", "runs", "datasets")


def downloadable(workspace: str | Path) -> list[Path]:
    """Each run folder, output file or folder, and dataset in the workspace (hidden entries left out)."""
    out = []
    for sub in DOWNLOADABLE:
        folder = Path(workspace) / sub
        if folder.is_dir():
            out += sorted(p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_symlink())
    return out


def zip_path(source: str | Path, out_dir: str | Path) -> Path:
    """`source` (a file or a folder) as `out_dir/<name>.zip`, rewritten each time. Symbolic links are left out,
    so a link inside a run cannot carry a file from elsewhere on the server into the download."""
    source = Path(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{source.name}.zip"
    tmp = target.with_suffix(".zip.part")
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            if _linked(path, source):
                continue
            zf.write(path, path.relative_to(source.parent).as_posix())
    tmp.replace(target)
    return target


def _linked(path: Path, source: Path) -> bool:
    """True when `path` or a folder between it and `source` is a symbolic link."""
    rel = path.relative_to(source).parts if path != source else ()
    return path.is_symlink() or any((source.joinpath(*rel[:i])).is_symlink() for i in range(1, len(rel)))
