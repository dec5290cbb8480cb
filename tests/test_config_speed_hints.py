"""sd-scripts switches that only tune how it loads or caches (highvram, disable_mmap_load_safetensors,
skip_cache_check), its misspelt caption_extention, and dynamo_backend beside torch_compile. An imported file that
sets them trains as it would in sd-scripts, and each one Danlu has nothing to do for is named in a note."""

from __future__ import annotations

import re

import pytest

from trainer.config import ConfigError
from trainer.config.kohya import import_kohya

CJK = re.compile(r"[\u3400-\u9fff]")
HINTS = ("highvram", "disable_mmap_load_safetensors", "skip_cache_check")


def test_loading_and_caching_hints_are_dropped_with_a_note_each():
    notes: list = []
    import_kohya({name: True for name in HINTS}, warnings=notes)
    assert [n.field for n in notes] == list(HINTS)
    assert all(n.level == "warning" and CJK.search(n.zh) for n in notes)


def test_hints_left_off_say_nothing():
    notes: list = []
    import_kohya({name: False for name in HINTS}, warnings=notes)
    assert notes == []


def test_the_misspelt_caption_extension_is_read_as_sd_scripts_reads_it():
    notes: list = []
    assert import_kohya({"caption_extention": ".tags"}, warnings=notes).caption.caption_extension == ".tags"
    assert notes == []
    cfg = import_kohya({"caption_extention": ".tags", "caption_extension": ".txt"}, warnings=notes)
    assert cfg.caption.caption_extension == ".tags"  # sd-scripts lets the old spelling win
    (note,) = notes
    assert note.field == "caption_extension" and ".txt" in note.en and ".tags" in note.en


def test_dynamo_backend_beside_torch_compile():
    notes: list = []
    cfg = import_kohya({"torch_compile": True, "dynamo_backend": "inductor"}, warnings=notes)
    assert cfg.speed.compile_blocks is True and notes == []
    assert import_kohya({"dynamo_backend": "eager"}).speed.compile_blocks is False  # read only with torch_compile
    with pytest.raises(ConfigError) as exc:
        import_kohya({"torch_compile": True, "dynamo_backend": "eager"})
    (f,) = exc.value.findings
    assert f.field == "dynamo_backend" and "inductor" in f.en and CJK.search(f.zh)
