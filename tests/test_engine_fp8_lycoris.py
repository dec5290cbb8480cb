"""speed.fp8_base with every SD network type lycoris-lora trains (networks.lora with network_args, networks.dylora,
networks.oft, each lycoris.kohya algorithm): the U-Net's Linears are stored in fp8 (diffusers' layerwise casting,
trainer/engine/fp8.py) and cast only inside their own forward, while lycoris modules that rebuild the weight read it
outside. The same network must compute on the fp8-stored U-Net exactly what it computes on a float copy of those
fp8-rounded weights, and an fp8 run must train and save the file a run without fp8 saves."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from tests.engine_helpers import losses, make_dataset, save_tiny_sd15, tiny_config
from tests.test_networks_lycoris import BUILDERS, _forward, _text_encoders
from trainer.engine.fp8 import STORAGE, store_in_fp8
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora

# id -> the network group's fields (network_dim 4, network_alpha 2 unless set)
KINDS = {
    "lora-dora": {"network_module": "networks.lora", "network_args": ["dora_wd=True"]},
    "lora-rank-dropout": {"network_module": "networks.lora", "network_args": ["rank_dropout=0.1", "module_dropout=0.1"]},
    "dylora": {"network_module": "networks.dylora", "dylora_unit": 2},
    "oft": {"network_module": "networks.oft", "network_args": ["enable_all_linear=True"]},
    "locon": {"lycoris_algo": "locon", "conv_dim": 2, "conv_alpha": 1.0},
    "locon-dropout": {"lycoris_algo": "locon", "network_dropout": 0.1},
    "loha": {"lycoris_algo": "loha"},
    "loha-dora": {"lycoris_algo": "loha", "network_args": ["dora_wd=True"]},
    "lokr": {"lycoris_algo": "lokr"},
    "lokr-dora": {"lycoris_algo": "lokr", "network_args": ["dora_wd=True"]},
    "ia3": {"lycoris_algo": "ia3"},
    "lycoris-dylora": {"lycoris_algo": "dylora"},
    "diag-oft": {"lycoris_algo": "diag-oft"},
    "boft": {"lycoris_algo": "boft", "network_args": ["preset=unet-transformer-only"]},
    "glora": {"lycoris_algo": "glora"},
}


def _fields(kind: str) -> dict:
    return {"network_module": "lycoris.kohya", "lycoris_algo": "locon", "network_dim": 4, "network_alpha": 2.0,
            "network_args": [], "conv_dim": 0, "conv_alpha": 0.0, "network_dropout": 0.0, "dylora_unit": 4,
            **KINDS[kind]}


def _pipes(family):
    """The tiny model with its U-Net stored in fp8, and the same model as a float copy of those rounded weights."""
    stored = BUILDERS[family](seed=0)
    store_in_fp8(stored.unet, torch.float32)
    rounded = BUILDERS[family](seed=0)
    rounded.unet.load_state_dict({k: v.float() for k, v in stored.unet.state_dict().items()})
    return stored, rounded


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_network_on_the_fp8_stored_unet_computes_as_on_its_rounded_weights(kind, family):
    stored, rounded = _pipes(family)
    outputs, states = [], []
    for pipe in (stored, rounded):
        torch.manual_seed(0)  # lycoris draws its start weights at random
        net = build_network(SimpleNamespace(**_fields(kind)), family, pipe.unet, _text_encoders(pipe, family))
        gen = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for p in net.parameters():  # most algorithms start as the identity: move every weight
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        net.network.eval()  # dropouts off: the two passes must compute the same thing
        random.seed(0)  # DyLoRA draws each forward's rank with Python's random
        outputs.append(_forward(pipe, family))
        states.append({k: v.shape for k, v in net.kohya_state_dict(family).items()})
    assert any(p.dtype == STORAGE for p in stored.unet.parameters())
    base = _forward(BUILDERS[family](seed=0), family)
    assert not torch.allclose(outputs[1], base, atol=1e-4), "the network must change the output"
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    assert states[0] == states[1]


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp8-lycoris")
    return save_tiny_sd15(root / "model"), make_dataset(root / "data", n=2, folder="1_zk")


def _config(kind, sd15, **overrides):
    overrides = {"training__max_train_steps": 2, **overrides}
    network = {f"network__{k}": v for k, v in KINDS[kind].items()}
    if "network_module" not in KINDS[kind]:
        network["network__network_module"] = "lycoris.kohya"
    if KINDS[kind].get("network_module") == "networks.oft":
        network["training__network_train_unet_only"] = True
    return tiny_config(*sd15, **network, **overrides)


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_fp8_run_trains_and_saves_the_file_a_float_run_saves(kind, sd15, tmp_path):
    from trainer.config import check

    fp8 = _config(kind, sd15, speed__fp8_base=True)
    assert [f for f in check(fp8, for_training=False) if f.level == "error"] == []
    assert train(fp8, tmp_path / "fp8") == 0, read_events(tmp_path / "fp8")[0][-1]
    assert train(_config(kind, sd15), tmp_path / "float") == 0, read_events(tmp_path / "float")[0][-1]
    run_losses = losses(tmp_path / "fp8")
    assert len(run_losses) == 2 and all(loss == loss and abs(loss) < float("inf") for loss in run_losses)
    a, b = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("fp8", "float"))
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert all(v.dtype != STORAGE for v in a.values())


def test_fp8_base_with_lycoris_full_is_refused_naming_both(tmp_path):
    """lycoris' full algorithm trains each base weight itself: it cannot be built on fp8 weights."""
    from trainer.config import check

    cfg = tiny_config(tmp_path, tmp_path, speed__fp8_base=True, network__network_module="lycoris.kohya",
                      network__lycoris_algo="full")
    found = [(f.field, f.level) for f in check(cfg, for_training=False)]
    assert found == [("speed.fp8_base", "error")]
    message = next(f for f in check(cfg, for_training=False) if f.field == "speed.fp8_base")
    assert "lycoris_algo = full" in message.en and "lycoris_algo = full" in message.zh
    without = tiny_config(tmp_path, tmp_path, network__network_module="lycoris.kohya", network__lycoris_algo="full")
    assert check(without, for_training=False) == []


def test_an_fp8_dora_run_resumed_from_its_state_equals_the_uninterrupted_run(sd15, tmp_path):
    assert train(_config("lora-dora", sd15, speed__fp8_base=True, training__max_train_steps=4), tmp_path / "full") == 0
    first = _config("lora-dora", sd15, speed__fp8_base=True, save__save_state=True)
    assert train(first, tmp_path / "first") == 0
    second = _config("lora-dora", sd15, speed__fp8_base=True, training__max_train_steps=4,
                     save__resume=str(tmp_path / "first" / "output" / "t-state"))
    assert train(second, tmp_path / "second") == 0, read_events(tmp_path / "second")[0][-1]
    assert losses(tmp_path / "second") == pytest.approx(losses(tmp_path / "full")[2:], rel=1e-5)
    a, b = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("full", "second"))
    assert a.keys() == b.keys() and any(k.endswith(".dora_scale") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
