"""sd-scripts options an imported file may set that are not Danlu settings of their own: switches that only tune how
it loads, caches or uploads (highvram, disable_mmap_load_safetensors, skip_cache_check, async_upload...), secrets
(huggingface_token), its misspelt caption_extention, use_safetensors, dynamo_backend beside torch_compile,
debug_dataset and Flux's model_type. An imported file that sets them trains as it would in sd-scripts, each one
Danlu has nothing to do for is named in a note, and what Danlu cannot do is refused by name."""

from __future__ import annotations

import re

import pytest

from trainer.config import ConfigError
from trainer.config.kohya import import_kohya

CJK = re.compile(r"[\u3400-\u9fff]")
HINTS = ("highvram", "disable_mmap_load_safetensors", "skip_cache_check", "cache_info")


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


def test_a_hub_token_in_the_file_is_left_out_and_async_upload_is_named():
    notes: list = []
    cfg = import_kohya({"huggingface_repo_id": "me/lora", "huggingface_token": "hf_secret123",
                        "async_upload": True, "tokenizer_cache_dir": "/cache/tok"}, warnings=notes)
    assert cfg.publish.huggingface_repo_id == "me/lora"
    by_field = {n.field: n for n in notes}
    assert set(by_field) == {"huggingface_token", "async_upload", "tokenizer_cache_dir"}
    assert all("hf_secret123" not in n.en + n.zh for n in notes)
    assert "HF_TOKEN" in by_field["huggingface_token"].en and CJK.search(by_field["huggingface_token"].zh)
    assert "hf_secret123" not in str(cfg.model_dump())


def test_use_safetensors_names_the_format_when_save_model_as_does_not():
    assert import_kohya({"use_safetensors": True}).save.save_model_as == "safetensors"
    assert import_kohya({"use_safetensors": True, "save_model_as": "ckpt"}).save.save_model_as == "ckpt"


def test_debug_dataset_points_to_the_dataset_doctor():
    with pytest.raises(ConfigError) as exc:
        import_kohya({"debug_dataset": True})
    (f,) = exc.value.findings
    assert f.field == "debug_dataset" and "check-data" in f.en and CJK.search(f.zh)
    assert import_kohya({"debug_dataset": False}) is not None


def test_flux_model_type_flux_is_read_and_chroma_refused():
    notes: list = []
    cfg = import_kohya({"ae": "/m/ae.safetensors", "model_type": "flux"}, warnings=notes)
    assert cfg.model.family == "flux" and notes == []
    with pytest.raises(ConfigError) as exc:
        import_kohya({"ae": "/m/ae.safetensors", "model_type": "chroma"})
    (f,) = exc.value.findings
    assert f.field == "model_type" and "Chroma" in f.en and CJK.search(f.zh)
