"""Tag editor speed on a generated 10,000-image dataset.

    python bench/tag_editor.py [--images 10000] [--tags 30] [--dir DIR] [--json out.json]

Targets (issue 6): load captions + frequency table < 2 s; any bulk operation < 0.5 s;
a gallery page of 48 thumbnails < 1 s once the thumbnails exist.
Without --dir the dataset is generated in a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from trainer.tags import Filter, apply_op, filter_indices, frequency, load_dataset, make_op  # noqa: E402
from trainer.tags.bulk import preview_count  # noqa: E402
from trainer.tags.save import save_dataset  # noqa: E402
from ui.tabs.tag_editor_session import PAGE_SIZE, Session  # noqa: E402

TARGETS = {"load_and_frequency": 2.0, "bulk_max": 0.5, "gallery_page_cached": 1.0}


def generate(root: Path, n: int, tags_per: int, seed: int = 0) -> None:
    """n small JPEGs with captions drawn from a Zipf-like vocabulary, with weights, escapes and kaomoji."""
    rng = random.Random(seed)
    vocab = [f"tag_{i:04d}" for i in range(3000)] + ["1girl", "solo", "^_^", "o_o", r"\(cosplay\)", "(smile:1.2)"]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sub = root / f"{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        Image.new("RGB", (64, 64), (i % 256, (i * 7) % 256, (i * 13) % 256)).save(sub / f"{i:05d}.jpg", quality=80)
        tags = rng.choices(vocab, weights, k=tags_per)
        (sub / f"{i:05d}.txt").write_text(", ".join(tags), encoding="utf-8")


class Figures:
    """Wall and CPU seconds per measurement. CPU time is less skewed when other jobs share the machine."""

    def __init__(self):
        self.times: dict[str, tuple[float, float]] = {}
        self.info: dict[str, object] = {"load_average_before": round(os.getloadavg()[0], 1)}

    def measure(self, name: str, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        self.times[name] = (time.perf_counter() - t0, time.process_time() - c0)
        return out

    def wall(self, name: str) -> float:
        return self.times[name][0]


BULK = {
    "delete": {"name": "delete", "tags": ["1girl", "tag_0001"]},
    "add_front": {"name": "add", "tags": ["masterpiece"], "front": True},
    "replace": {"name": "replace", "old": "solo", "new": "alone"},
    "regex_groups": {"name": "regex", "pattern": r"^tag_(\d)", "repl": r"t\1"},
    "regex_literal": {"name": "regex", "pattern": r"_", "repl": " "},
    "move_front": {"name": "front", "tags": ["tag_0002"]},
    "sort": {"name": "sort"},
    "dedupe": {"name": "dedupe"},
    "escape": {"name": "escape"},
    "unescape": {"name": "unescape"},
    "underscores": {"name": "underscores"},
}


def run(root: Path, workdir: Path) -> Figures:
    fig = Figures()
    ds, freq = fig.measure("load_and_frequency", lambda: _load_freq(root))
    fig.info.update(images=len(ds), distinct_tags=len(freq))
    every = list(range(len(ds)))
    fig.measure("filter_any_of", lambda: filter_indices(ds, Filter(any_of=["solo", "tag_0005"])))
    fig.measure("filter_text", lambda: filter_indices(ds, Filter(text="cosplay")))
    for key, params in BULK.items():
        op = make_op(params.pop("name"), **params)
        fig.measure(f"bulk_{key}_preview", lambda op=op: preview_count(ds, every, op))
        fig.info[f"bulk_{key}_changed"] = fig.measure(f"bulk_{key}", lambda op=op: apply_op(ds, every, op))
    fig.info["history_changed_captions_stored"] = sum(len(s.changes) for s in ds.history.done)
    fig.measure("undo_all_bulk", lambda: [ds.history.undo(ds) for _ in BULK])
    fig.measure("redo_all_bulk", lambda: [ds.history.redo(ds) for _ in BULK])
    _gallery(fig, root, workdir / "thumbs")
    _save(fig, root, workdir, 1000)
    return fig


def _load_freq(root: Path):
    ds = load_dataset(root, recursive=True)
    return ds, frequency(ds)


def _gallery(fig: Figures, root: Path, thumbs: Path) -> None:
    sess = Session()
    sess.load(str(root), ".txt", True, ", ")
    page = fig.measure("gallery_page_first_time", lambda: sess.gallery(thumbs))
    fig.measure("gallery_page_cached", lambda: sess.gallery(thumbs))
    assert len(page) == PAGE_SIZE
    fig.measure("frequency_list_and_choices", lambda: (sess.freq_rows(), sess.tag_choices()))
    fig.measure("frequency_list_and_choices_cached", lambda: (sess.freq_rows(), sess.tag_choices()))


def _save(fig: Figures, root: Path, workdir: Path, n: int) -> None:
    """Save n changed captions (with backup) in a copy, so the benchmark dataset stays as generated."""
    copy = workdir / "save_copy"
    copy.mkdir()
    for i, cap in enumerate(sorted(root.rglob("*.txt"))[:n]):
        (copy / f"{i:05d}.txt").write_bytes(cap.read_bytes())
        (copy / f"{i:05d}.jpg").write_bytes(b"")  # only the name matters to the loader
    ds = load_dataset(copy)
    apply_op(ds, range(len(ds)), make_op("add", tags=["one more"]))
    fig.measure(f"save_{n}_changed_files_with_backup", lambda: save_dataset(ds, backup_root=workdir / "backups"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--tags", type=int, default=30)
    p.add_argument("--dir", type=Path, help="keep the generated dataset here and reuse it (it is not modified)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="danlu-tagbench-") as tmp:
        root = args.dir or Path(tmp) / "dataset"
        if not (root.exists() and any(root.rglob("*.txt"))):
            t0 = time.perf_counter()
            generate(root, args.images, args.tags)
            print(f"generated {args.images} images in {time.perf_counter() - t0:.1f} s at {root}")
        fig = run(root, Path(tmp))
    ok = _report(fig)
    if args.json:
        args.json.write_text(json.dumps({"info": fig.info, "seconds_wall_cpu": fig.times}, indent=2))
    return 0 if ok else 1


def _report(fig: Figures) -> bool:
    for key, value in fig.info.items():
        print(f"{key:<40} {value}")
    bulk_max = max(w for k, (w, _) in fig.times.items() if k.startswith("bulk_"))
    checks = {"load_and_frequency": fig.wall("load_and_frequency"), "bulk_max": bulk_max,
              "gallery_page_cached": fig.wall("gallery_page_cached")}
    print(f"{'measurement':<40} {'wall ms':>9} {'cpu ms':>9}")
    for key, (wall, cpu) in fig.times.items():
        print(f"{key:<40} {wall * 1000:9.1f} {cpu * 1000:9.1f}")
    ok = True
    for key, secs in checks.items():
        passed = secs < TARGETS[key]
        ok &= passed
        print(f"target {key:<33} {secs:6.3f} s < {TARGETS[key]} s: {'OK' if passed else 'FAIL'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
