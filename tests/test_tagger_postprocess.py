"""Thresholds, MCut, ordering and text formatting give exactly the expected caption."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.tagger.models import CHARACTER, GENERAL, RATING, Labels
from trainer.tagger.postprocess import (
    TagOptions,
    confidences,
    mcut_threshold,
    ordered_tags,
    parse_replacements,
    parse_tag_list,
    predict,
)

NAMES = ["general", "sensitive", "questionable", "explicit",
         "1girl", "long_hair", "^_^", "star_(symbol)", "smile", "hatsune_miku", "kagamine_rin"]
CATS = [RATING] * 4 + [GENERAL] * 5 + [CHARACTER] * 2
LABELS = Labels(NAMES, CATS)
PROBS = np.array([0.10, 0.70, 0.15, 0.05, 0.95, 0.50, 0.40, 0.36, 0.20, 0.90, 0.30], np.float32)


def caption(probs=PROBS, **opts) -> str:
    options = TagOptions(**opts)
    return ", ".join(ordered_tags(predict(probs, LABELS, options), options))


def test_defaults_characters_first_by_confidence_with_kaomoji_kept():
    assert caption() == "hatsune miku, 1girl, long hair, ^_^, star (symbol)"


def test_rating_is_argmax_and_optional():
    pred = predict(PROBS, LABELS, TagOptions())
    assert pred.rating == ("sensitive", pytest.approx(0.70))
    assert caption(rating=True) == "sensitive, hatsune miku, 1girl, long hair, ^_^, star (symbol)"


def test_thresholds_are_strictly_above():
    assert caption(general_threshold=0.5, character_threshold=0.3) == "hatsune miku, 1girl"
    assert caption(general_threshold=0.19, character_threshold=0.95) == "1girl, long hair, ^_^, star (symbol), smile"


def test_general_first_escaping_and_always_first():
    text = caption(character_first=False, escape_brackets=True, rating=True, always_first=["zk", "1girl"])
    assert text == r"zk, 1girl, sensitive, long hair, ^_^, star \(symbol\), hatsune miku"


def test_underscores_kept_when_asked():
    assert caption(replace_underscores=False) == "hatsune_miku, 1girl, long_hair, ^_^, star_(symbol)"


def test_undesired_and_replacements_match_any_spelling():
    text = caption(undesired=["long_hair"], replacements=[("1girl", "solo girl"), ("Star (symbol)", ""), ("^_^", "smiling")])
    assert text == "hatsune miku, solo girl, smiling"


def test_mcut_threshold_is_midpoint_of_largest_gap():
    assert mcut_threshold(np.array([0.9, 0.1, 0.8])) == pytest.approx(0.45)
    # general: 0.95 | 0.50 is the largest gap -> 0.725; characters: 0.90 | 0.30 -> 0.60
    assert caption(general_mcut=True, character_mcut=True) == "hatsune miku, 1girl"


@pytest.mark.parametrize(("miku", "expected"), [(0.14, "1girl"), (0.20, "hatsune miku, 1girl")])
def test_character_mcut_never_goes_below_floor(miku, expected):
    probs = PROBS.copy()
    probs[9], probs[10] = miku, 0.01  # MCut alone would pick ~0.08-0.1
    assert caption(probs, general_mcut=True, character_mcut=True) == expected


def test_confidences_for_preview():
    conf = confidences(predict(PROBS, LABELS, TagOptions(general_threshold=0.45)), TagOptions())
    assert conf == {"sensitive": pytest.approx(0.7), "hatsune miku": pytest.approx(0.9),
                    "1girl": pytest.approx(0.95), "long hair": pytest.approx(0.5)}


def test_parsers_and_their_errors():
    assert parse_tag_list(" a, b_c ,\n d,, ") == ["a", "b_c", "d"]
    assert parse_replacements("a,b; c , \nx_y,z w") == [("a", "b"), ("c", ""), ("x_y", "z w")]
    with pytest.raises(ValueError, match="'lonely'.*old,new"):
        parse_replacements("a,b;lonely")


def test_labels_without_rating_rows_are_rejected():
    with pytest.raises(ValueError, match="category 9"):
        predict(np.array([0.5]), Labels(["x"], [GENERAL]), TagOptions())


def test_tagger_and_tag_editor_agree_on_kaomoji():
    from trainer.tagger.postprocess import KAOMOJI as tagger_list
    from trainer.tags.ops import KAOMOJI as editor_list

    assert tagger_list is editor_list and {"-_-", ";_;", "^_^"} <= tagger_list
