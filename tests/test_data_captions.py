"""Caption processing with a seeded rng: keep tokens, separator, shuffle, tag and caption dropout."""

from __future__ import annotations

import random

from trainer.data.captions import drops_all_captions, process_caption, split_tags

TAGS = "zk, 1girl, red hair, smile, outdoors"


def run(caption, seed=0, **overrides):
    args = dict(shuffle=False, keep_tokens=0, keep_tokens_separator="", caption_dropout_rate=0.0,
                caption_tag_dropout_rate=0.0)
    args.update(overrides)
    return process_caption(caption, rng=random.Random(seed), **args)


def test_nothing_enabled_returns_the_first_line_unchanged():
    assert run("zk,1girl ,  smile\nsecond line") == "zk,1girl ,  smile"


def test_shuffle_keeps_the_first_keep_tokens_in_place():
    assert run(TAGS, shuffle=True, keep_tokens=1) == "zk, smile, 1girl, red hair, outdoors"
    out = [run(TAGS, seed=s, shuffle=True, keep_tokens=2) for s in range(20)]
    assert all(o.startswith("zk, 1girl, ") for o in out)
    assert all(sorted(o.split(", ")) == sorted(TAGS.split(", ")) for o in out)
    assert len(set(out)) > 1


def test_keep_tokens_separator_fixes_head_and_tail():
    caption = "zk, 1girl ||| red hair, smile, outdoors ||| masterpiece"
    assert run(caption, shuffle=True, keep_tokens_separator="|||") == \
        "zk, 1girl, red hair, outdoors, smile, masterpiece"
    # The separator is removed even when nothing is shuffled, and it wins over keep_tokens.
    assert run(caption, keep_tokens=4, keep_tokens_separator="|||") == \
        "zk, 1girl, red hair, smile, outdoors, masterpiece"


def test_separator_set_but_absent_falls_back_to_keep_tokens():
    assert run(TAGS, shuffle=True, keep_tokens=1, keep_tokens_separator="|||") == \
        "zk, smile, 1girl, red hair, outdoors"


def test_tag_dropout_zero_and_one():
    assert run(TAGS, keep_tokens=2, caption_tag_dropout_rate=1.0) == "zk, 1girl"
    assert run(TAGS, keep_tokens=2, caption_tag_dropout_rate=0.0) == TAGS
    assert run("a ||| b, c ||| d", keep_tokens_separator="|||", caption_tag_dropout_rate=1.0) == "a, d"


def test_tag_dropout_half_with_shuffle_exact():
    assert run(TAGS, seed=3, shuffle=True, keep_tokens=2, caption_tag_dropout_rate=0.5) == \
        "zk, 1girl, outdoors, red hair"


def test_caption_dropout_one_and_drop_all_empty_the_caption():
    assert run(TAGS, caption_dropout_rate=1.0, shuffle=True, keep_tokens=1) == ""
    assert run(TAGS, drop_all=True) == ""


def test_caption_dropout_every_n_epochs_counts_from_one():
    assert [drops_all_captions(e, 3) for e in range(1, 7)] == [False, False, True, False, False, True]
    assert drops_all_captions(3, 0) is False


def test_wildcard_picks_one_line_and_one_choice():
    caption = "a {cat|dog|bird} on a mat\nsecond {x|y}\nthird"
    assert run(caption, seed=0, wildcard=True) == "second y"
    assert run(caption, seed=1, wildcard=True) == "a bird on a mat"
    assert run(caption, seed=1) == "a {cat|dog|bird} on a mat"


def test_split_tags_drops_empty_tags():
    assert split_tags("a, , b,c,", keep_tokens=1, keep_tokens_separator="") == (["a"], ["b", "c"], [])
