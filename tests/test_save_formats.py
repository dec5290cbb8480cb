"""save.save_model_as ckpt/pt for LoRAs (sd-scripts: a torch pickle of the same state dict, no metadata) and
Dreambooth checkpoints ({"state_dict": ...} as A1111 reads it), dreambooth.save_diffusers (a diffusers folder
equal to the single file), and a checkpoint's model card and Hub upload (against a fake HfApi)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from tests.dreambooth_helpers import sd15_and_data_fixtures
from tests.engine_helpers import tiny_config
from tests.test_publish import FakeHub, fake_hub  # noqa: F401  (the fake HfApi, autouse)
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora

sd15, data = sd15_and_data_fixtures()


def _ok(cfg, run_dir: Path) -> Path:
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    return run_dir / "output"


@pytest.mark.parametrize("ext", ["pt", "ckpt"])
def test_a_lora_saved_as_a_torch_pickle_holds_the_safetensors_tensors(sd15, data, tmp_path, ext):
    steps = {"training__max_train_steps": 2}
    reference = load_file(str(_ok(tiny_config(sd15, data, **steps), tmp_path / "a") / "t.safetensors"))
    out = _ok(tiny_config(sd15, data, save__save_model_as=ext, **steps), tmp_path / "b")
    assert not list(out.glob("*.safetensors"))
    state = torch.load(out / f"t.{ext}", weights_only=True)
    assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)
    back, meta = read_lora(out / f"t.{ext}")  # as network_weights / base_weights read it back
    assert meta == {} and back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in back)
    saved = [e["path"] for e in read_events(tmp_path / "b")[0] if e["type"] == "saved"]
    assert str(out / f"t.{ext}") in saved
    assert "Optimizer" in (out / "t.md").read_text(encoding="utf-8")  # the card, from the header built for it


def test_reading_a_pickle_never_runs_its_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    bad = tmp_path / "bad.pt"
    bad.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(ValueError, match="bad.pt: not a plain tensor file that loads safely"):
        read_lora(bad)


def _unet_out(unet) -> torch.Tensor:
    torch.manual_seed(0)
    with torch.no_grad():
        return unet(torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, 32)).sample


def test_dreambooth_ckpt_diffusers_folder_card_and_upload(sd15, data, tmp_path):
    cfg = tiny_config(sd15, data, model__training_type="dreambooth", training__max_train_steps=3,
                      save__save_model_as="ckpt", save__save_precision="fp16", save__save_every_n_steps=1,
                      save__save_last_n_steps=1, save__save_every_n_epochs=0, dreambooth__save_diffusers=True,
                      publish__huggingface_repo_id="me/zk-db")
    out = _ok(cfg, tmp_path / "run")
    ckpt = torch.load(out / "t.ckpt", weights_only=True)  # loads safely: tensors in a plain dict
    assert set(ckpt) == {"state_dict"} and "model.diffusion_model.out.2.weight" in ckpt["state_dict"]
    assert {v.dtype for v in ckpt["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    single = StableDiffusionPipeline.from_single_file(str(out / "t.ckpt"), config=str(sd15), local_files_only=True)
    folder = StableDiffusionPipeline.from_pretrained(out / "t-diffusers", local_files_only=True)
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(single, part).state_dict(), getattr(folder, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a), part
    assert torch.equal(_unet_out(single.unet), _unet_out(folder.unet))
    base = StableDiffusionPipeline.from_pretrained(sd15)
    assert not torch.allclose(_unet_out(folder.unet), _unet_out(base.unet))
    saved = [(e["kind"], Path(e["path"]).name) for e in read_events(tmp_path / "run")[0] if e["type"] == "saved"]
    assert ("diffusers", "t-diffusers") in saved and ("checkpoint", "t.ckpt") in saved
    # keep-last-N removes an older save's diffusers folder with its file
    assert sorted(p.name for p in out.iterdir() if p.name.endswith("-diffusers")) == [
        "t-diffusers", "t-step00000002-diffusers"]
    card = ModelCard((out / "t.md").read_text(encoding="utf-8"))
    assert "dreambooth" in card.data.tags and "lora" not in card.data.tags
    assert card.data.base_model_relation == "finetune"
    assert "A full checkpoint" in card.text and "**Base model:** `tiny-sd15`" in card.text
    assert "| Optimizer |" in card.text and "| Prior loss weight |" in card.text
    assert "Rank (network_dim)" not in card.text
    _, _, _, sent = FakeHub.calls[-1]
    assert sent["t.ckpt"] == (out / "t.ckpt").read_bytes() and "A full checkpoint" in sent["README.md"].decode()
    assert sent["t-diffusers/unet/diffusion_pytorch_model.safetensors"] == (
        out / "t-diffusers" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert "t-diffusers/model_index.json" in sent


def test_a_diffusers_folder_without_the_disk_space_fails_clearly_and_leaves_nothing(sd15, data, tmp_path,
                                                                                    monkeypatch):
    import shutil

    out, real = tmp_path / "run" / "output", shutil.disk_usage
    # room for the single file; once it is written, none for the folder
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000) if (out / "t.safetensors").exists()
                        else real(p))
    cfg = tiny_config(sd15, data, model__training_type="dreambooth", training__max_train_steps=1,
                      dreambooth__save_diffusers=True)
    assert train(cfg, tmp_path / "run") != 0
    error = read_events(tmp_path / "run")[0][-1]
    assert error["type"] == "error" and "not enough disk space to save t-diffusers" in error["message"]
    assert not [p.name for p in out.iterdir() if "diffusers" in p.name]


def test_compare_and_runs_list_files_in_every_save_format(tmp_path):
    from types import SimpleNamespace

    from ui.tabs.compare import lora_choices

    run = tmp_path / "runs" / "20260101-100000-000-a" / "output"
    run.mkdir(parents=True)
    for name in ("a.safetensors", "b.pt", "c.ckpt", "notes.md"):
        (run / name).write_bytes(b"x")
    ctx = SimpleNamespace(outputs_dir=tmp_path / "outputs", runs_dir=tmp_path / "runs", workspace=tmp_path,
                          t=lambda key: key)
    assert sorted(Path(path).name for _, path in lora_choices(ctx)) == ["a.safetensors", "b.pt", "c.ckpt"]
    from ui.runs.view import output_files  # the Runs page, for a run whose events name no file

    assert sorted(Path(p).name for p in output_files(run.parent, None)) == ["a.safetensors", "b.pt", "c.ckpt"]


def test_sd_scripts_save_model_as_diffusers_imports_as_the_diffusers_folder():
    from trainer.config.errors import ConfigError
    from trainer.config.kohya import import_kohya

    notes = []
    cfg = import_kohya({"model_train_type": "sdxl-finetune", "save_model_as": "diffusers"}, warnings=notes)
    assert cfg.save.save_model_as == "safetensors" and cfg.dreambooth.save_diffusers is True
    assert any(n.field == "save.save_model_as" and "diffusers folder" in n.en for n in notes)
    with pytest.raises(ConfigError, match="save_model_as.*only a Dreambooth run"):
        import_kohya({"model_train_type": "sd-lora", "save_model_as": "diffusers_safetensors"})


def test_a_dreambooth_setting_on_a_lora_run_is_reported_as_ignored():
    from trainer.config import config_from_dict
    from trainer.config.rules import check

    lora = config_from_dict({"dreambooth": {"save_diffusers": True}})
    assert [(f.level, f.field) for f in check(lora, for_training=False)] == [("warning", "dreambooth.save_diffusers")]
    full = config_from_dict({"model": {"training_type": "dreambooth"}, "dreambooth": {"save_diffusers": True}})
    assert not [f for f in check(full, for_training=False) if f.field.startswith("dreambooth.")]


def test_sdxl_diffusers_folder_equals_the_single_file_with_fused_backward(data, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from tests.engine_helpers import save_tiny_sdxl

    model = save_tiny_sdxl(tmp_path / "tiny-sdxl")
    cfg = tiny_config(model, data, model__family="sdxl", model__training_type="dreambooth",
                      training__max_train_steps=2, training__max_grad_norm=0.0, optimizer__optimizer_type="AdaFactor",
                      dreambooth__fused_backward_pass=True, dreambooth__save_diffusers=True)
    out = _ok(cfg, tmp_path / "run")
    single = StableDiffusionXLPipeline.from_single_file(str(out / "t.safetensors"), config=str(model),
                                                        local_files_only=True)
    folder = StableDiffusionXLPipeline.from_pretrained(out / "t-diffusers", local_files_only=True)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        a, b = getattr(single, part).state_dict(), getattr(folder, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    base = StableDiffusionXLPipeline.from_pretrained(model).unet.state_dict()
    assert any(not torch.equal(v, base[k]) for k, v in folder.unet.state_dict().items())  # it trained
