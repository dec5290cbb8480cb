"""What a model family is, without torch: its names, sd-scripts' LoRA key naming and its memory figures.

Each family package (trainer/families/<name>/__init__.py) holds one `SPEC`; the UI reads it (the memory
estimate runs on every edit and must not import torch), the engine reads it through the family object
(`<name>/engine.py`), and trainer.networks.kohya_format names a LoRA's modules with its `lora_naming`.
Functions here that need the model import what they need when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.memory.table import FamilyCosts

UNET_PREFIX = "lora_unet_"


def diffusers_unet_names(unet: Any) -> Callable[[str], str]:
    """U-Net module path -> kohya name for files that keep diffusers' module paths (SD1.x/SD2.x)."""
    return lambda path: UNET_PREFIX + path.replace(".", "_")


@dataclass(frozen=True)
class LoraNaming:
    """How sd-scripts names this family's LoRA modules: `<prefix><module path, '.' -> '_'>`."""

    # text-encoder component (its name in a LoRA set: text_encoder, text_encoder_2) -> kohya prefix
    text_encoders: Mapping[str, str]
    # text encoders whose kohya paths are their own module paths (a CLIP's always start with text_model.)
    plain_paths: frozenset[str] = frozenset()
    # the U-Net (or transformer) -> (its module path -> kohya name); the U-Net may be None when only
    # text encoders are named
    unet_names: Callable[[Any], Callable[[str], str]] = diffusers_unet_names
    # (U-Net module tensors, down key, up key, alpha key) -> state dict, for a family whose files fuse several
    # U-Net modules under one name (Flux's q/k/v); None: one name per module
    fused_unet: Callable[..., dict] | None = None
    # the way back for such files: (file state dict, kohya name -> its tensors, LoRA set) -> (the groups left,
    # U-Net module path -> LoraTensors of the modules split out of fused names); raises ValueError for a file that
    # is not this family's
    split_fused: Callable[..., tuple[dict, dict]] | None = None
    # a file's metadata -> what a run continuing it should be told about how other tools read it (Flux: sd-scripts'
    # split_qkv alpha); None: nothing to say
    file_note: Callable[[dict], str | None] = lambda meta: None
    # how a file's U-Net (transformer) module names start: what a text-encoder-only continue leaves out
    unet_prefixes: tuple[str, ...] = ("lora_unet_",)


@dataclass(frozen=True)
class LoraBlocks:
    """sd-scripts' block-wise learning rates (trainer.networks.block_lr) on this family's U-Net."""

    count: int  # down blocks, and as many up blocks (down_lr_weight / up_lr_weight entries)
    mid: int  # middle blocks (mid_lr_weight entries)
    block_of: Callable[[str], tuple[str, int] | None]  # U-Net file name -> ("down"|"mid"|"up", index); None: none


@dataclass(frozen=True)
class FamilySpec:
    name: str  # model.family
    base_model_version: str  # ss_base_model_version, as sd-scripts writes it
    lora_naming: LoraNaming
    resolution: int  # the image side the family was trained at, for models whose folder does not say
    # modelspec.architecture of the original model (a LoRA appends "/lora") and whose module names the LoRA keys
    # follow (modelspec.implementation), as sd-scripts writes them
    modelspec_architecture: str = ""
    modelspec_implementation: str = "diffusers"
    lora_blocks: LoraBlocks | None = None  # None: block weights do not apply
    memory: FamilyCosts | None = None  # the memory estimate's figures; None for a family Danlu does not train
    engine: str | None = None  # the module holding the engine's FAMILY object (imports torch); None: not trained
    # the module whose BUILDERS map network.network_module to the function that adapts this family's models
    network_builders: str = "trainer.networks.factory"
    label: str = ""  # the family's name in messages (SD1.5, Flux); the config name when empty
    convolutional: bool = True  # the denoiser is a convolutional U-Net (speed.channels_last applies to it)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
