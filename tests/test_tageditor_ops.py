"""Exact results of caption splitting and every pure tag operation."""

from __future__ import annotations

import pytest

from trainer.tags import ops
from trainer.tags.parse import join_tags, split_tags


@pytest.mark.parametrize(("text", "tags"), [
    ("a, b,c ,, d , ", ("a", "b", "c", "d")),
    ("", ()),
    ("1girl, (red hair, blue eyes:1.2), b", ("1girl", "(red hair, blue eyes:1.2)", "b")),
    ("(smile:1.2), [a, b], c", ("(smile:1.2)", "[a, b]", "c")),
    (r"\(cosplay\), a \(b, c\)", (r"\(cosplay\)", r"a \(b", r"c\)")),
    ("smile, :(, blue eyes", ("smile", ":(", "blue eyes")),
    ("^_^, >_<, (o)_(o), ;)", ("^_^", ">_<", "(o)_(o)", ";)")),
    ("solo, solo", ("solo", "solo")),
])
def test_split_tags(text, tags):
    assert split_tags(text) == tags


def test_join_uses_the_separator():
    assert join_tags(("a", "(b:1.2)"), ",") == "a,(b:1.2)"
    assert join_tags(("a", "b")) == "a, b"


T = ("1girl", "solo", "long_hair", "^_^", "(smile:1.2)", r"\(cosplay\)", "solo")


def test_delete_removes_every_occurrence():
    assert ops.delete(T, ["solo", "^_^", "absent"]) == ("1girl", "long_hair", "(smile:1.2)", r"\(cosplay\)")


def test_add_back_and_front_deduplicated():
    assert ops.add(("a", "b"), ["b", "c", "c", "d"]) == ("a", "b", "c", "d")
    assert ops.add(("a", "b"), ["x", "a", "y"], front=True) == ("x", "y", "a", "b")
    assert ops.add((), ["new"]) == ("new",)


def test_replace_in_place_and_merges_duplicates():
    assert ops.replace(("a", "b", "c"), "b", "z") == ("a", "z", "c")
    assert ops.replace(("a", "b", "c"), "b", "c") == ("a", "c")
    assert ops.replace(("a", "b"), "b", "") == ("a",)
    assert ops.replace(("a",), "missing", "x") == ("a",)


def test_regex_per_tag_and_whole_caption():
    assert ops.regex_replace(("long_hair", "blue_eyes", "x"), r"_", " ") == ("long hair", "blue eyes", "x")
    assert ops.regex_replace(("red hair", "blue"), r"^(\w+) hair$", r"hair (\1)") == ("hair (red)", "blue")
    assert ops.regex_replace(("a", "drop me", "b"), r"^drop.*", "") == ("a", "b")
    assert ops.regex_replace(("a", "b", "c"), r"a, b", "ab", ", ", whole_caption=True) == ("ab", "c")


def test_move_to_front_keeps_given_order():
    assert ops.move_to_front(("a", "b", "c", "d"), ["d", "missing", "b"]) == ("d", "b", "a", "c")
    assert ops.move_to_front(("a", "b"), ["zz"]) == ("a", "b")


def test_sort_case_insensitive_with_keep_first():
    assert ops.sort_tags(("b", "C", "a")) == ("a", "b", "C")
    assert ops.sort_tags(("zz", "b", "a"), keep_first=1) == ("zz", "a", "b")
    assert ops.sort_tags(("a", "c", "b"), reverse=True) == ("c", "b", "a")


def test_dedupe_keeps_first():
    assert ops.dedupe(("solo", "a", "solo", "b", "a")) == ("solo", "a", "b")


def test_escape_keeps_weight_syntax_and_does_not_double_escape():
    tags = ("a (b)", "(c (d):1.2)", r"e \(f\)", "(smile:0.8)", "plain")
    assert ops.escape_brackets(tags) == (r"a \(b\)", r"(c \(d\):1.2)", r"e \(f\)", "(smile:0.8)", "plain")


def test_unescape():
    assert ops.unescape_brackets((r"a \(b\)", r"(c \(d\):1.2)", "x")) == ("a (b)", "(c (d):1.2)", "x")


def test_underscores_spare_kaomoji():
    tags = ("long_hair", "^_^", "o_o", ">_<", "x_x", "black_thigh_highs", "long hair")
    assert ops.underscores_to_spaces(tags) == ("long hair", "^_^", "o_o", ">_<", "x_x", "black thigh highs")


@pytest.mark.parametrize(("pattern", "repl"), [
    (r"^(\w+)_(\w+)$", r"\2 \1"), (r"(?P<a>\w+) hair", r"\g<a>-hair"), (r"(x)?(\w+)", r"[\1\2]"),
    (r"(\w+)", r"\g<0>!"), (r"a", r"\n\t"), (r"(a)(b)", r"\\\2"), (r"o", "0"),
])
def test_regex_fast_template_matches_re_sub(pattern, repl):
    tags = ("long_hair", "red hair", "abab", "solo", "o_o")
    expected = tuple(s for s in (__import__("re").sub(pattern, repl, t).strip() for t in tags) if s)
    assert ops.regex_replace(tags, pattern, repl) == expected
