"""sd-scripts' save_n_epoch_ratio: save about N times over the run. sd-scripts turns it into save_every_n_epochs =
floor(epochs / N), at least 1, replacing any save_every_n_epochs given; the final file comes on top."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import check, config_from_dict
from trainer.config.kohya import export_kohya, import_kohya
from trainer.engine.loop import epoch_save_interval
from trainer.engine.run import train
from trainer.events import read_events


@pytest.mark.parametrize(("epochs", "ratio", "every", "interval"), [
    (10, 3, 1, 3), (10, 5, 1, 2), (10, 20, 1, 1), (7, 2, 0, 3), (10, 0, 4, 4), (10, 0, 0, 0)])
def test_the_interval_is_sd_scripts(epochs, ratio, every, interval):
    save = SimpleNamespace(save_n_epoch_ratio=ratio, save_every_n_epochs=every)
    assert epoch_save_interval(save, epochs) == interval


def test_a_run_saves_by_the_ratio_not_by_save_every_n_epochs(tmp_path):
    """5 epochs, ratio 2: every 2 epochs (2 and 4), then the final file; save_every_n_epochs = 3 is not used."""
    model = save_tiny_sd15(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2, folder="1_zk")  # 1 step an epoch
    cfg = tiny_config(model, data, training__max_train_epochs=5, save__save_n_epoch_ratio=2,
                      save__save_every_n_epochs=3)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    saved = sorted(p.name for p in (tmp_path / "run" / "output").glob("*.safetensors"))
    assert saved == ["t-000002.safetensors", "t-000004.safetensors", "t.safetensors"]


def test_both_set_is_named():
    both = config_from_dict({"save": {"save_n_epoch_ratio": 4, "save_every_n_epochs": 3}})
    found = [f for f in check(both, for_training=False) if f.field == "save.save_every_n_epochs"]
    assert found and found[0].level == "warning" and "save_n_epoch_ratio" in found[0].en, found
    alone = config_from_dict({"save": {"save_n_epoch_ratio": 4}})  # beside Danlu's default save_every_n_epochs = 1
    assert not [f for f in check(alone, for_training=False) if f.field.startswith("save.save_")]


def test_sd_scripts_key_imports_and_exports():
    cfg = import_kohya({"train_data_dir": "img", "save_n_epoch_ratio": 5})
    assert cfg.save.save_n_epoch_ratio == 5 and export_kohya(cfg)["save_n_epoch_ratio"] == 5
    assert import_kohya({"train_data_dir": "img"}).save.save_n_epoch_ratio == 0
    assert "save_n_epoch_ratio" not in export_kohya(config_from_dict({}))
