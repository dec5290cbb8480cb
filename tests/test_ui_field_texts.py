"""Field labels and help texts as the page shows them: Gradio renders a field's help (info) as Markdown, so a pair of
asterisks in a formula turned into italics ("huber_scale*huber_c^(t/T); constant: huber_c*huber_scale" showed
"huber_scalehuber_c^(t/T); constant: huber_chuber_scale")."""

from __future__ import annotations

import pytest

from trainer.config import all_params
from ui.forms.widgets import humanise


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_help_text_has_asterisks_that_render_as_italics(lang):
    bad = {p.path: p.help(lang) for p in all_params() if p.help(lang).replace("DAdapt*", "").count("*") >= 2}
    assert not bad, bad


def test_abbreviations_read_as_abbreviations():
    assert humanise("ip_noise_gamma_random_strength") == "IP noise gamma random strength"
    assert humanise("lr_warmup_ratio") == "LR warmup ratio"
