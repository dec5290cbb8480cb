"""publish.no_metadata (sd-scripts' no_metadata): a LoRA shared in public keeps only what loaders read (network
type, dim, alpha, base model version, the model spec the user wrote, the hashes); the dataset folders, tag counts,
base model path and Danlu's config, which name the user's files and pictures, stay out. The model card is a file of
its own and still says what it says."""

from __future__ import annotations

import pytest

from tests.engine_helpers import make_dataset, tiny_config
from tests.test_engine_train import tiny_model  # noqa: F401  (the tiny SD1.5 folder, once a module)
from trainer.engine.run import train
from trainer.networks.save import read_lora

LOADERS_READ = {"ss_v2", "ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha",
                "ss_network_args", "sshs_model_hash", "sshs_legacy_hash", "danlu_version"}
PRIVATE = ("ss_tag_frequency", "ss_dataset_dirs", "ss_sd_model_name", "ss_output_name", "danlu_config",
           "modelspec.thumbnail", "ss_training_comment")


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):  # noqa: F811
    data = make_dataset(tmp_path_factory.mktemp("data"), n=2)
    out = {}
    for private in (False, True):
        run_dir = tmp_path_factory.mktemp("run")
        cfg = tiny_config(tiny_model, data, network__conv_dim=2, network__conv_alpha=1.0,
                          publish__no_metadata=private, publish__metadata_title="ZK", publish__metadata_author="me",
                          publish__training_comment="my folder is /home/me/secret", training__max_train_steps=2,
                          sampling__sample_prompts="zk", sampling__sample_every_n_steps=1, sampling__sample_width=64,
                          sampling__sample_height=64, sampling__sample_steps=1)
        assert train(cfg, run_dir) == 0
        out[private] = run_dir
    return out


def test_the_file_keeps_only_what_loaders_read(runs):
    tensors, full = read_lora(runs[False] / "output" / "t.safetensors")
    same, meta = read_lora(runs[True] / "output" / "t.safetensors")
    assert all(key in full for key in PRIVATE)  # what the switch takes out is there without it
    kept = {k for k in meta if not k.startswith("modelspec.")}
    assert kept == LOADERS_READ, kept ^ LOADERS_READ
    assert not any(key in meta for key in PRIVATE)
    assert meta["modelspec.title"] == "ZK" and meta["modelspec.author"] == "me"  # what the user wrote to share
    for key in ("ss_network_dim", "ss_network_alpha", "ss_network_args", "ss_base_model_version"):
        assert meta[key] == full[key], key
    assert set(same) == set(tensors)


def test_the_model_card_still_lists_the_tags(runs):
    card = (runs[True] / "output" / "t.md").read_text(encoding="utf-8")
    assert "circle" in card  # the tags with their counts: a file the user chooses to share (publish.model_card)


def test_checkpoint_headers_leave_the_config_out_too():
    from trainer.checkpoints.session_save import checkpoint_header
    from trainer.config import config_from_dict

    full = {"modelspec.title": "x", "modelspec.thumbnail": "data:", "danlu_version": "1", "danlu_config": "a=1",
            "ss_tag_frequency": "{}"}
    private = config_from_dict({"publish": {"no_metadata": True}})
    assert checkpoint_header(full, private) == {"modelspec.title": "x", "danlu_version": "1"}
    assert checkpoint_header(full, config_from_dict({})) == {k: v for k, v in full.items() if k != "ss_tag_frequency"}


def test_sd_scripts_no_metadata_imports():
    from trainer.config.kohya import export_kohya, import_kohya

    cfg = import_kohya({"train_data_dir": "img", "no_metadata": True})
    assert cfg.publish.no_metadata is True and export_kohya(cfg)["no_metadata"] is True
