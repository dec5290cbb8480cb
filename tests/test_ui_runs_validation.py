"""The run page draws the validation loss beside the training loss and shows the fit warning in en and zh."""

from __future__ import annotations

from trainer.events import RunSummary
from ui.i18n import translate
from ui.runs.view import fit_html, loss_frame, progress_html

EVENTS = [
    {"type": "started", "total_steps": 4, "epochs": 4},
    *({"type": "progress", "step": i, "total": 4, "epoch": i, "epochs": 4, "loss": 1.0 - i / 10,
       "avg_loss": 1.0 - i / 20} for i in range(1, 5)),
    *({"type": "validation", "step": i, "epoch": i, "loss": loss} for i, loss in ((1, 0.9), (2, 0.95), (4, 0.97))),
    {"type": "warning", "message": "Overfitting: ...", "fit": "overfit", "best_path": "/r/output/t-000001.safetensors",
     "best_epoch": 1, "best_loss": 0.9, "early_stop": False},
]


def summary() -> RunSummary:
    s = RunSummary()
    for e in EVENTS:
        s.fold(e)
    return s


def test_validation_points_are_a_third_series_of_the_loss_chart():
    frame = loss_frame(summary())
    val = frame[frame["series"] == "validation"]
    assert list(val["step"]) == [1, 2, 4] and list(val["value"]) == [0.9, 0.95, 0.97]


def test_the_fit_warning_names_the_best_file_in_both_languages():
    s = summary()
    for lang, word in (("en", "Overfitting"), ("zh", "过拟合")):
        text = fit_html(lambda key, lang=lang, **fmt: translate(key, lang, **fmt), s)
        assert word in text and "t-000001.safetensors" in text and "0.9000" in text
    page = progress_html(lambda key, **fmt: translate(key, "en", **fmt), "run-1", s)
    assert "data-fit='overfit'" in page
    assert fit_html(lambda key, **fmt: translate(key, "en", **fmt), RunSummary()) == ""


def test_a_run_that_ended_shows_no_time_left():
    """A stopped run kept the ETA of its last step ("ETA 0:13") as if it would go on."""
    s = RunSummary()
    for e in [{"type": "started", "total_steps": 60, "epochs": 2},
              {"type": "progress", "step": 13, "total": 60, "epoch": 1, "epochs": 2, "loss": 1.0, "avg_loss": 1.0,
               "eta_s": 13},
              {"type": "stopped", "step": 13}]:
        s.fold(e)
    assert s.status == "stopped"
    page = progress_html(lambda key, **fmt: translate(key, "en", **fmt), "run-1", s)
    assert "ETA —" in page and "0:13" not in page
