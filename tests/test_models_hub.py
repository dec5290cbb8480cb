"""resolve_base_model: local paths as they are, hub ids through a faked huggingface_hub, clear errors."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from huggingface_hub import errors as hf_errors

from trainer.models.hub import ModelSourceError, resolve_base_model, select_repo_files
from trainer.models.loading import load_sd15
from trainer.models.tiny import save_tiny

SD15_REPO_FILES = [
    ".gitattributes", "README.md", "model_index.json", "v1-5-pruned.ckpt", "v1-5-pruned-emaonly.safetensors",
    "feature_extractor/preprocessor_config.json", "safety_checker/config.json", "safety_checker/model.safetensors",
    "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
    "text_encoder/model.fp16.safetensors", "text_encoder/pytorch_model.bin", "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.non_ema.safetensors", "unet/diffusion_pytorch_model.bin",
    "vae/config.json", "vae/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.fp16.bin",
]


def test_select_keeps_one_fp32_copy_per_component_and_skips_the_rest():
    assert select_repo_files("org/sd15", SD15_REPO_FILES) == [
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.bin"]


def test_select_handles_sharded_weights_and_single_component_repos():
    sharded = ["model_index.json", "transformer/config.json",
               "transformer/diffusion_pytorch_model.safetensors.index.json",
               "transformer/diffusion_pytorch_model-00001-of-00002.safetensors",
               "transformer/diffusion_pytorch_model-00002-of-00002.safetensors", "flux1-dev.safetensors"]
    assert select_repo_files("org/flux", sharded) == sorted(sharded[:5])
    vae_repo = ["README.md", "config.json", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"]
    assert select_repo_files("org/vae", vae_repo) == ["config.json", "diffusion_pytorch_model.safetensors"]
    with pytest.raises(ModelSourceError, match="org/ckpt-only/<file>.safetensors"):
        select_repo_files("org/ckpt-only", ["README.md", "model.ckpt"])


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A hub whose only repo, org/tiny-sd15, is a local tiny SD1.5 folder; downloads copy from it."""
    source = save_tiny("sd15", tmp_path / "remote")
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    calls: list[str] = []

    def model_info(api, repo_id, *, timeout=None, **_):
        assert timeout, "a hub request without a timeout hangs on a silent network"
        _check(repo_id)
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=f) for f in files])

    def hf_hub_download(repo_id, filename, *, cache_dir, tqdm_class=None, **_):
        _check(repo_id)
        calls.append(filename)
        target = Path(cache_dir) / "models--org--tiny-sd15" / "snapshots" / "abc123" / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (source / filename).read_bytes()
        bar = tqdm_class(total=len(data)) if tqdm_class else None
        with open(target, "wb") as fh:
            for start in range(0, len(data), 4096):  # as huggingface_hub does: bytes in chunks
                fh.write(data[start:start + 4096])
                if bar is not None:
                    bar.update(len(data[start:start + 4096]))
        return str(target)

    def snapshot_download(repo_id, *, cache_dir, local_files_only=False, **_):
        folder = Path(cache_dir) / "models--org--tiny-sd15" / "snapshots" / "abc123"
        if repo_id != "org/tiny-sd15" or not local_files_only or not folder.is_dir():
            raise hf_errors.LocalEntryNotFoundError("not cached")
        return str(folder)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def _check(repo_id):
    if repo_id != "org/tiny-sd15":
        raise _http_error(hf_errors.RepositoryNotFoundError, 404)


def _http_error(cls, status):
    # huggingface_hub's HTTP errors need a response object of its HTTP client.
    http = importlib.import_module(hf_errors.HfHubHTTPError.__bases__[0].__module__.split(".")[0])
    response = http.Response(status, request=http.Request("GET", "https://huggingface.co/api/models/x"))
    return cls("boom", response=response)


