"""End to end on a tiny ONNX tagger: batching, fixed-batch models, corrupt files, folder jobs, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trainer.__main__ import main as cli_main
from trainer.tagger import TagJob, TagOptions, load_model, tag_folder, tag_image
from trainer.tagger.pipeline import predict_files
from trainer.tagger.tiny import DEFAULT_TAGS, build_tiny_tagger, tiny_probs

SIZE = 32
COLOURS = [(255, 0, 0), (0, 200, 0), (10, 20, 250), (128, 128, 128), (250, 250, 0)]  # RGB


def _images(folder, colours=COLOURS):
    """Solid squares of the model's size: no padding or resize, so the mean BGR colour is exact."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, rgb in enumerate(colours):
        path = folder / f"img{i}.png"
        Image.new("RGB", (SIZE, SIZE), rgb).save(path)
        paths.append(path)
    return paths


def _expected(weights, bias, colours=COLOURS):
    return tiny_probs(np.array([rgb[::-1] for rgb in colours], np.float64), weights, bias)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_tagger")
    weights, bias = build_tiny_tagger(folder, size=SIZE)
    return folder, weights, bias


def test_batched_predictions_equal_the_model_maths(tiny, tmp_path):
    folder, weights, bias = tiny
    model = load_model(folder)
    assert (model.size, model.fixed_batch, model.provider) == (SIZE, None, "CPUExecutionProvider")
    paths = _images(tmp_path)
    results = list(predict_files(model, paths, batch_size=2, workers=2))
    assert [r.path for r in results] == paths
    np.testing.assert_allclose(np.stack([r.probs for r in results]), _expected(weights, bias), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fixed", [1, 3])
def test_fixed_batch_models(fixed, tmp_path):
    weights, bias = build_tiny_tagger(tmp_path / "m", size=SIZE, batch=fixed, seed=1)
    model = load_model(tmp_path / "m")
    assert model.fixed_batch == fixed
    paths = _images(tmp_path / "img")  # 5 images: batch 3 needs a padded last batch
    results = list(predict_files(model, paths, batch_size=8))
    np.testing.assert_allclose(np.stack([r.probs for r in results]), _expected(weights, bias), rtol=1e-5, atol=1e-6)


def test_corrupt_image_is_reported_and_skipped(tiny, tmp_path):
    folder, weights, bias = tiny
    paths = _images(tmp_path)
    bad = tmp_path / "img2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    results = {r.path: r for r in predict_files(load_model(folder), paths, batch_size=2)}
    assert results[bad].probs is None and "img2.png" not in results[bad].error and results[bad].error
    good = [p for p in paths if p != bad]
    expected = np.delete(_expected(weights, bias), 2, axis=0)
    np.testing.assert_allclose(np.stack([results[p].probs for p in good]), expected, rtol=1e-5, atol=1e-6)


def test_folder_job_writes_captions_counts_and_skips(tiny, tmp_path):
    folder, weights, bias = tiny
    model = load_model(folder)
    images = tmp_path / "10_zk"
    paths = _images(images / "sub", COLOURS[:2]) + _images(images, COLOURS[2:4])
    (images / "img0.txt").write_text("old caption", encoding="utf-8")  # img0.png (colour 2) is captioned
    (images / "broken.jpg").write_bytes(b"junk")
    options = TagOptions(general_threshold=0.5, rating=True, always_first=["zk"])
    job = TagJob(images, options, existing="skip", recursive=True, batch_size=2)
    done = []
    for last in tag_folder(model, job):  # the same report object, updated after every image
        done.append(last.progress.done)
    assert last.finished and (last.written, last.skipped, last.progress.total) == (3, 1, 4)
    assert [p.name for p, _ in last.failed] == ["broken.jpg"]
    assert done == [1, 2, 3, 4, 4] and last.progress.eta_s == 0
    assert (images / "img0.txt").read_text(encoding="utf-8") == "old caption"
    for path in [paths[0], paths[1], paths[3]]:
        expected_tags = tag_image(model, path, options)[1]
        assert expected_tags[0] == "zk" and expected_tags[1] in {"general", "sensitive", "questionable", "explicit"}
        assert path.with_suffix(".txt").read_text(encoding="utf-8") == ", ".join(expected_tags)


def test_tag_image_uses_the_tag_names(tiny, tmp_path):
    folder, weights, bias = tiny
    path = _images(tmp_path, [(255, 0, 0)])[0]
    probs = _expected(weights, bias, [(255, 0, 0)])[0]
    pred, tags = tag_image(load_model(folder), path, TagOptions(general_threshold=0.0, character_threshold=0.0))
    by_name = {name: p for (name, _), p in zip(DEFAULT_TAGS, probs, strict=True)}
    assert [name for name, _ in pred.general] == sorted(
        [n for n, c in DEFAULT_TAGS if c == 0], key=lambda n: -by_name[n])
    assert pred.rating[0] == max(["general", "sensitive", "questionable", "explicit"], key=by_name.get)
    assert ">_<" in tags and "long hair" in tags


def test_cli_tags_a_folder_with_backups(tiny, tmp_path, capsys):
    folder, _, _ = tiny
    images = tmp_path / "imgs"
    paths = _images(images, COLOURS[:3])
    (images / "img1.txt").write_text("mine", encoding="utf-8")
    ws = tmp_path / "ws"
    args = ["tag", str(images), "--model-dir", str(folder), "--workspace", str(ws), "--first", "zk",
            "--existing", "append", "--general-threshold", "0.2", "--batch-size", "2"]
    assert cli_main(args) == 0
    model = load_model(folder)
    opts = TagOptions(general_threshold=0.2, always_first=["zk"])
    for path in paths:
        tags = tag_image(model, path, opts)[1]
        expected = ", ".join(["zk", "mine"] + tags[1:]) if path.stem == "img1" else ", ".join(tags)
        assert path.with_suffix(".txt").read_text(encoding="utf-8") == expected
    (backup,) = (ws / "backups" / "captions").iterdir()
    assert backup.name.startswith("imgs-") and (backup / "img1.txt").read_text(encoding="utf-8") == "mine"
    assert "3 written" in capsys.readouterr().out


def test_cli_reports_a_bad_model_folder(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    assert cli_main(["tag", str(tmp_path), "--model-dir", str(tmp_path / "m")]) == 2
    assert "lacks ['model.onnx', 'selected_tags.csv']" in capsys.readouterr().err


def test_cli_tags_a_kohya_training_folder_through_its_subsets(tiny, tmp_path, capsys):
    folder, _, _ = tiny
    dataset = tmp_path / "train"
    paths = _images(dataset / "10_zk", COLOURS[:2]) + _images(dataset / "3_other", COLOURS[2:3])
    assert cli_main(["tag", str(dataset), "--model-dir", str(folder), "--workspace", str(tmp_path / "ws")]) == 0
    assert all(p.with_suffix(".txt").read_text(encoding="utf-8") for p in paths)
    assert "3 written" in capsys.readouterr().out


@pytest.mark.parametrize("layout, says", [
    ({}, "no images in"),
    ({"misc": COLOURS[:1]}, "--recursive"),  # images only in a sub-folder that is not <repeats>_<name>
])
def test_finding_no_image_is_an_error_that_says_what_to_pass(tiny, tmp_path, capsys, layout, says):
    folder, _, _ = tiny
    dataset = tmp_path / "train"
    dataset.mkdir()
    for sub, colours in layout.items():
        _images(dataset / sub, colours)
    assert cli_main(["tag", str(dataset), "--model-dir", str(folder), "--workspace", str(tmp_path / "ws")]) != 0
    err = capsys.readouterr().err
    assert str(dataset) in err and says in err
    with pytest.raises(ValueError, match=says):  # what the tagger tab shows, from the same place
        list(tag_folder(load_model(folder), TagJob(dataset)))
