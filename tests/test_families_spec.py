"""The family design: a family's torch-free SPEC is what the LoRA key naming and the memory estimate read, so a
new family (here a fake one, registered without touching any other module) gets its own names and figures."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
from pathlib import Path

import pytest

from trainer.config import TrainConfig, apply_overlay
from trainer.families import FAMILIES, get_family, get_spec, trained_families
from trainer.families.spec import FamilySpec, LoraBlocks, LoraNaming
from trainer.memory import estimate_memory
from trainer.models.tiny import build_tiny_sd15
from trainer.networks.block_lr import block_of, block_weights
from trainer.networks.inject import add_lora
from trainer.networks.kohya_format import from_kohya_state_dict, kohya_names, to_kohya_state_dict

ROOT = Path(__file__).resolve().parents[1]
FAKE_NAMING = LoraNaming(text_encoders={"text_encoder": "lora_fake_te_"},
                         unet_names=lambda unet: lambda path: "lora_fake_unet_" + path.replace(".", "_"))


def register(monkeypatch, spec: FamilySpec) -> None:
    """What adding a family package does: a module trainer.families.<name> holding SPEC, and its name listed."""
    package = types.ModuleType(f"trainer.families.{spec.name}")
    package.SPEC = spec
    monkeypatch.setitem(sys.modules, package.__name__, package)
    monkeypatch.setattr("trainer.families.FAMILIES", (*FAMILIES, spec.name))


@pytest.fixture(scope="module")
def lora():
    pipe = build_tiny_sd15(seed=0)
    return add_lora(pipe.unet, [pipe.text_encoder], dim=2, alpha=1.0, train_unet=True, train_text_encoder=True)


def test_a_registered_family_names_lora_modules_with_its_own_prefixes(monkeypatch, lora):
    register(monkeypatch, FamilySpec(name="fake", base_model_version="fake_v1", lora_naming=FAKE_NAMING,
                                     resolution=512))
    names = {k.split(".")[0] for k in to_kohya_state_dict(lora, "fake")}
    sd15 = {k.split(".")[0] for k in to_kohya_state_dict(lora, "sd15")}
    assert names == {n.replace("lora_unet_", "lora_fake_unet_").replace("lora_te_", "lora_fake_te_") for n in sd15}
    back = from_kohya_state_dict(to_kohya_state_dict(lora, "fake"), lora, "fake")
    assert {c: set(m) for c, m in back.items()} == {c: set(lora.layers(c)) for c in lora.models}
    with pytest.raises(ValueError, match="model.family 'fake' has no training engine"):
        get_family("fake")


def test_a_family_whose_files_fuse_unet_modules_saves_and_loads_through_its_own_hooks(monkeypatch, lora):
    seen, split = {}, []

    def fuse(modules, down, up, alpha):
        seen.update(modules)
        return {"lora_fake_unet_fused.alpha": 1}

    def split_fused(state_dict, groups, lora_set):
        split.append(sorted(groups))
        left = {name: parts for name, parts in groups.items() if name != "lora_fake_unet_fused"}
        return left, dict(seen)

    register(monkeypatch, FamilySpec(name="fake", base_model_version="fake_v1", resolution=512,
                                     lora_naming=dataclasses.replace(FAKE_NAMING, fused_unet=fuse)))
    sd = to_kohya_state_dict(lora, "fake")
    assert set(seen) == set(lora.layers("unet")) and "lora_fake_unet_fused.alpha" in sd
    assert not any(k.startswith("lora_fake_unet_") and k != "lora_fake_unet_fused.alpha" for k in sd)
    with pytest.raises(ValueError, match=r"modules this network does not have \(1\): \['lora_fake_unet_fused'\]"):
        from_kohya_state_dict(sd, lora, "fake")  # no way back given: the fused name matches no module
    register(monkeypatch, FamilySpec(name="fake", base_model_version="fake_v1", resolution=512,
                                     lora_naming=dataclasses.replace(FAKE_NAMING, fused_unet=fuse,
                                                                     split_fused=split_fused)))
    back = from_kohya_state_dict(sd, lora, "fake")
    assert split and "lora_fake_unet_fused" in split[0]
    assert set(back["unet"]) == set(lora.layers("unet")) and set(back["text_encoder"]) == set(lora.layers("text_encoder"))


def test_block_weights_count_the_family_s_own_blocks(monkeypatch):
    blocks = LoraBlocks(count=2, mid=1, block_of=lambda name: ("up", 1) if "_up_" in name else None)
    register(monkeypatch, FamilySpec(name="fake", base_model_version="fake_v1", lora_naming=FAKE_NAMING,
                                     resolution=512, lora_blocks=blocks))
    n = types.SimpleNamespace(down_lr_weight="0.5", mid_lr_weight="", up_lr_weight="linear")
    assert block_weights(n, "fake") == {"down": [0.5, 1.0], "mid": [1.0], "up": [0.0, 1.0]}
    assert block_of("oft_unet_x_up_y", "fake") == ("up", 1) and block_of("lora_unet_x", "fake") is None
    with pytest.raises(ValueError, match="at most 2 weights"):
        block_weights(types.SimpleNamespace(down_lr_weight="1,1,1", mid_lr_weight="", up_lr_weight=""), "fake")
    with pytest.raises(ValueError, match="block weights are defined for sd15, sd2, sdxl, fake, not flux"):
        block_weights(n, "flux")


def test_sd2_files_name_modules_as_sd15_files_and_sd2_is_not_trained(lora):
    assert kohya_names(lora, "sd2") == kohya_names(lora, "sd15")
    assert "sd2" not in trained_families() and get_spec("sd2").base_model_version == "sd_v2"
    with pytest.raises(ValueError, match="model.family 'sd2' has no training engine"):
        get_family("sd2")


def test_an_unknown_family_is_refused_by_name(lora):
    with pytest.raises(ValueError, match="'sd3' is not one Danlu knows"):
        to_kohya_state_dict(lora, "sd3")


def test_the_estimate_reads_the_family_s_own_figures(monkeypatch):
    spec = get_spec("sd15")
    cfg = apply_overlay(TrainConfig(), {"speed": {"cache_latents": True},
                                        "training": {"network_train_unet_only": True}})  # the U-Net's alone
    before = estimate_memory(cfg).parts["activations"]
    doubled = dataclasses.replace(spec.memory, activations_gb=2 * spec.memory.activations_gb)
    monkeypatch.setattr(sys.modules["trainer.families.sd15"], "SPEC", dataclasses.replace(spec, memory=doubled))
    assert estimate_memory(cfg).parts["activations"] == pytest.approx(2 * before, rel=0.01)


def test_engine_objects_carry_their_spec_s_names():
    for name in trained_families():
        family, spec = get_family(name), get_spec(name)
        assert (family.name, family.base_model_version, family.modelspec_architecture) == (
            spec.name, spec.base_model_version, spec.modelspec_architecture) and family.spec is spec


def test_specs_and_the_memory_estimate_import_no_torch():
    """The UI estimates memory on every edit: the specs (names, key naming, figures) must stay torch-free."""
    code = ("import sys; from trainer.families import FAMILIES, get_spec, trained_families; "
            "from trainer.config import TrainConfig; from trainer.memory import estimate_memory; "
            "from trainer.models.detect import native_resolution; "
            "[get_spec(f) for f in FAMILIES]; "
            "[estimate_memory(TrainConfig.model_validate({'model': {'family': f}})) for f in trained_families()]; "
            "print([m for m in ('torch', 'diffusers', 'transformers', 'gradio') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_config_offers_exactly_the_families_the_engine_trains():
    from typing import get_args

    from trainer.config.groups_core import ModelGroup
    from trainer.config.spec import FAMILIES as CONFIG_FAMILIES

    assert CONFIG_FAMILIES == trained_families()
    assert get_args(ModelGroup.model_fields["family"].annotation) == trained_families()


def test_a_family_builds_its_networks_with_the_builders_its_spec_names(monkeypatch):
    from trainer.networks.factory import build_network

    seen = []
    builders = types.ModuleType("fake_builders")
    builders.BUILDERS = {"networks.lora": lambda n, family, unet, tes, **parts: seen.append((family, unet)) or "net"}
    monkeypatch.setitem(sys.modules, "fake_builders", builders)
    register(monkeypatch, FamilySpec(name="fake", label="Fake", base_model_version="fake_v1", lora_naming=FAKE_NAMING,
                                     resolution=512, network_builders="fake_builders"))
    n = types.SimpleNamespace(network_module="networks.lora")
    assert build_network(n, "fake", "the-unet", []) == "net" and seen == [("fake", "the-unet")]
    with pytest.raises(ValueError, match="networks.oft is not supported for Fake yet; use networks.lora$"):
        build_network(types.SimpleNamespace(network_module="networks.oft"), "fake", "the-unet", [])


def test_a_family_without_a_full_checkpoint_layout_is_refused_by_name():
    from trainer.checkpoints.write import original_layout
    from trainer.engine.errors import EngineError

    with pytest.raises(EngineError, match="model.family 'flux': saving a full checkpoint is not supported yet"):
        original_layout("flux", None, None, [])
