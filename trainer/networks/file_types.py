"""What kind of network a LoRA file holds, read off its keys with lycoris-lora's own detectors, so continuing
from a file of another kind (a LoHa into a LoRA run) fails with an error that names both kinds."""

from __future__ import annotations

import torch

# lycoris module class -> what the file is, in words; and the (network_module, algo) pairs that can load it.
# LoRA, LoCon and DyLoRA files share the lora_down/lora_up layout.
KINDS = {
    "LoConModule": ("LoRA/LoCon (lora_down/lora_up)", {("networks.lora", ""), ("networks.dylora", ""),
                                                       ("lycoris.kohya", "locon"), ("lycoris.kohya", "dylora")}),
    "LohaModule": ("LyCORIS LoHa (hada_*)", {("lycoris.kohya", "loha")}),
    "LokrModule": ("LyCORIS LoKr (lokr_*)", {("lycoris.kohya", "lokr")}),
    "IA3Module": ("LyCORIS IA3", {("lycoris.kohya", "ia3")}),
    "FullModule": ("LyCORIS full (diff)", {("lycoris.kohya", "full")}),
    "DiagOFTModule": ("OFT / LyCORIS diag-OFT (oft_blocks)", {("lycoris.kohya", "diag-oft"), ("networks.oft", "")}),
    "ButterflyOFTModule": ("LyCORIS BOFT (oft_blocks)", {("lycoris.kohya", "boft")}),
    "GLoRAModule": ("LyCORIS GLoRA (a1/a2/b1/b2)", {("lycoris.kohya", "glora")}),
}


def describe_network(module: str, algo: str) -> str:
    return f"lycoris.kohya algo={algo}" if module == "lycoris.kohya" else module


def file_kinds(state_dict: dict[str, torch.Tensor]) -> dict[str, set[tuple[str, str]]]:
    """description -> loaders, for every kind of module found in the file (usually one)."""
    from lycoris.modules import MODULE_LIST

    names = {key.partition(".")[0] for key in state_dict}
    found: dict[str, set[tuple[str, str]]] = {}
    for name in names:
        for cls in MODULE_LIST:
            if cls.__name__ in KINDS and cls.algo_check(state_dict, name):
                words, loaders = KINDS[cls.__name__]
                found.setdefault(words, loaders)
                break
    return found


def _loader_words(loaders, dora: bool) -> str:
    """How to set a run up to load a file: `network_module = lycoris.kohya, lycoris_algo = lokr` (or ...)."""
    ways = [f"network_module = {m}" + (f", lycoris_algo = {a}" if a else "") for m, a in sorted(loaders)]
    return " or ".join(ways) + (" with network_args dora_wd=True" if dora else "")


def check_same_type(state_dict: dict[str, torch.Tensor], module: str, algo: str = "") -> None:
    """ValueError naming the file's kind, this run's network and the settings that load the file when this network
    cannot load it."""
    kinds = file_kinds(state_dict)
    wanted = (module, algo if module == "lycoris.kohya" else "")
    foreign = sorted(words for words, loaders in kinds.items() if wanted not in loaders)
    if foreign:
        dora = any(key.endswith(".dora_scale") for key in state_dict)
        fixes = "; ".join(_loader_words(kinds[words], dora) for words in foreign)
        raise ValueError(f"the file holds a {' + '.join(foreign)} network, but this run trains "
                         f"{describe_network(module, algo)}; to continue it set {fixes}, or choose another file")
