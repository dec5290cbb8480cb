"""sd-scripts' caption options that configs carry: caption_prefix / caption_suffix (text glued to every caption with a
space, then shuffled and kept like the caption's own tags), caption_separator (what splits tags), secondary_separator
(tags joined by it stay one unit, then are written with caption_separator) and token_warmup_min / token_warmup_step
(few tags at first, the whole caption after N steps; below 1, a share of the run's steps). Before, importing any of
them was refused; now each trains as sd-scripts' process_caption does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from tests.test_caption_and_preview_switches import _captions_seen
from tests.test_config_kohya_dataset import layout, write  # noqa: F401 (layout is a fixture)
from tests.test_data_captions import run
from trainer.config import ConfigError, TrainConfig, check, config_from_dict, load_config
from trainer.config.kohya import export_kohya, import_kohya
from trainer.data.loader import BucketBatchSampler, DanluDataset
from trainer.data.scan import scan_dataset
from trainer.engine.build import with_trigger
from trainer.engine.run import train
from trainer.events import read_events

# --- the caption one step trains (trainer.data.captions.process_caption) ---


def test_prefix_and_suffix_are_glued_on_with_a_space_as_sd_scripts_does():
    # sd-scripts: prefix + " " + caption + " " + suffix; the commas are the user's to write
    assert run("1girl, smile", prefix="masterpiece,", suffix=", from side") == "masterpiece, 1girl, smile , from side"
    assert run("1girl", prefix="photo of") == "photo of 1girl"  # no comma: one tag with the caption's first


def test_prefix_and_suffix_tags_shuffle_and_count_for_keep_tokens():
    outs = {run("1girl, smile, red hair", seed=s, shuffle=True, keep_tokens=1, prefix="zk,", suffix=", from side")
            for s in range(30)}
    assert all(o.startswith("zk, ") for o in outs)  # the prefix is the first tag keep_tokens keeps
    assert all(sorted(o.split(", ")) == ["1girl", "from side", "red hair", "smile", "zk"] for o in outs)
    assert len({o.split(", ").index("from side") for o in outs}) > 1  # the suffix moves with the others


def test_caption_dropout_drops_prefix_and_suffix_too():
    assert run("1girl", prefix="zk,", suffix=", x", caption_dropout_rate=1.0) == ""
    assert run("1girl", prefix="zk,", suffix=", x", drop_all=True) == ""


def test_every_wildcard_line_gets_prefix_and_suffix():
    # sd-scripts glues them to the whole file, so only its first line gets the prefix and its last the suffix;
    # Danlu gives them to the line picked (rules_captions warns of the difference)
    lines = {run("a\nb\nc", seed=s, wildcard=True, prefix="zk,", suffix=", end") for s in range(30)}
    assert lines == {"zk, a , end", "zk, b , end", "zk, c , end"}
    # their {a|b} choices are made too, as sd-scripts glues them on before it makes them
    assert {run("a", seed=s, wildcard=True, prefix="{x|y},") for s in range(20)} == {"x, a", "y, a"}


def test_caption_separator_splits_the_tags_which_are_written_with_commas():
    outs = {run("zk; a; b; c", seed=s, shuffle=True, keep_tokens=1, separator=";") for s in range(20)}
    assert all(o.startswith("zk, ") and sorted(o.split(", ")) == ["a", "b", "c", "zk"] for o in outs)
    assert len(outs) > 1
    assert run("zk, a; b", separator=";", shuffle=True, keep_tokens=1) == "zk, a, b"  # "zk, a" is one tag here


def test_secondary_separator_keeps_a_group_one_tag_then_writes_the_caption_separator():
    caption = "zk, sky;;;cloud;;;day, smile, outdoors"
    assert run(caption, secondary_separator=";;;") == "zk, sky,cloud,day, smile, outdoors"  # nothing shuffled
    outs = {run(caption, seed=s, shuffle=True, keep_tokens=1, secondary_separator=";;;") for s in range(30)}
    assert all("sky,cloud,day" in o for o in outs) and len(outs) > 1
    dropped = [run(caption, seed=s, keep_tokens=1, caption_tag_dropout_rate=0.5, secondary_separator=";;;")
               for s in range(30)]
    assert all(("sky,cloud,day" in o) == ("sky" in o) == ("day" in o) for o in dropped)  # dropped as one
    assert any("sky" in o for o in dropped) and not all("sky" in o for o in dropped)
    assert run("zk| sky;;;cloud", separator="|", secondary_separator=";;;") == "zk| sky|cloud"


def test_token_warmup_grows_the_tags_after_the_kept_ones():
    def at(step, **kw):
        return run("zk, a, b, c, d", **{"keep_tokens": 1, "warmup_min": 1, "warmup_steps": 4, "step": step, **kw})

    # floor(step x (4 movable tags - min 1) / 4 steps) + 1 movable tags
    assert [at(s) for s in range(6)] == ["zk, a", "zk, a", "zk, a, b", "zk, a, b, c", "zk, a, b, c, d",
                                         "zk, a, b, c, d"]
    # the first tags are kept, then shuffled; a fixed tail stays
    assert {tuple(sorted(at(0, shuffle=True, seed=s, warmup_min=2).split(", "))) for s in range(10)} == \
        {("a", "b", "zk")}
    assert run("zk ||| a, b, c ||| end", keep_tokens_separator="|||", warmup_min=0, warmup_steps=3, step=0) == \
        "zk, end"


def test_without_warmup_steps_the_whole_caption_trains():
    assert run("zk, a, b, c", warmup_min=1, warmup_steps=0, step=0) == "zk, a, b, c"


# --- the step a sample trains at (the loader) ---


def test_sample_keys_carry_the_optimizer_step_their_batch_trains_at():
    sampler = BucketBatchSampler([(64, 64)] * 4, 1, seed=3, accumulation=2)
    assert [b[0][3] for b in sampler] == [0, 0, 1, 1]  # two batches an optimizer step
    sampler.set_epoch(1, skip_batches=1)
    assert [b[0][3] for b in sampler] == [2, 3, 3]  # counted on across epochs and a resume's skipped batches


def test_the_dataset_warms_a_caption_up_by_its_keys_step(tmp_path):
    root = make_dataset(tmp_path, n=1)
    (root / "5_zk" / "000.txt").write_text("zk, a, b, c", encoding="utf-8")
    items = scan_dataset(root).items
    ds = DanluDataset(items, [(64, 64)], token_warmup_min=1, token_warmup_steps=2, caption_suffix=", d")
    assert [ds[(0, 0, 5, step)]["caption"] for step in range(3)] == ["zk", "zk, a, b", "zk, a, b, c, d"]
    (root / "5_zk" / "000.txt").write_text("zk; a, b; c", encoding="utf-8")
    ds = DanluDataset(scan_dataset(root).items, [(64, 64)], shuffle_caption=True, keep_tokens=1, caption_separator=";")
    assert {ds[(0, 0, seed, 0)]["caption"] for seed in range(20)} == {"zk, a, b, c", "zk, c, a, b"}


# --- what a run trains ---


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.mark.parametrize("cached", [False, True])
def test_a_run_trains_prefix_suffix_and_secondary_separator(tiny_model, tmp_path, monkeypatch, cached):
    data = make_dataset(tmp_path / "data", n=2)
    for txt in (data / "5_zk").glob("*.txt"):
        txt.write_text("circle;;;round, red", encoding="utf-8")
    seen = _captions_seen(monkeypatch)
    cfg = tiny_config(tiny_model, data, caption__caption_prefix="best quality,", caption__caption_suffix=", end",
                      caption__secondary_separator=";;;", training__max_train_steps=2,
                      training__network_train_unet_only=True, speed__cache_text_encoder_outputs=cached)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    assert set(seen) == {"best quality, circle,round, red , end"}, set(seen)


def test_validation_scores_the_captions_with_their_prefix_and_suffix(tiny_model, tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n=4)
    seen = _captions_seen(monkeypatch)
    cfg = tiny_config(tiny_model, data, caption__caption_prefix="best quality,", caption__caption_suffix=", end",
                      validation__validation_split=0.5, validation__validate_every_n_steps=1,
                      training__max_train_steps=1)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    assert len(seen) > 2, seen  # one step of 2 images, then the held-out images scored
    assert all(c.startswith("best quality, zk") and c.endswith(" , end") for c in seen), seen


def test_the_trigger_word_is_a_tag_of_its_own_under_another_caption_separator(tiny_model, tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n=2)
    for i, txt in enumerate(sorted((data / "5_zk").glob("*.txt"))):
        txt.write_text(f"circle; colour {i}; round", encoding="utf-8")
    seen = _captions_seen(monkeypatch)
    cfg = tiny_config(tiny_model, data, caption__trigger_word="zk", caption__caption_separator=";",
                      caption__shuffle_caption=True, caption__keep_tokens=1, training__max_train_steps=4)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    assert all(c.startswith("zk, ") and len(c.split(", ")) == 4 for c in seen), seen
    assert any(not c.startswith("zk, circle") for c in seen), seen  # not "zk, circle" kept as one tag
    items = scan_dataset(data).items
    assert with_trigger(items, "zk", separator=";")[0].caption == "zk; circle; colour 0; round"
    (data / "5_zk" / "000.txt").write_text("circle; zk; round", encoding="utf-8")
    assert with_trigger(scan_dataset(data).items, "zk", separator=";")[0].caption == "circle; zk; round"


def test_a_run_warms_the_tags_up_over_a_share_of_its_steps(tiny_model, tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n=2)  # "zk, circle, colour i": 3 tags
    seen = _captions_seen(monkeypatch)
    # 4 steps of two batches of 1 (gradient accumulation); 0.5 of 4 steps = 2: 1 tag at step 0, floor(1 x 2 / 2) + 1
    # = 2 at step 1, then all
    cfg = tiny_config(tiny_model, data, caption__token_warmup_min=1, caption__token_warmup_step=0.5,
                      training__max_train_steps=4, training__train_batch_size=1,
                      training__gradient_accumulation_steps=2)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tags = [len(c.split(", ")) for c in seen]
    assert tags == [1, 1, 2, 2, 3, 3, 3, 3], seen


@pytest.mark.parametrize("skip", [False, True])
def test_a_later_start_warms_up_from_its_own_step(tiny_model, tmp_path, monkeypatch, skip):
    """A run started at step 4 (training.initial_step) of a 10-step epoch has its warm-up (4 steps) behind it, whether
    it leaves out the epoch's first batches or trains the epoch from its first batch."""
    data = make_dataset(tmp_path / "data", n=2)  # "zk, circle, colour i": 3 tags; 10 batches of 1 an epoch
    seen = _captions_seen(monkeypatch)
    cfg = tiny_config(tiny_model, data, caption__token_warmup_min=1, caption__token_warmup_step=4.0,
                      training__max_train_steps=6, training__train_batch_size=1, training__initial_step=4,
                      training__skip_until_initial_step=skip)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    assert [len(c.split(", ")) for c in seen] == [3, 3], seen


