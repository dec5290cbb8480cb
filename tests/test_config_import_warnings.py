"""An imported sd-scripts / SD-Trainer file whose value Danlu has to change says so: a warning that names the
field, shown by `python -m trainer check` and `export` and by the Expert tab's import."""

from __future__ import annotations

import pytest

from trainer.config.kohya import import_kohya

SD_TRAINER_255 = 'model_train_type = "sdxl-lora"\nmax_token_length = 255\nnetwork_dim = 8\n'


def test_max_token_length_255_imports_as_225_with_a_warning():
    warnings: list = []
    cfg = import_kohya({"max_token_length": 255}, warnings=warnings)
    assert cfg.caption.max_token_length == 225
    (w,) = [w for w in warnings if w.field == "caption.max_token_length"]
    assert w.level == "warning" and "255" in w.en and "225" in w.en and "225" in w.zh


def test_a_value_danlu_keeps_gives_no_warning():
    warnings: list = []
    assert import_kohya({"max_token_length": 150}, warnings=warnings).caption.max_token_length == 150
    assert warnings == []


@pytest.mark.parametrize("verb", ["check", "export"])
def test_cli_shows_the_import_warning(tmp_path, capsys, verb):
    from trainer.__main__ import main

    path = tmp_path / "sd_trainer.toml"
    path.write_text(SD_TRAINER_255, encoding="utf-8")
    args = ["check", "--config", str(path), "--no-paths"] if verb == "check" else \
        ["export", "--config", str(path), str(tmp_path / "out.toml")]
    assert main(args) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "caption.max_token_length" in text and "255" in text and "225" in text


def test_train_shows_the_import_warning_before_the_run(tmp_path, capsys):
    from trainer.__main__ import main

    path = tmp_path / "sd_trainer.toml"
    path.write_text(SD_TRAINER_255, encoding="utf-8")
    # the file names no model, so the run stops at its config check: the warning was printed before it
    assert main(["train", "--config", str(path), "--run-dir", str(tmp_path / "run"), "--workspace",
                 str(tmp_path / "ws")]) == 2
    text = capsys.readouterr().out
    assert "caption.max_token_length" in text and "255" in text and "225" in text


def test_expert_import_shows_the_warning(tmp_path):
    from tests.ui_press import press, text_of
    from ui.app import build_app

    path = tmp_path / "sd_trainer.toml"
    path.write_text(SD_TRAINER_255, encoding="utf-8")
    demo = build_app(tmp_path / "ws")
    shown = text_of(press(demo, "expert-import", values={"expert-import-path": str(path)}))
    assert "caption.max_token_length" in shown and "255" in shown and "225" in shown
