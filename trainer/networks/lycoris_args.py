"""network_args for `lycoris.kohya`, checked against the algorithm chosen before lycoris-lora sees them.

lycoris' create_network reads a fixed set of keys and silently ignores the rest, and each algorithm's module
ignores options meant for another one (LoHa takes no `factor`). Which options an algorithm takes is read off
its module's constructor, so this list follows the installed lycoris-lora.
"""

from __future__ import annotations

import inspect
from typing import Any

# Options every algorithm takes (read by create_network for the whole network).
COMMON = ("preset", "dropout", "rank_dropout", "module_dropout", "train_norm", "use_tucker", "use_scalar",
          "loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
# Older spellings create_network still accepts -> today's name.
ALIASES = {"disable_conv_cp": "use_tucker", "use_cp": "use_tucker", "use_conv_cp": "use_tucker",
           "constrain": "constraint"}
# network_args name -> the module constructor's parameter it reaches (same name unless listed).
MODULE_PARAM = {"dora_wd": "weight_decompose", "wd_on_output": "wd_on_out"}
# Per-algorithm options create_network forwards to the module constructors.
FORWARDED = ("block_size", "constraint", "rescaled", "dora_wd", "wd_on_output", "full_matrix", "bypass_mode",
             "rs_lora", "unbalanced_factorization", "decompose_both", "factor")
ALGO_NAMES = {"locon": "LoCon", "loha": "LoHa", "lokr": "LoKr", "ia3": "IA3", "dylora": "DyLoRA",
              "diag-oft": "diag-OFT", "boft": "BOFT", "glora": "GLoRA", "full": "full fine-tune (LyCORIS full)"}


def accepted(algo: str) -> tuple[str, ...]:
    """Every network_args key `algo` takes, per the installed lycoris-lora."""
    from lycoris.wrapper import network_module_dict

    params = set(inspect.signature(network_module_dict[algo].__init__).parameters)
    own = tuple(k for k in FORWARDED if MODULE_PARAM.get(k, k) in params)
    return COMMON + own


TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def flag(args: dict[str, str], key: str) -> bool:
    """A true/false network argument (absent: false); anything else is an error naming it."""
    value = args.get(key, "false").strip().lower()
    if value not in TRUE_WORDS + FALSE_WORDS:
        raise ValueError(f"network.network_args: {key}={args[key]!r} is not true or false")
    return value in TRUE_WORDS


def refuse_others(args: dict[str, str], allowed, who: str, note: str = "") -> None:
    """ValueError naming the network_args keys `who` does not take, and those it takes (plus `note`)."""
    wrong = sorted(k for k in args if k not in allowed)
    if wrong:
        raise ValueError(f"network.network_args: {who} does not take {', '.join(wrong)} (it takes "
                         f"{', '.join(allowed)}{'; ' + note if note else ''})")


def split_args(items, field: str = "network.network_args") -> dict[str, str]:
    """["factor=8", "preset=attn-mlp"] -> {"factor": "8", ...}; values stay text, as sd-scripts passes them."""
    out = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"{field}: {item!r} is not key=value, e.g. preset=attn-mlp")
        out[key.strip()] = value.strip()
    return out


def lycoris_kwargs(algo: str, items, *, conv_dim: int | None, conv_alpha: float | None,
                   dropout: float) -> dict[str, Any]:
    """create_network's keyword arguments; ValueError naming any argument `algo` does not take."""
    from trainer.config.kohya import NETWORK_ARG_FIELDS

    if algo not in ALGO_NAMES:
        raise ValueError(f"network.lycoris_algo: {algo!r} is not a LyCORIS algorithm ({', '.join(ALGO_NAMES)})")
    args = {ALIASES.get(k, k): v for k, v in split_args(items).items()}
    as_fields = sorted(k for k in args if k in NETWORK_ARG_FIELDS)
    if as_fields:
        raise ValueError(f"network.network_args: set {', '.join(as_fields)} in the network fields "
                         f"({', '.join(NETWORK_ARG_FIELDS[k] for k in as_fields)}), not in network_args")
    refuse_others(args, sorted(accepted(algo)), f"{ALGO_NAMES[algo]} (lycoris_algo={algo})")
    kwargs: dict[str, Any] = {"algo": algo, **args}
    if flag(args, "dora_wd") and "wd_on_output" not in args:
        # DoRA magnitudes per input column, the axis A1111, Forge and ComfyUI apply as trained (lycoris' default,
        # per output row, is read by A1111 not at all and by ComfyUI/Forge with the base weight's norm)
        kwargs["wd_on_output"] = "False"
    if conv_dim:  # 0 means "no conv layers" in Danlu; lycoris' presets decide conv layers (enable_conv)
        kwargs["conv_dim"] = conv_dim
        kwargs["conv_alpha"] = conv_alpha if conv_alpha is not None else conv_dim
    if dropout and "dropout" not in args:  # network_dropout, as sd-scripts passes it to networks.lora
        kwargs["dropout"] = dropout
    _dropout_in_bypass(algo, args, kwargs)
    return kwargs


# Algorithms whose lycoris-lora modules apply `dropout` (in their bypass forward only; rebuilding the weight, the
# default forward, skips it). The others never apply it.
DROPOUT_ALGOS = ("locon", "loha", "lokr", "glora")


def _dropout_in_bypass(algo: str, args: dict[str, str], kwargs: dict[str, Any]) -> None:
    """Make a dropout take effect (lycoris' bypass forward), or refuse it where lycoris-lora would ignore it."""
    try:
        rate = float(kwargs.get("dropout") or 0)
    except ValueError:
        raise ValueError(f"network.network_args: dropout={kwargs['dropout']!r} is not a number") from None
    if not rate:
        return
    where = "network.network_args: dropout" if "dropout" in args else "network.network_dropout"
    if algo not in DROPOUT_ALGOS:
        raise ValueError(f"{where}: lycoris-lora's {ALGO_NAMES[algo]} never applies this dropout (network_dropout); "
                         f"set it to 0 (rank_dropout/module_dropout in network_args work)")
    if "bypass_mode" in args and not flag(args, "bypass_mode"):
        raise ValueError(f"{where}: lycoris-lora applies dropout only with bypass_mode on; remove bypass_mode=False "
                         "or set the dropout to 0")
    kwargs["bypass_mode"] = "True"