# --- config: import, export, rules ---


def test_an_sd_scripts_config_imports_the_caption_options():
    cfg = import_kohya({"caption_suffix": ", from side", "caption_separator": ";", "secondary_separator": ";;;",
                        "token_warmup_min": 2, "token_warmup_step": 0.25, "caption_prefix": "masterpiece, best quality,"})
    c = cfg.caption
    assert (c.caption_suffix, c.caption_separator, c.secondary_separator) == (", from side", ";", ";;;")
    assert (c.token_warmup_min, c.token_warmup_step) == (2, 0.25)
    assert c.caption_prefix == "masterpiece, best quality," and c.trigger_word == ""
    omitted = import_kohya({}).caption  # sd-scripts' defaults
    assert (omitted.caption_separator, omitted.token_warmup_min, omitted.token_warmup_step) == (",", 1, 0)
    assert omitted.caption_prefix == omitted.caption_suffix == omitted.secondary_separator == ""


def test_a_one_tag_caption_prefix_still_imports_as_the_trigger_word():
    for prefix in ("zk, ", "zk,"):
        c = import_kohya({"caption_prefix": prefix}).caption
        assert (c.trigger_word, c.caption_prefix) == ("zk", "")
    c = import_kohya({"caption_prefix": "photo of"}).caption  # glued to the first tag: not a trigger word
    assert (c.trigger_word, c.caption_prefix) == ("", "photo of")


