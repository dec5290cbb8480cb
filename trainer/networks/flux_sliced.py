"""LoKr, GLoRA, diag-OFT and DoRA on Flux: one lycoris-lora module per diffusers Linear, saved under the names ComfyUI and Forge apply
to that Linear's SLICE of BFL's fused weight.

diffusers splits BFL's fused Linears (a double block's img_attn.qkv / txt_attn.qkv into q, k, v; a single block's
linear1 into q, k, v and proj_mlp). A LoKr (a Kronecker product) or a DoRA (a magnitude per input column, divided by
the column norms of the whole adapted weight) of a fused Linear is not the stack of its splits' modules, so
sd-scripts' fused names (flux_lycoris) cannot hold them. ComfyUI and Forge also read Flux LyCORIS files named by
diffusers paths, `lycoris_<path with _>` (SimpleTuner's names; comfy/lora.py model_lora_keys_unet, Flux branch, via
comfy/utils.py flux_to_diffusers): a split Linear's name maps to the fused BFL weight with (dim 0, row offset, rows),
and the module is applied to those rows alone (weight.narrow), DoRA's column norms included. A split trained here
computes exactly that on its own weight, so the file applies as trained. Every transformer module is named this way
(one rule; the unsplit ones map 1:1); CLIP-L's keep their lora_te1_ names.

GLoRA (W a1 a2 + b1 b2: the slice's own rows of W times an input-side factor) and diag-OFT (rotations of blocks of
output rows) are likewise exact per slice; ComfyUI's ia3/full/dylora/boft are refused (config.rules_flux says why).

DoRA rebuilds the weight each step (its norm needs it; lycoris' LoCon bypass forward would skip the decomposition),
from a compute-dtype copy where fp8_base stores the base in fp8 (fp8_reads, as on SD); so does diag-OFT (its
bypass forward rotates the bias as well, which ComfyUI leaves alone). LoKr and GLoRA without DoRA run in lycoris' bypass mode like flux_lycoris'
LoCon/LoHa.
"""

from __future__ import annotations

from torch import nn

from trainer.config.rules_flux import FLUX_REBUILT_ALGOS
from trainer.families.flux import SLICED_PREFIX as PREFIX
from trainer.networks.inject import UNET
from trainer.networks.lycoris_net import LycorisSet, add_lycoris

# the algorithms saved per split at any setting (others only with dora_wd), each checked against ComfyUI's rule on
# slices (tests/test_networks_flux_sliced.py); REBUILT: trained by rebuilding the weight (rules_flux says why)
SLICED_ALGOS = ("lokr", "glora", "diag-oft")
REBUILT = FLUX_REBUILT_ALGOS
# network_args each kind takes. LoKr's bypass forward never applies rank_dropout (lycoris-lora 4.1), so it is left
# out there; DoRA rebuilds the weight, where rank_dropout applies and `dropout` (of the bypass output) does not.
LOKR_ARGS = ("dropout", "module_dropout", "factor", "decompose_both", "dora_wd")
DORA_ARGS = ("dora_wd", "rank_dropout", "module_dropout", "factor", "decompose_both")
# GLoRA and diag-OFT apply rank_dropout and module_dropout, not `dropout` (GLoRA never, diag-OFT only in bypass mode);
# no DoRA, and no constraint: lycoris multiplies it by the output width, ComfyUI reads the file's alpha as it is
OTHER_ARGS = ("rank_dropout", "module_dropout")


def sliced_name(path: str) -> str:
    """A transformer Linear's file name: `transformer_blocks.0.attn.to_q` -> `lycoris_transformer_blocks_0_attn_to_q`."""
    return PREFIX + path.replace(".", "_")


def sliced_modules(keys) -> list[str]:
    """The modules of a LoRA file named for slices. diffusers' Flux load_lora_weights (0.42) loads none of them and
    drops dora_scale, with warnings only, so a file of them renders there as the base model (plus CLIP-L's LoRA)."""
    return sorted({k.partition(".")[0] for k in keys if k.startswith(PREFIX)})


def is_sliced(algo: str, items) -> bool:
    """Whether a lycoris network of `algo` with these network_args is saved per split (LoKr, or any DoRA)."""
    from trainer.networks.lycoris_args import flag, split_args

    return algo in SLICED_ALGOS or flag(split_args(items), "dora_wd")


def check_sliced(algo: str, items, dropout: float, who: str) -> bool:
    """ValueError naming what a sliced Flux network cannot apply; returns whether DoRA is on."""
    from trainer.networks.lycoris_args import flag, refuse_others, split_args

    args = split_args(items)
    if algo in SLICED_ALGOS and algo != "lokr":
        refuse_others(args, OTHER_ARGS, who, "not yet dora_wd or constraint/rescaled")
        if dropout:
            raise ValueError(f"network.network_dropout: {algo} on Flux applies no dropout; set it to 0 "
                             "(rank_dropout in network_args applies)")
        return False
    dora = flag(args, "dora_wd")
    allowed = DORA_ARGS if dora else LOKR_ARGS
    if algo != "lokr":
        allowed = tuple(a for a in allowed if a not in ("factor", "decompose_both"))
    refuse_others(args, allowed, who, "DoRA rebuilds the weight, so `dropout` is not applied with it" if dora
                  else "LoKr's bypass forward applies no rank_dropout")
    if dora and dropout:
        raise ValueError("network.network_dropout: DoRA on Flux rebuilds the weight each step, where lycoris-lora "
                         "applies no dropout; set it to 0 (rank_dropout in network_args applies)")
    return dora


def add_flux_sliced(transformer: nn.Module, text_encoders: list, *, algo: str, dim: int, alpha: float,
                    dropout: float, network_args: list[str], preset: str, kind: str, **parts) -> LycorisSet:
    """A lycoris network of `algo` on the transformer's block Linears (`preset`) and CLIP-L, named for slices."""
    dora = check_sliced(algo, network_args, dropout, f"{kind} on Flux" if kind != "lycoris.kohya"
                        else f"lycoris.kohya {algo} on Flux")
    rebuilt = dora or algo in REBUILT
    net = add_lycoris(transformer, text_encoders, family="flux", dim=dim, alpha=alpha, algo=algo, dropout=dropout,
                      network_args=[*network_args, f"preset={preset}", f"bypass_mode={not rebuilt}"], **parts)
    paths = {id(m): p for p, m in transformer.named_modules()}
    names = {m.lora_name: sliced_name(paths[id(m.org_module[0])]) if net.components[m.lora_name] == UNET
             else net.names[m.lora_name] for m in net.network.loras}
    return LycorisSet(net.network, names, net.components, algo=algo, kind=kind)

