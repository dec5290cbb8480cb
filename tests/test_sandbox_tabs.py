"""Each tab's handler refuses a path outside the workspace and --allow-path folders on a remote server, and
accepts the same path locally. The handlers run in-process, exactly as Gradio calls them."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.ui_press import press, text_of
from trainer import sandbox
from trainer.config import TrainConfig, save_config
from ui.app import build_app
from ui.tabs.tag_editor_session import Session

REFUSED = "--allow-path"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("sandbox")
    ws, outside = base / "ws", base / "private"
    data = outside / "10_cat"
    data.mkdir(parents=True)
    Image.new("RGB", (64, 64), "red").save(data / "a.png")
    (data / "a.txt").write_text("cat, red", encoding="utf-8")
    mine = ws / "mine" / "10_cat"  # a dataset inside the workspace
    mine.mkdir(parents=True)
    Image.new("RGB", (64, 64), "red").save(mine / "a.png")
    save_config(TrainConfig(), outside / "config.toml")
    (outside / "lora.safetensors").write_bytes(b"not really")
    (outside / "model.safetensors").write_bytes(b"not really")
    demo = build_app(ws)
    yield demo, ws, outside
    sandbox.configure(remote=False, roots=[])


@pytest.fixture(params=["remote", "local"])
def mode(request, world):
    _, ws, _ = world
    sandbox.configure(remote=request.param == "remote", roots=[ws])
    yield request.param
    sandbox.configure(remote=False, roots=[])


def demo_ws(demo):
    return demo.danlu_ctx.workspace


def judged(mode: str, shown: str) -> None:
    if mode == "remote":
        assert REFUSED in shown, shown[:2000]
    else:
        assert REFUSED not in shown, shown[:2000]


def test_expert_import(world, mode):
    demo, _, outside = world
    shown = text_of(press(demo, "expert-import", values={"expert-import-path": str(outside / "config.toml")}))
    judged(mode, shown)


def test_expert_validate_and_start_check_config_paths(world, mode):
    demo, _, outside = world
    for field in ("dataset-train_data_dir", "dataset-reg_data_dir", "save-output_dir", "save-resume",
                  "network-network_weights", "logging-logging_dir", "model-vae"):
        shown = text_of(press(demo, "expert-validate", values={f"field-{field}": str(outside)}))
        judged(mode, shown)
    if mode == "remote":  # locally Start would really queue a run
        shown = text_of(press(demo, "expert-start", values={"field-dataset-train_data_dir": str(outside)}))
        assert REFUSED in shown


def test_expert_custom_toml_cannot_smuggle_a_path(world, mode):
    demo, _, outside = world
    toml = f'[dataset]\ntrain_data_dir = "{outside}"\n'
    judged(mode, text_of(press(demo, "expert-validate", values={"field-other-custom_toml": toml})))


def test_doctor(world, mode):
    demo, _, outside = world
    shown = text_of(press(demo, "expert-doctor-run", values={"field-dataset-train_data_dir": str(outside)}))
    judged(mode, shown)


def test_novice_plan_and_start(world, mode):
    demo, _, outside = world
    values = {"novice-dataset-train_data_dir": str(outside)}
    judged(mode, text_of(press(demo, "novice-dataset-train_data_dir", "change", values=values)))
    for model in (outside / "model.safetensors", outside / "missing.safetensors"):  # exists or not: not said
        values = {"novice-custom-model": str(model), "novice-dataset-train_data_dir": str(demo_ws(demo) / "mine")}
        judged(mode, text_of(press(demo, "novice-custom-model", "change", values=values)))
    if mode == "remote":
        assert REFUSED in text_of(press(demo, "novice-start", values=values))


def test_tagger_run_and_preview(world, mode):
    demo, ws, outside = world
    missing_model = str(ws / "no-such-tagger")  # locally: fails later, on the model, not on the path
    judged(mode, text_of(press(demo, "tagger-run", values={"tagger-folder": str(outside / "10_cat"),
                                                          "tagger-local-model": missing_model})))
    judged(mode, text_of(press(demo, "tagger-preview", values={"tagger-preview-path": str(outside / "10_cat" / "a.png"),
                                                              "tagger-local-model": missing_model})))
    if mode == "remote":
        shown = text_of(press(demo, "tagger-run", values={"tagger-folder": str(ws),
                                                          "tagger-local-model": str(outside)}))
        assert REFUSED in shown


def test_tag_editor_load(world, mode):
    demo, _, outside = world
    sess = Session()
    shown = text_of(press(demo, "tag-editor-load", values={"tag-editor-folder": str(outside / "10_cat")}, state=sess))
    judged(mode, shown)
    assert (sess.ds is not None) == (mode == "local")


def test_tag_editor_loads_a_picked_training_folder(world):
    """The workspace list fills in a dataset's root, whose images lie in <repeats>_<name> sub-folders: Load shows
    them (it once said "No folder loaded." without a word); a folder without images says so."""
    demo, ws, _ = world
    shown = text_of(press(demo, "tag-editor-load", values={"tag-editor-folder": str(ws / "mine")}, state=Session()))
    assert "1 images in" in shown and "mine" in shown
    (ws / "bare").mkdir(exist_ok=True)
    shown = text_of(press(demo, "tag-editor-load", values={"tag-editor-folder": str(ws / "bare")}, state=Session()))
    assert "no images in" in shown and "No folder loaded" in shown


def test_tag_editor_refuses_a_symlink_out_of_the_workspace(world, mode):
    demo, ws, outside = world
    link = ws / "link-out"
    if not link.exists():
        link.symlink_to(outside / "10_cat")
    judged(mode, text_of(press(demo, "tag-editor-load", values={"tag-editor-folder": str(link)}, state=Session())))


def test_compare(world, mode):
    demo, ws, outside = world
    shown = text_of(press(demo, "compare-run", values={"compare-paths": str(outside / "lora.safetensors"),
                                                      "compare-base": str(ws / "no-such-base")}))
    judged(mode, shown)
    if mode == "remote":
        shown = text_of(press(demo, "compare-run", values={"compare-paths": str(ws / "x.safetensors"),
                                                          "compare-base": str(outside)}))
        assert REFUSED in shown


def test_export_with_a_traversal_name_writes_nothing(world, tmp_path):
    demo, ws, _ = world
    before = set(tmp_path.parent.rglob("*.toml"))
    escape = "../../../../../../../.." + str(tmp_path / "x")
    shown = text_of(press(demo, "expert-export", values={"field-save-output_name": escape}))
    assert "output_name" in shown
    assert not (tmp_path / "x.toml").exists()
    assert set(tmp_path.parent.rglob("*.toml")) == before
    assert not list((ws / "outputs").rglob("*.toml"))
    shown = text_of(press(demo, "expert-export", values={"field-save-output_name": "fine"}))
    assert (ws / "outputs" / "configs" / "fine.toml").is_file()


def test_export_again_keeps_the_earlier_file(world):
    """A second export under the same output_name (after changing settings) keeps the first as a backup."""
    demo, ws, _ = world
    target = ws / "outputs" / "configs" / "twice.toml"
    press(demo, "expert-export", values={"field-save-output_name": "twice", "field-network-network_dim": 4})
    first = target.read_bytes()
    shown = text_of(press(demo, "expert-export", values={"field-save-output_name": "twice",
                                                         "field-network-network_dim": 8}))
    kept = list(target.parent.glob("twice.toml.*.bak"))
    assert len(kept) == 1 and kept[0].read_bytes() == first and target.read_bytes() != first
    assert kept[0].name in shown


def test_inside_keeps_writers_in_their_folder(tmp_path):
    from trainer.textio import inside

    assert inside(tmp_path, "a.toml") == (tmp_path / "a.toml").resolve()
    for bad in ("../x.toml", "/tmp/x.toml", "sub/../../x", ""):
        with pytest.raises(ValueError):
            inside(tmp_path, bad)
    (tmp_path / "out").symlink_to("/tmp")
    with pytest.raises(ValueError):
        inside(tmp_path, "out/x.toml")


def test_remote_novice_defaults_work(world):
    """The Novice tab's default dataset is the bundled demo: allowed on a remote server too."""
    from argparse import Namespace

    from ui.server import sandbox_roots

    demo, ws, _ = world
    sandbox.configure(remote=True, roots=sandbox_roots(Namespace(allow_path=[]), ws))
    try:
        shown = text_of(press(demo, "novice-dataset-train_data_dir", "change"))
        assert REFUSED not in shown and "images" in shown, shown[:2000]
    finally:
        sandbox.configure(remote=False, roots=[])
