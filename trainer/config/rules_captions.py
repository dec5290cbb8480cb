"""Rules for caption settings (registered with the others in trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, warning
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


@rule
def _weighted_captions_split_at_commas(cfg: TrainConfig) -> list[Finding]:
    """Shuffling and tag dropout cut captions at commas before the weights are read, so a weighted group holding
    a comma, (red hair, blue eyes:1.2), is torn apart; sd-scripts warns of the same in its help."""
    c = cfg.caption
    if not c.weighted_captions or not (c.shuffle_caption or c.caption_tag_dropout_rate > 0):
        return []
    return [warning("caption.weighted_captions", "captions are shuffled or tags dropped at commas before the weights "
                    "are read: keep commas out of weighted groups, (red hair:1.2), (blue eyes:1.2), not "
                    "(red hair, blue eyes:1.2), or their brackets are split apart",
                    "标注在读取权重之前会按逗号打乱或丢弃标签：加权括号内不要有逗号，应写成 (red hair:1.2), (blue eyes:1.2)，"
                    "而不是 (red hair, blue eyes:1.2)，否则括号会被拆开")]
