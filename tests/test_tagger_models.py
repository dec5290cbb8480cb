"""Model files: Hub download (faked, no network), local folders, label checks, provider choice."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from trainer.tagger import load_model, resolve_model_folder
from trainer.tagger.models import choose_providers, download_model, read_labels
from trainer.tagger.tiny import build_tiny_tagger


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """hf_hub_download that serves files from a local 'remote' folder and records each call."""
    remote = tmp_path / "remote"
    build_tiny_tagger(remote, size=16)
    calls = []

    def fake_download(repo_id, filename, *, local_dir=None, tqdm_class=None, **kwargs):
        calls.append((repo_id, filename, Path(local_dir)))
        if tqdm_class is not None:  # drive the bar the way huggingface_hub does
            with tqdm_class(total=100, disable=True) as bar:
                bar.update(40)
                bar.update(60)
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        return shutil.copy(remote / filename, Path(local_dir) / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda api, repo_id, timeout=None: SimpleNamespace(siblings=[]))
    return calls


def test_default_model_downloads_both_files_into_the_cache_once(fake_hub, tmp_path):
    cache = tmp_path / "ws" / "models" / "tagger"
    seen = []
    folder = resolve_model_folder(None, "", cache, on_progress=lambda *a: seen.append(a))
    assert folder == cache / "wd-vit-tagger-v3"
    assert fake_hub == [
        ("SmilingWolf/wd-vit-tagger-v3", "selected_tags.csv", folder),
        ("SmilingWolf/wd-vit-tagger-v3", "model.onnx", folder),
    ]
    assert seen == [("selected_tags.csv", 0, 0), ("selected_tags.csv", 40, 100), ("selected_tags.csv", 100, 100),
                    ("model.onnx", 40, 100), ("model.onnx", 100, 100)]
    assert load_model(folder).size == 16
    assert download_model("wd-vit-tagger-v3", cache) == folder and len(fake_hub) == 2  # cached: no new calls


def test_other_catalogue_model_and_unknown_name(fake_hub, tmp_path):
    folder = download_model("wd-v1-4-moat-tagger-v2", tmp_path)
    assert {c[0] for c in fake_hub} == {"SmilingWolf/wd-v1-4-moat-tagger-v2"} and folder.name == "wd-v1-4-moat-tagger-v2"
    with pytest.raises(ValueError, match="unknown tagger model 'wd-nope'"):
        download_model("wd-nope", tmp_path)


def test_local_folder_wins_and_missing_files_are_named(fake_hub, tmp_path):
    build_tiny_tagger(tmp_path / "mine", size=16)
    assert resolve_model_folder("wd-vit-tagger-v3", f"  {tmp_path / 'mine'} ", tmp_path / "cache") == tmp_path / "mine"
    assert fake_hub == []
    (tmp_path / "mine" / "selected_tags.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['selected_tags.csv'\]"):
        resolve_model_folder(None, tmp_path / "mine", tmp_path / "cache")


def test_label_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "selected_tags.csv"
    bad.write_text("tag_id,name,count\n1,a,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['category'\]"):
        read_labels(bad)
    bad.write_text("tag_id,name,category,count\n1,a,9,3\n2,b,x,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: category 'x'"):
        read_labels(bad)


def test_model_and_label_count_must_agree(tmp_path):
    build_tiny_tagger(tmp_path, size=16)
    lines = (tmp_path / "selected_tags.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "selected_tags.csv").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="predicts 11 tags but .* lists 10"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("requested", "available", "expected"),
    [
        ("auto", ["CPUExecutionProvider"], ["CPUExecutionProvider"]),
        ("auto", ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
         ["CUDAExecutionProvider", "CPUExecutionProvider"]),
        ("auto", ["DmlExecutionProvider", "CPUExecutionProvider"], ["DmlExecutionProvider", "CPUExecutionProvider"]),
        ("auto", ["CoreMLExecutionProvider", "CPUExecutionProvider"], ["CoreMLExecutionProvider", "CPUExecutionProvider"]),
        ("tensorrt", ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
         ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]),
        ("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),
    ],
)
def test_provider_choice(requested, available, expected):
    assert choose_providers(requested, available) == expected


def test_unavailable_provider_is_a_clear_error():
    with pytest.raises(RuntimeError, match="'cuda' is not in this onnxruntime build.*onnxruntime-gpu"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="provider 'gpu' is unknown"):
        choose_providers("gpu", ["CPUExecutionProvider"])


def test_failed_download_says_what_to_do(fake_hub, tmp_path, monkeypatch):
    def offline(repo_id, filename, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(ValueError, match="selected_tags.csv: could not download SmilingWolf/wd-swinv2-tagger-v3.*"
                                         "HF_ENDPOINT.*local model folder"):
        download_model("wd-swinv2-tagger-v3", tmp_path)
