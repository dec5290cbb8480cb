"""Saving LoRA files: precision, float32 alpha, ss_* metadata, the model hash, and atomic replacement."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import pytest
import torch

from trainer.config import config_from_dict
from trainer.networks import save as save_module
from trainer.networks.metadata import RunFacts, training_header
from trainer.networks.save import read_lora, save_lora


def _kohya_like(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": torch.randn(4, 32, 1, 1, generator=gen),
        "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight": torch.randn(32, 4, 1, 1, generator=gen),
        "lora_unet_mid_block_attentions_0_proj_in.alpha": torch.tensor(2.5),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.randn(4, 32, generator=gen),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.randn(37, 4, generator=gen),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha": torch.tensor(2.5),
    }


def _metadata(**overrides):
    return {"ss_network_dim": "4", "ss_tag_frequency": json.dumps({"5_zk": {"zk": 8, "red circle": 1, "圆": 2}},
                                                                   ensure_ascii=False)} | overrides


def _run_facts(**overrides) -> RunFacts:
    return RunFacts(**{
        "session_id": 12, "started_at": 1700000000.5, "base_model_version": "sd_v1",
        "architecture": "stable-diffusion-v1", "implementation": "diffusers", "num_train_images": 8,
        "num_reg_images": 0, "batches_per_epoch": 4, "epochs": 2, "total_steps": 8,
        "optimizer": "torch.optim.adamw.AdamW", "dataset": {"tag_frequency": {"5_zk": {"zk": 8}}},
        "bucket_info": {"buckets": {"0": {"resolution": [64, 64], "count": 8}}}} | overrides)


def test_header_values_are_strings_in_sd_scripts_forms():
    cfg = config_from_dict({"network": {"network_dim": 4, "network_alpha": 2.5}})
    meta = training_header(cfg, _run_facts(), steps=8, epoch=2, finished_at=1700000100.0)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2.5"
    assert meta["ss_resolution"] == "(512, 512)" and meta["ss_unet_lr"] == "None"
    assert "ss_network_args" not in meta  # sd-scripts writes it only when there are network args
    assert json.loads(meta["ss_bucket_info"])["buckets"]["0"]["count"] == 8
    assert float(meta["ss_training_finished_at"]) == 1700000100.0 and meta["ss_session_id"] == "12"
    off = training_header(config_from_dict({"dataset": {"enable_bucket": False}}), _run_facts(), steps=1, epoch=1)
    assert off["ss_bucket_info"] == "null"  # bucketing off: JSON null, as sd-scripts writes it
    conv = config_from_dict({"network": {"conv_dim": 4, "conv_alpha": 2.0}})
    assert json.loads(training_header(conv, _run_facts(), steps=1, epoch=1)["ss_network_args"]) == {
        "conv_dim": "4", "conv_alpha": "2.0"}


@pytest.mark.parametrize(("precision", "dtype"), [("fp16", torch.float16), ("bf16", torch.bfloat16),
                                                  ("float", torch.float32), ("fp32", torch.float32)])
def test_precision_applies_to_weights_but_alpha_stays_float32(tmp_path, precision, dtype):
    sd = _kohya_like()
    path = save_lora(tmp_path / "a.safetensors", sd, _metadata(), precision=precision)
    tensors, meta = read_lora(path)
    assert set(tensors) == set(sd)
    for key, tensor in tensors.items():
        if key.endswith(".alpha"):
            assert tensor.dtype == torch.float32 and tensor.dim() == 0 and tensor.item() == 2.5
        else:
            assert tensor.dtype == dtype
            torch.testing.assert_close(tensor.float(), sd[key], atol=2e-2, rtol=2e-2)
    assert meta["ss_network_dim"] == "4"
    assert json.loads(meta["ss_tag_frequency"])["5_zk"]["圆"] == 2


def test_model_hash_is_sha256_of_the_bytes_after_the_header(tmp_path):
    path = save_lora(tmp_path / "a.safetensors", _kohya_like(), _metadata(), precision="fp16")
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert read_lora(path)[1]["sshs_model_hash"] == hashlib.sha256(data[8 + n:]).hexdigest()
    # Metadata does not enter the hash; the weights do.
    other_meta = save_lora(tmp_path / "b.safetensors", _kohya_like(), _metadata(output_name="x"), "fp16")
    other_weights = save_lora(tmp_path / "c.safetensors", _kohya_like(seed=1), _metadata(), "fp16")
    hashes = [read_lora(p)[1]["sshs_model_hash"] for p in (path, other_meta, other_weights)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_unknown_precision_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fp8"):
        save_lora(tmp_path / "a.safetensors", _kohya_like(), {}, precision="fp8")


@pytest.mark.parametrize("fail_in", ["fsync", "replace"])
def test_interrupted_save_leaves_the_old_file_intact(tmp_path, monkeypatch, fail_in):
    path = save_lora(tmp_path / "lora.safetensors", _kohya_like(seed=0), _metadata(), precision="fp16")
    old_bytes = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-save")

    # The write goes through trainer.textio's temp file; fail after the temp file holds the new bytes.
    monkeypatch.setattr(os, fail_in, boom)
    with pytest.raises(KeyboardInterrupt):
        save_module.save_lora(path, _kohya_like(seed=1), _metadata(), precision="fp16")
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    tensors, _ = read_lora(path)
    assert torch.equal(tensors["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"],
                       _kohya_like(seed=0)["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"].half())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora.safetensors"]  # no temp file left behind


@pytest.mark.parametrize("content", [b"", b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":", b"not a tensor file at all"])
def test_a_torn_or_empty_file_is_named_with_the_fix(tmp_path, content):
    path = tmp_path / "torn.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"torn\.safetensors.*not a readable \.safetensors file"):
        read_lora(path)
