"""Rules for caption settings (registered with the others in trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error, warning
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


@rule
def _weighted_captions_split_at_commas(cfg: TrainConfig) -> list[Finding]:
    """Shuffling, tag dropout and tag warm-up cut captions at commas before the weights are read, so a weighted group
    holding a comma, (red hair, blue eyes:1.2), is torn apart; sd-scripts warns of the same in its help."""
    c = cfg.caption
    if not c.weighted_captions or not (c.shuffle_caption or c.caption_tag_dropout_rate > 0 or c.token_warmup_step > 0):
        return []
    return [warning("caption.weighted_captions", "captions are cut at commas (to shuffle, drop or warm up tags) before "
                    "the weights are read: keep commas out of weighted groups, (red hair:1.2), (blue eyes:1.2), not "
                    "(red hair, blue eyes:1.2), or their brackets are split apart",
                    "标注在读取权重之前会按逗号切开（以打乱、丢弃或预热标签）：加权括号内不要有逗号，应写成 (red hair:1.2), "
                    "(blue eyes:1.2)，而不是 (red hair, blue eyes:1.2)，否则括号会被拆开")]


@rule
def _caption_separators(cfg: TrainConfig) -> list[Finding]:
    """An empty caption_separator cannot split a caption (sd-scripts fails on it), and a secondary_separator that holds
    caption_separator is cut apart with the tags before it could keep any together."""
    c = cfg.caption
    if not c.caption_separator:
        return [error("caption.caption_separator", "is empty, so captions cannot be split into tags; set it to , "
                      "(the default)", "为空，无法把标注切分为标签；请设为 ,（默认值）")]
    if c.secondary_separator and c.caption_separator in c.secondary_separator:
        return [error("caption.secondary_separator", f"'{c.secondary_separator}' holds caption_separator "
                      f"'{c.caption_separator}', so captions are split inside it and it keeps no tags together; use "
                      "another, e.g. ;;;", f"'{c.secondary_separator}' 中含有 caption_separator '{c.caption_separator}'，"
                      "标注会在其内部被切开，无法把标签连在一起；请换一个，如 ;;;")]
    return []


@rule
def _prefix_and_suffix_on_every_wildcard_line(cfg: TrainConfig) -> list[Finding]:
    """sd-scripts glues caption_prefix and caption_suffix to a wildcard caption file as a whole, so only its first
    line gets the prefix and only its last the suffix. Danlu gives them to every line, which is what they are for;
    `check` says so, as it does wherever Danlu trains an sd-scripts setting differently on purpose."""
    c = cfg.caption
    if not c.enable_wildcard:
        return []
    return [warning(f"caption.{name}", "goes on every line of a caption file of several lines here; sd-scripts adds "
                    "caption_prefix to a file's first line only and caption_suffix to its last only",
                    "在这里会加到多行标注文件的每一行；sd-scripts 只把 caption_prefix 加到文件的第一行、caption_suffix "
                    "只加到最后一行") for name in ("caption_prefix", "caption_suffix") if getattr(c, name)]


@rule
def _warmup_min_without_warmup(cfg: TrainConfig) -> list[Finding]:
    c = cfg.caption
    if c.token_warmup_step > 0 or c.token_warmup_min == 1:  # 1: the default, said of every run otherwise
        return []
    return [warning("caption.token_warmup_min", "does nothing without token_warmup_step (the tag warm-up's length); "
                    "set that too, or leave this at 1", "未设置 token_warmup_step（标签预热的长度）时无效；请一并设置，"
                    "或保持为 1")]