def test_hub_id_downloads_needed_files_with_progress_and_loads(fake_hub, tmp_path):
    seen: list[tuple[str, float]] = []
    path = resolve_base_model("org/tiny-sd15", tmp_path / "cache", lambda m, f: seen.append((m, f)))
    assert (path / "model_index.json").is_file() and path.is_relative_to(tmp_path / "cache")
    assert not any(f.startswith(("safety_checker", "feature_extractor")) for f in fake_hub)
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(set(fractions)) > len(fake_hub)
    assert any("unet/diffusion_pytorch_model.safetensors" in m and "%" in m for m, _ in seen)
    assert all(m.startswith(("downloading org/tiny-sd15 from the Hugging Face Hub", "downloaded")) for m, _ in seen)
    parts = load_sd15("org/tiny-sd15", cache_dir=tmp_path / "cache")
    assert parts.source_path == path and parts.unet.config.cross_attention_dim == 32


def test_offline_uses_the_cached_copy(fake_hub, tmp_path, monkeypatch):
    first = resolve_base_model("org/tiny-sd15", tmp_path / "cache")

    def unreachable(*_, **__):
        raise hf_errors.OfflineModeIsEnabled("HF_HUB_OFFLINE is set")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    assert resolve_base_model("org/tiny-sd15", tmp_path / "cache") == first


@pytest.mark.parametrize("error, message", [
    (lambda: _http_error(hf_errors.GatedRepoError, 403), "org/tiny-sd15 is gated.*huggingface-cli login"),
    (lambda: _http_error(hf_errors.RepositoryNotFoundError, 404), "not found on the Hugging Face Hub.*typos"),
    (lambda: ConnectionError("Name or service not known"), "unreachable.*offline.*HF_ENDPOINT"),
])
def test_hub_errors_name_the_id_and_the_fix(fake_hub, tmp_path, monkeypatch, error, message):
    def failing(*_, **__):
        raise error()

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", failing)
    with pytest.raises(ModelSourceError, match=message):
        resolve_base_model("org/tiny-sd15", tmp_path / "empty-cache")


def test_single_file_in_a_repo_is_downloaded_alone(fake_hub, tmp_path):
    path = resolve_base_model("org/tiny-sd15/unet/diffusion_pytorch_model.safetensors", tmp_path / "c")
    assert path.name == "diffusion_pytorch_model.safetensors" and path.is_file()
    assert fake_hub == ["unet/diffusion_pytorch_model.safetensors"]


def test_local_paths_are_returned_as_they_are(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    file = tmp_path / "m.safetensors"
    file.write_bytes(b"")
    assert resolve_base_model(str(folder), tmp_path) == folder
    assert resolve_base_model(f"  {file}  ", tmp_path) == file
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelSourceError, match="notes.txt is not a model"):
        resolve_base_model(str(tmp_path / "notes.txt"), tmp_path)


def test_missing_path_and_empty_spec_are_explained(tmp_path):
    with pytest.raises(ModelSourceError, match=r"base model not found: .*missing/dir/model.safetensors"):
        resolve_base_model(str(tmp_path / "missing" / "dir" / "model.safetensors"), tmp_path)
    with pytest.raises(ModelSourceError, match="no base model given"):
        resolve_base_model("   ", tmp_path)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_download_progress_counts_the_bytes_of_each_file():
    # huggingface_hub drives the bar with update(n); the GUI must see the share of the file grow.
    from trainer.models.hub import _file_progress

    seen = []
    bar = _file_progress(lambda text, share: seen.append(share), "org/m", "unet.safetensors", 1, 2)(total=100)
    bar.update(25)
    bar.update(75)
    assert seen == [0.625, 1.0]


def test_offline_uses_a_cached_single_file(fake_hub, tmp_path, monkeypatch):
    spec = "org/tiny-sd15/unet/diffusion_pytorch_model.safetensors"
    first = resolve_base_model(spec, tmp_path / "c")

    def unreachable(*_, **__):
        raise hf_errors.OfflineModeIsEnabled("HF_HUB_OFFLINE is set")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    assert resolve_base_model(spec, tmp_path / "c") == first
    with pytest.raises(ModelSourceError, match="unreachable"):  # a file never downloaded still says why
        resolve_base_model("org/tiny-sd15/vae/diffusion_pytorch_model.safetensors", tmp_path / "c")
