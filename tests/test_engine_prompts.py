"""Sample prompts in sd-scripts' syntax."""

import pytest

from trainer.engine.prompts import parse_prompts

DEFAULTS = dict(negative="lowres", width=512, height=512, seed=42, steps=20, cfg=7.0)


def test_inline_options_override_the_defaults_and_comments_are_skipped():
    text = "# a comment\nzk, smile --n bad hands, blurry --w 640 --h 768 --d 7 --s 30 --l 5.5 --g 3.5\n\nplain prompt\n"
    first, second = parse_prompts(text, **DEFAULTS)
    assert (first.prompt, first.negative, first.width, first.height, first.seed, first.steps, first.cfg,
            first.guidance) == ("zk, smile", "bad hands, blurry", 640, 768, 7, 30, 5.5, 3.5)
    assert (second.prompt, second.negative, second.width, second.seed, second.guidance) == \
        ("plain prompt", "lowres", 512, 42, None)


def test_a_bad_number_names_the_setting_and_the_line():
    with pytest.raises(ValueError, match=r"sample_prompts.*--w wide"):
        parse_prompts("zk --w wide", **DEFAULTS)
