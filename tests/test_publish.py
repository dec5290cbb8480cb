"""Hand-off of a finished LoRA: the model card next to the final file, and the Hugging Face Hub upload of file,
card and samples (against a fake HfApi: never the network)."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import ModelCard
from huggingface_hub.errors import LocalTokenNotFoundError

from tests.engine_helpers import make_dataset, tiny_config
from tests.test_engine_train import tiny_model  # noqa: F401  (the tiny SD1.5 folder, once a module)
from trainer.engine.run import train
from trainer.events import read_events
from trainer.publish.card import Sample, model_card


class FakeHub:
    """Stands in for huggingface_hub.HfApi: records what would be sent."""

    calls: list[tuple] = []
    fail: Exception | None = None

    def create_repo(self, repo_id, **kwargs):
        if FakeHub.fail:
            raise FakeHub.fail
        FakeHub.calls.append(("create_repo", repo_id, kwargs))

    def create_commit(self, repo_id, operations, **kwargs):
        sent = {}
        for op in operations:
            src = op.path_or_fileobj
            sent[op.path_in_repo] = src if isinstance(src, bytes) else Path(src).read_bytes()
        FakeHub.calls.append(("create_commit", repo_id, kwargs, sent))
        return type("CommitInfo", (), {"commit_url": f"https://hub.invalid/{repo_id}/commit/1"})()


@pytest.fixture(autouse=True)
def fake_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    FakeHub.calls, FakeHub.fail = [], None
    return FakeHub


def _cfg(model, data, **overrides):
    return tiny_config(model, data, caption__trigger_word="zkz", sampling__sample_prompts="zk, circle --d 3",
                       sampling__sample_every_n_epochs=1, sampling__sample_width=64, sampling__sample_height=64,
                       sampling__sample_steps=2, publish__metadata_tags="circle", **overrides)


def test_model_card_from_a_header():
    header = {"modelspec.title": "ZK", "modelspec.architecture": "stable-diffusion-v1/lora",
              "modelspec.trigger_phrase": "zkz", "modelspec.tags": "circle, red", "modelspec.license": "openrail++",
              "ss_sd_model_name": "stable-diffusion-v1-5/stable-diffusion-v1-5", "ss_network_dim": "8",
              "ss_network_alpha": "4.0", "ss_optimizer": "torch.optim.adamw.AdamW", "sshs_model_hash": "ab" * 32,
              "ss_unet_lr": "None",
              "ss_tag_frequency": json.dumps({"5_zk": {"zk": 3, "red circle": 5, "blue": 3}})}
    text = model_card(header, "zk.safetensors", [Sample("samples/a.png", "zk, red circle")])
    card = ModelCard(text)
    assert card.data.base_model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert card.data.license == "openrail++" and card.data.instance_prompt == "zkz"
    assert {"lora", "circle", "red"} <= set(card.data.tags)
    assert card.data.widget == [{"text": "zk, red circle", "output": {"url": "samples/a.png"}}]
    body = card.text
    assert "# ZK" in body and "`zkz`" in body and "| Rank (network_dim) | `8` |" in body
    assert "A LoRA for `stable-diffusion-v1`, trained" in body  # the model it is for, not ".../lora" again
    assert "U-Net learning rate" not in body  # unset ("None" in the header): no row
    rows = [line for line in body.splitlines() if line.startswith("| ") and line.endswith(" |")]
    assert rows.index("| red circle | 5 |") < rows.index("| zk | 3 |") < rows.index("| blue | 3 |")
    assert "![zk, red circle](samples/a.png)" in body


def test_card_next_to_the_final_file_and_upload_of_file_card_and_samples(tiny_model, tmp_path):  # noqa: F811
    data = make_dataset(tmp_path / "data", n=2)
    cfg = _cfg(tiny_model, data, publish__huggingface_repo_id="me/zk-lora", publish__huggingface_path_in_repo="v1")
    run_dir = tmp_path / "run"
    assert train(cfg, run_dir) == 0
    out = run_dir / "output"
    card = out / "t.md"
    assert card.is_file() and not (out / "t-000001.md").exists()  # final files only
    parsed = ModelCard(card.read_text(encoding="utf-8"))
    assert parsed.data.instance_prompt == "zkz" and "circle" in parsed.data.tags
    links = [w["output"]["url"] for w in parsed.data.widget]
    assert links and all((out / link).resolve().is_file() for link in links)  # relative links that resolve
    assert ["create_repo", "create_commit"] == [c[0] for c in FakeHub.calls]
    _, repo, repo_kwargs = FakeHub.calls[0]
    assert repo == "me/zk-lora" and repo_kwargs["private"] is True and repo_kwargs["exist_ok"] is True
    _, _, commit_kwargs, sent = FakeHub.calls[1]
    assert commit_kwargs["repo_type"] == "model"
    assert sent["v1/t.safetensors"] == (out / "t.safetensors").read_bytes()
    hub_card = ModelCard(sent["v1/README.md"].decode("utf-8"))
    names = {Path(w["output"]["url"]).name for w in hub_card.data.widget}
    assert all(w["output"]["url"].startswith("samples/") for w in hub_card.data.widget)
    assert {f"v1/samples/{n}" for n in names} <= set(sent)
    statuses = [e["message"] for e in read_events(run_dir)[0] if e["type"] == "status"]
    assert any("uploaded to https://hub.invalid/me/zk-lora" in m for m in statuses)


def test_failed_upload_is_a_warning_and_no_card_when_off(tiny_model, tmp_path):  # noqa: F811
    FakeHub.fail = LocalTokenNotFoundError("Token is required")
    data = make_dataset(tmp_path / "data", n=2)
    cfg = _cfg(tiny_model, data, publish__huggingface_repo_id="me/zk-lora", publish__model_card=False,
               training__max_train_epochs=1)
    run_dir = tmp_path / "run"
    assert train(cfg, run_dir) == 0
    assert (run_dir / "output" / "t.safetensors").is_file() and not (run_dir / "output" / "t.md").exists()
    warnings = [e for e in read_events(run_dir)[0] if e["type"] == "warning"]
    assert any("upload to me/zk-lora failed" in w["message"] and "HF_TOKEN" in w["hint"] for w in warnings)


def test_no_repo_no_upload(tiny_model, tmp_path):  # noqa: F811
    data = make_dataset(tmp_path / "data", n=2)
    assert train(_cfg(tiny_model, data, training__max_train_epochs=1), tmp_path / "run") == 0
    assert FakeHub.calls == [] and (tmp_path / "run" / "output" / "t.md").is_file()


def test_target_from_the_publish_settings():
    from trainer.config import config_from_dict
    from trainer.publish.upload import Target

    pub = config_from_dict({"publish": {"huggingface_repo_id": " me/x ", "huggingface_repo_visibility": "public",
                                        "huggingface_repo_type": "dataset", "huggingface_path_in_repo": "/a/b/"}})
    target = Target.of(pub.publish)
    assert target == Target("me/x", "dataset", "a/b", private=False) and target.path("f.md") == "a/b/f.md"


def _commits() -> list[dict]:
    return [c[3] for c in FakeHub.calls if c[0] == "create_commit"]


def test_every_save_is_uploaded_with_its_state_when_asked(tiny_model, tmp_path):  # noqa: F811
    """upload_every_save (what sd-scripts does with a repository set) sends each epoch's file as it is saved, so a
    rented machine that goes away leaves them on the Hub; save_state_to_huggingface sends each state with it, the
    final one in the final commit beside the card."""
    data = make_dataset(tmp_path / "data", n=2)
    cfg = _cfg(tiny_model, data, publish__huggingface_repo_id="me/zk-lora", publish__upload_every_save=True,
               publish__save_state_to_huggingface=True, save__save_state=True, save__save_every_n_epochs=1)
    run_dir = tmp_path / "run"
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    out = run_dir / "output"
    epoch, final = _commits()
    assert epoch["t-000001.safetensors"] == (out / "t-000001.safetensors").read_bytes()
    assert {"t-000001-state/progress.json", "t-000001-state/adapter.pt", "t-000001-state/optim.pt"} <= set(epoch)
    assert not {k for k in epoch if k.startswith(("t.", "t-state", "README"))}
    assert final["t.safetensors"] == (out / "t.safetensors").read_bytes() and "README.md" in final
    assert final["t-state/progress.json"] == (out / "t-state" / "progress.json").read_bytes()


def test_by_default_only_the_final_file_goes_and_no_state(tiny_model, tmp_path):  # noqa: F811
    data = make_dataset(tmp_path / "data", n=2)
    cfg = _cfg(tiny_model, data, publish__huggingface_repo_id="me/zk-lora", save__save_state=True,
               save__save_every_n_epochs=1)
    assert train(cfg, tmp_path / "run") == 0
    (final,) = _commits()
    assert "t.safetensors" in final and not [k for k in final if "state" in k or k.startswith("t-0")]


def test_sd_scripts_hub_settings_import():
    from trainer.config import ConfigError
    from trainer.config.kohya import import_kohya

    cfg = import_kohya({"huggingface_repo_id": "me/x", "save_state_to_huggingface": True, "save_state": True})
    assert cfg.publish.upload_every_save and cfg.publish.save_state_to_huggingface  # sd-scripts uploads each save
    assert not import_kohya({}).publish.upload_every_save
    with pytest.raises(ConfigError) as exc:
        import_kohya({"resume": "me/x/t-state", "resume_from_huggingface": True})
    (f,) = exc.value.findings
    assert f.field == "resume_from_huggingface" and "hf download" in f.en


@pytest.mark.parametrize("publish,save,field", [
    ({"save_state_to_huggingface": True, "huggingface_repo_id": "me/x"}, {}, "publish.save_state_to_huggingface"),
    ({"save_state_to_huggingface": True}, {"save_state": True}, "publish.save_state_to_huggingface"),
    ({"upload_every_save": True}, {}, "publish.upload_every_save"),
])
def test_upload_switches_that_would_send_nothing_are_warned(publish, save, field):
    from trainer.config import check, config_from_dict

    found = [f for f in check(config_from_dict({"publish": publish, "save": save}), for_training=False)
             if f.field == field]
    assert [f.level for f in found] == ["warning"]
