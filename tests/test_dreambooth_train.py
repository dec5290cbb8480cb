"""Dreambooth (full fine-tune) on tiny SD1.5 and SDXL: single-file checkpoints in the original layout that
diffusers' from_single_file loads with every key used, output changed, round trip exact; the text encoder's
own learning rate and stop_text_encoder_training; resume equals an uninterrupted run (SD1.5 and SDXL, exact); the disk-space check."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from safetensors.torch import load_file

from tests.dreambooth_helpers import sd15_and_data_fixtures, unused_keys
from tests.engine_helpers import save_tiny_sdxl, tiny_config
from trainer.checkpoints.write import original_layout
from trainer.engine.run import train
from trainer.events import read_events

TE = "cond_stage_model.transformer."
UNET = "model.diffusion_model."


sd15, data = sd15_and_data_fixtures()  # 2 images x 5 repeats / batch 2: 5 steps an epoch


def db_config(model, data, **overrides):
    return tiny_config(model, data, **{"model__training_type": "dreambooth", "training__max_train_steps": 6,
                                       "dreambooth__stop_text_encoder_training": 3, **overrides})


def events(run_dir: Path) -> list[dict]:
    return read_events(run_dir)[0]


def losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in events(run_dir) if e["type"] == "progress"]


@pytest.fixture(scope="module")
def sd15_run(sd15, data, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    cfg = db_config(sd15, data, save__save_every_n_steps=1, save__save_every_n_epochs=0,
                    sampling__sample_prompts="zk, circle --d 3", sampling__sample_every_n_steps=3,
                    sampling__sample_width=64, sampling__sample_height=64, sampling__sample_steps=2)
    assert train(cfg, run_dir) == 0, events(run_dir)[-1]
    return run_dir


def _unet_out(unet, width: int) -> torch.Tensor:
    torch.manual_seed(0)
    with torch.no_grad():
        return unet(torch.randn(1, 4, 8, 8), torch.tensor([500]), torch.randn(1, 77, width)).sample


def test_sd15_checkpoint_loads_in_diffusers_with_every_key_and_changed_output(sd15_run, sd15):
    file = sd15_run / "output" / "t.safetensors"
    saved = [e for e in events(sd15_run) if e["type"] == "saved" and e["path"] == str(file)]
    assert saved and saved[-1]["kind"] == "checkpoint"
    tensors = load_file(str(file))
    assert f"{UNET}output_blocks.11.0.skip_connection.weight" in tensors
    assert f"{TE}text_model.final_layer_norm.weight" in tensors and "first_stage_model.quant_conv.weight" in tensors
    base = StableDiffusionPipeline.from_pretrained(sd15)
    assert unused_keys(tensors, base) == set()
    pipe = StableDiffusionPipeline.from_single_file(str(file), config=str(sd15), local_files_only=True)
    assert not torch.allclose(_unet_out(pipe.unet, 32), _unet_out(base.unet, 32))
    # the VAE is not trained: it comes back exactly
    assert all(torch.equal(v, base.vae.state_dict()[k]) for k, v in pipe.vae.state_dict().items())
    # round trip: what diffusers loaded, written again, is the same file content
    again = original_layout("sd15", pipe.unet, pipe.vae, [pipe.text_encoder])
    assert again.keys() == tensors.keys()
    assert all(torch.equal(again[k], tensors[k]) for k in tensors)


def test_sd15_checkpoint_header_is_the_model_spec_of_a_base_model(sd15_run):
    """As sd-scripts' train_db: the model spec (architecture of the base model, not of a LoRA) and no ss_ keys."""
    from trainer.engine.header import file_header

    header = file_header(sd15_run / "output" / "t.safetensors")
    assert header["modelspec.architecture"] == "stable-diffusion-v1" and header["modelspec.title"] == "t"
    assert not [k for k in header if k.startswith("ss_")]


def test_previews_show_the_model_being_trained(sd15_run):
    samples = [e for e in events(sd15_run) if e["type"] == "sample"]
    assert [e["step"] for e in samples] == [3, 6] and all(Path(e["path"]).is_file() for e in samples)


def test_text_encoder_stops_changing_at_stop_text_encoder_training(sd15_run):
    out = sd15_run / "output"
    files = [out / f"t-step{s:08d}.safetensors" for s in range(1, 6)] + [out / "t.safetensors"]
    te = [{k: v for k, v in load_file(str(f)).items() if k.startswith(TE)} for f in files]
    unet = [load_file(str(f))[f"{UNET}input_blocks.1.0.in_layers.2.weight"] for f in files]
    changed = [any(not torch.equal(a[k], b[k]) for k in a) for a, b in zip(te, te[1:], strict=False)]
    assert changed == [True, True, False, False, False]  # steps 1->2, 2->3 train it; from step 3 it is frozen
    assert all(not torch.equal(a, b) for a, b in zip(unet, unet[1:], strict=False))  # the U-Net trains on


def test_each_part_has_its_own_learning_rate(sd15, data, tmp_path):
    run_dir = tmp_path / "run"
    cfg = db_config(sd15, data, training__max_train_steps=2, optimizer__unet_lr=2e-3,
                    dreambooth__learning_rate_te=5e-4)
    assert train(cfg, run_dir) == 0, events(run_dir)[-1]
    progress = next(e for e in events(run_dir) if e["type"] == "progress")
    assert progress["lr"] == {"unet": pytest.approx(2e-3), "text_encoder": pytest.approx(5e-4)}