def test_the_export_writes_them_back_with_the_trigger_word_after_the_prefix():
    cfg = config_from_dict({"caption": {"caption_prefix": "best quality,", "trigger_word": "zk",
                                        "caption_suffix": ", end", "token_warmup_step": 10.0}})
    out = export_kohya(cfg)
    assert out["caption_prefix"] == "best quality, zk, " and out["caption_suffix"] == ", end"
    assert out["token_warmup_step"] == 10.0
    assert "secondary_separator" not in export_kohya(TrainConfig())


def _dataset(root, *subsets: dict) -> str:
    """A dataset file of the layout fixture's folders: one subset a dict of its folder and options."""
    def subset(folder: str, **options) -> str:
        options = {"image_dir": f"{root}/{folder}", "num_repeats": int(folder.split("/")[1].split("_")[0]), **options}
        return "[[datasets.subsets]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in options.items())

    return "[[datasets]]\nresolution = 512\n" + "".join(subset(**s) for s in subsets)


def test_a_dataset_file_gives_the_subsets_caption_options(layout):  # noqa: F811
    options = {"caption_suffix": ", from side", "secondary_separator": ";;;", "token_warmup_step": 20}
    both = [{"folder": "img/10_mychar", **options}, {"folder": "img/3_outfit", **options}]
    cfg = load_config(write(layout, _dataset(layout, *both)))
    assert (cfg.caption.caption_suffix, cfg.caption.secondary_separator) == (", from side", ";;;")
    assert cfg.caption.token_warmup_step == 20
    with pytest.raises(ConfigError) as exc:
        load_config(write(layout, _dataset(layout, both[0], {**both[1], "token_warmup_step": 0})))
    assert "token_warmup_step" in str(exc.value)


