"""Files a dataset may hold that are not what they seem: FIFOs, symlinked captions, symlinked folders that
point out of the dataset or back into themselves. None of them hangs, escapes, duplicates or aborts a job."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from trainer.data.scan import scan_dataset
from trainer.tagger import TagJob, TagOptions, load_model, tag_folder
from trainer.tagger.preprocess import list_images
from trainer.tagger.tiny import build_tiny_tagger
from trainer.tags.dataset import load_dataset
from trainer.textio import read_text

SECRET = "secret, from outside"


def finishes(fn, seconds: float = 10.0):
    """fn()'s result, failing the test (instead of hanging it) when fn blocks."""
    box: dict = {}
    worker = threading.Thread(target=lambda: box.update(value=fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"{fn} hung for {seconds} s"
    return box.get("value")


def image(path: Path, colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), colour).save(path)
    return path


@pytest.fixture
def tricky(tmp_path):
    """<root>/10_set: ok.png (caption), fifo.png (caption is a FIFO), link.png (caption symlinked outside),
    a sub-folder symlinked to its parent (a loop) and one symlinked to a folder outside the root."""
    root, outside = tmp_path / "data", tmp_path / "outside"
    sub = root / "10_set"
    image(sub / "ok.png")
    (sub / "ok.txt").write_text("ok, tag", encoding="utf-8")
    image(sub / "fifo.png", "blue")
    os.mkfifo(sub / "fifo.txt")
    image(sub / "link.png", "green")
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    image(outside / "far.png", "white")
    (sub / "link.txt").symlink_to(outside / "secret.txt")
    (sub / "loop").symlink_to(sub)
    (sub / "out").symlink_to(outside)
    return root, sub, outside


def test_read_text_refuses_fifos_devices_and_optionally_symlinks(tricky):
    root, sub, outside = tricky
    for path in (sub / "fifo.txt", "/dev/zero"):
        with pytest.raises(OSError, match="not a regular file"):
            _unwrap(finishes(lambda p=path: _raises(read_text, p)))
    assert read_text(sub / "link.txt")[0] == SECRET  # configs may be symlinks
    with pytest.raises(OSError, match="symbolic link"):
        read_text(sub / "link.txt", follow_symlinks=False)


def _raises(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Exception as exc:  # re-raised in the test thread by the caller
        return exc
    return None


def _unwrap(result):
    if isinstance(result, Exception):
        raise result
    return result


def test_tag_editor_load(tricky):
    root, sub, outside = tricky
    ds = finishes(lambda: load_dataset(sub, recursive=True))
    names = sorted(Path(it.image).name for it in ds.items)
    assert names == ["ok.png"]  # no duplicates through the loop, nothing from outside
    reasons = {Path(p).name: why for p, why in ds.skipped}
    assert "fifo.txt" in reasons and "link.txt" in reasons and "loop" in reasons and "out" in reasons
    assert all(SECRET not in " ".join(t) for t in ds.tags)


def test_dataset_scan(tricky):
    root, sub, outside = tricky
    (root / "20_linked").symlink_to(outside)  # a whole subset folder that lives elsewhere
    scan = finishes(lambda: scan_dataset(root, recursive=True))
    assert sorted(Path(it.path).name for it in scan.items) == ["fifo.png", "link.png", "ok.png"]
    by_name = {Path(it.path).name: it for it in scan.items}
    assert by_name["link.png"].caption == "set"  # the class token, not the file outside
    assert by_name["fifo.png"].caption == "set"
    text = " ".join(str(p) for p in scan.problems)
    assert "fifo.txt" in text and "link.txt" in text and "loop" in text and "out" in text and "20_linked" in text


def test_tagger_lists_without_loops_or_escapes(tricky):
    root, sub, outside = tricky
    found = finishes(lambda: list_images(sub, recursive=True))
    assert sorted(p.name for p in found) == ["fifo.png", "link.png", "ok.png"]


def test_tagger_job_skips_bad_captions_and_finishes(tricky, tmp_path):
    root, sub, outside = tricky
    build_tiny_tagger(tmp_path / "tagger", size=32)
    model = load_model(tmp_path / "tagger")
    job = TagJob(sub, TagOptions(general_threshold=0.0, character_threshold=0.0), existing="append",
                 backup_dir=tmp_path / "backups", recursive=True)
    report = finishes(lambda: list(tag_folder(model, job))[-1], 60)
    assert report.finished
    failed = {p.name for p, _ in report.failed}
    assert {"fifo.png", "link.png"} <= failed
    assert report.written == 1  # ok.png
    assert (outside / "secret.txt").read_text(encoding="utf-8") == SECRET  # never written through the link
    assert (sub / "link.txt").is_symlink()


def test_image_readers_refuse_a_fifo_at_once(tmp_path):
    """A FIFO typed as a path (tagger preview) or met by the trainer or a thumbnail never blocks."""
    from trainer.data.images import load_image
    from trainer.data.problems import ImageLoadError
    from trainer.tagger.preprocess import load_preprocessed
    from trainer.tags.thumbs import thumbnail

    fifo = tmp_path / "trap.png"
    os.mkfifo(fifo)
    for read, error in ((lambda: load_preprocessed(fifo, 32), OSError), (lambda: load_image(fifo), ImageLoadError),
                        (lambda: thumbnail(fifo, tmp_path / "thumbs"), ValueError)):
        with pytest.raises(error, match="not a regular file"):
            _unwrap(finishes(lambda r=read: _raises(r)))