def test_a_text_encoder_rate_of_zero_keeps_it_as_it_was(sd15, data, tmp_path):
    run_dir = tmp_path / "run"
    assert train(db_config(sd15, data, training__max_train_steps=2, dreambooth__learning_rate_te=0.0), run_dir) == 0
    tensors = load_file(str(run_dir / "output" / "t.safetensors"))
    base = load_file(str(sd15 / "text_encoder" / "model.safetensors"))
    for key, value in base.items():
        assert torch.equal(tensors[TE + (key if key.startswith("text_model.") else "text_model." + key)], value)
    progress = next(e for e in events(run_dir) if e["type"] == "progress")
    assert set(progress["lr"]) == {"unet"}


def test_resume_equals_the_uninterrupted_run(sd15_run, sd15, data, tmp_path):
    first = db_config(sd15, data, training__max_train_steps=4, save__save_state=True)
    assert train(first, tmp_path / "first") == 0
    state = tmp_path / "first" / "output" / "t-state"
    second = db_config(sd15, data, save__resume=str(state))
    assert train(second, tmp_path / "second") == 0, events(tmp_path / "second")[-1]
    assert losses(tmp_path / "second") == losses(sd15_run)[4:]
    a = load_file(str(sd15_run / "output" / "t.safetensors"))
    b = load_file(str(tmp_path / "second" / "output" / "t.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_too_little_disk_space_fails_clearly_and_writes_nothing(sd15, data, tmp_path, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    run_dir = tmp_path / "run"
    assert train(db_config(sd15, data, training__max_train_steps=1), run_dir) != 0
    error = events(run_dir)[-1]
    assert error["type"] == "error" and "not enough disk space" in error["message"]
    assert not list((run_dir / "output").glob("*.safetensors")) and not list((run_dir / "output").glob(".*"))


def test_sdxl_checkpoint_in_sgm_layout_loads_in_diffusers(data, tmp_path):
    model = save_tiny_sdxl(tmp_path / "tiny-sdxl")  # its encoders differ in width, as CLIP-L and bigG do
    run_dir = tmp_path / "run"
    cfg = db_config(model, data, model__family="sdxl", training__max_train_steps=2, save__save_precision="fp16",
                    dreambooth__learning_rate_te2=0.0)
    assert train(cfg, run_dir) == 0, events(run_dir)[-1]
    progress = next(e for e in events(run_dir) if e["type"] == "progress")
    assert set(progress["lr"]) == {"unet", "text_encoder"}
    tensors = load_file(str(run_dir / "output" / "t.safetensors"))
    assert {v.dtype for v in tensors.values()} == {torch.float16}
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in tensors
    assert "model.diffusion_model.label_emb.0.0.weight" in tensors
    base = StableDiffusionXLPipeline.from_pretrained(model)
    assert unused_keys(tensors, base) == set()
    pipe = StableDiffusionXLPipeline.from_single_file(str(run_dir / "output" / "t.safetensors"), config=str(model),
                                                      local_files_only=True)
    te2 = base.text_encoder_2.state_dict()
    for key, value in pipe.text_encoder_2.state_dict().items():  # rate 0: as it was, to fp16 precision
        torch.testing.assert_close(value, te2[key].half().float())
    te1, base_te1 = pipe.text_encoder.state_dict(), base.text_encoder.state_dict()
    assert any(not torch.allclose(te1[k], base_te1[k].half().float()) for k in te1)
    again = original_layout("sdxl", pipe.unet, pipe.vae, [pipe.text_encoder, pipe.text_encoder_2])
    assert again.keys() == tensors.keys()
    assert all(torch.equal(again[k].half(), tensors[k]) for k in tensors)


def test_a_stop_request_saves_the_checkpoint_and_its_state(sd15, data, tmp_path, monkeypatch):
    from trainer.engine.reporter import Reporter
    from trainer.events import request_stop

    run_dir = tmp_path / "run"
    progress = Reporter.progress

    def stop_at_step_2(self, **kw):  # as the UI would: a stop file written from outside during the run
        progress(self, **kw)
        if kw["step"] == 2:
            request_stop(run_dir)

    monkeypatch.setattr(Reporter, "progress", stop_at_step_2)
    assert train(db_config(sd15, data, training__max_train_steps=50), run_dir) == 0
    end = events(run_dir)[-1]
    assert end["type"] == "stopped" and end["step"] == 2
    assert "model.diffusion_model.out.2.weight" in load_file(str(run_dir / "output" / "t.safetensors"))
    assert (run_dir / "output" / "t-state" / "progress.json").is_file()


def test_sdxl_resume_equals_the_uninterrupted_run(data, tmp_path):
    """Both text encoders train (te2 with its own rate) across the stop_text_encoder_training freeze at step 3;
    the state is saved at step 4, two steps before the end."""
    model = save_tiny_sdxl(tmp_path / "tiny-sdxl")
    sdxl = {"model__family": "sdxl", "dreambooth__learning_rate_te2": 5e-4}
    assert train(db_config(model, data, **sdxl), tmp_path / "whole") == 0, events(tmp_path / "whole")[-1]
    progress = next(e for e in events(tmp_path / "whole") if e["type"] == "progress")
    assert set(progress["lr"]) == {"unet", "text_encoder", "text_encoder_2"}
    first = db_config(model, data, training__max_train_steps=4, save__save_state=True, **sdxl)
    assert train(first, tmp_path / "first") == 0
    second = db_config(model, data, save__resume=str(tmp_path / "first" / "output" / "t-state"), **sdxl)
    assert train(second, tmp_path / "second") == 0, events(tmp_path / "second")[-1]
    assert losses(tmp_path / "second") == losses(tmp_path / "whole")[4:]
    a = load_file(str(tmp_path / "whole" / "output" / "t.safetensors"))
    b = load_file(str(tmp_path / "second" / "output" / "t.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