def test_a_trigger_prefix_on_the_training_subsets_alone_is_the_trigger_word(layout):  # noqa: F811
    def config(prefix: str):
        train = [{"folder": f, "caption_prefix": prefix} for f in ("img/10_mychar", "img/3_outfit")]
        return load_config(write(layout, _dataset(layout, *train, {"folder": "reg/1_person", "is_reg": True})))

    cfg = config("mychar, ")  # the trigger word is never put on regularisation images: the same training
    assert cfg.caption.trigger_word == "mychar" and cfg.dataset.reg_data_dir == str(layout / "reg")
    with pytest.raises(ConfigError) as exc:  # caption_prefix would go on the regularisation images too
        config("masterpiece, best quality,")
    assert "caption_prefix" in str(exc.value)


def _findings(**caption) -> set[tuple[str, str]]:
    speed = caption.pop("speed", {})
    cfg = config_from_dict({"caption": caption, "speed": speed, "training": {"network_train_unet_only": True}})
    return {(f.field, f.level) for f in check(cfg, for_training=False)}


def test_rules_name_the_caption_option_and_its_clash():
    assert ("caption.caption_separator", "error") in _findings(caption_separator="")
    assert ("caption.secondary_separator", "error") in _findings(secondary_separator=",")
    assert ("caption.token_warmup_step", "error") in _findings(token_warmup_step=5.0,
                                                               speed={"cache_text_encoder_outputs": True})
    assert ("caption.caption_prefix", "warning") in _findings(caption_prefix="zk,", enable_wildcard=True)
    assert ("caption.caption_suffix", "warning") in _findings(caption_suffix=", x", enable_wildcard=True)
    assert ("caption.token_warmup_min", "warning") in _findings(token_warmup_min=3)  # without token_warmup_step
    # the warm-up cuts captions at commas too, before attention weights are read
    assert ("caption.weighted_captions", "warning") in _findings(weighted_captions=True, token_warmup_step=5.0)
    assert _findings(caption_prefix="zk,", caption_suffix=", x", secondary_separator=";;;", token_warmup_min=3,
                     token_warmup_step=5.0) == set()
