"""Dataset tab in a real browser: a zip upload becomes a dataset that every tab can pick and the demo model
trains on; a zip-slip archive is refused with nothing written."""

from __future__ import annotations

import threading
import zipfile
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from browser_app import running_app
from conftest import ROOT, free_port, screenshot
from dataset_helpers import tree_digests
from playwright.sync_api import expect
from test_datasets_downloads import PAYLOAD, TOKEN, Fake  # the fake Hub/Civitai

DEMO = ROOT / "assets" / "demo_dataset" / "6_demo"
FIRST, SECOND = sorted(p.stem for p in DEMO.glob("*.png"))[:2]
COUNT = len(list(DEMO.glob("*.png")))
RUN_TIMEOUT_MS = 420_000


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module's tests: (URL, workspace). Its downloads go to the fake Hub/Civitai of
    test_datasets_downloads, started here (the app reads the endpoints from its environment when it starts)."""
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), Fake)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    ws = tmp_path_factory.mktemp("dataset") / "ws"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HF_ENDPOINT", base)
            mp.setenv("CIVITAI_ENDPOINT", base)
            mp.delenv("HF_HUB_OFFLINE", raising=False)
            with running_app(ws) as url:
                mp.undo()  # the app has its environment; the tests' own stays as it was
                yield url, ws
    finally:
        srv.shutdown()


def tree(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def demo_zip(path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """The demo images and captions, flat in one folder of a zip (as a user would zip them)."""
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(DEMO.iterdir()):
            if f.suffix in (".png", ".txt"):
                zf.write(f, f"my pictures/{f.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def upload(page, zip_file: Path, name: str, concept: str, repeats: int | None = None) -> None:
    open_tab(page, "Dataset")
    page.locator("#dataset-files input[type=file]").set_input_files(str(zip_file))
    page.locator("#dataset-name textarea").fill(name)
    if repeats is not None:
        page.locator("#dataset-repeats input").fill(str(repeats))
    page.locator("#dataset-concept textarea").fill(concept)
    page.locator("#dataset-concept textarea").press("Tab")


def pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


@pytest.mark.browser
@pytest.mark.slow
def test_uploaded_zip_is_listed_everywhere_and_trains(app, page, tmp_path):
    url, workspace = app
    before = {p.name for p in (workspace / "runs").glob("*")}  # the app is shared: find this test's run
    page.goto(url)
    # 2 repeats, not the default 10: the run on it is the novice preset's, a fifth as long.
    upload(page, demo_zip(tmp_path / "pics.zip"), "shapes", "shape", repeats=2)
    expect(page.locator("#dataset-layout")).to_contain_text(f"2_shape/  {COUNT} images, {COUNT} captions", timeout=30_000)
    page.click("#dataset-import")
    expect(page.locator("#dataset-msg")).to_contain_text(f"Imported {COUNT} images", timeout=60_000)
    page.wait_for_timeout(1500)  # the cleared upload box must not replace the message
    expect(page.locator("#dataset-msg")).to_contain_text(f"Imported {COUNT} images")
    folder = workspace / "datasets" / "shapes" / "2_shape"
    assert len(list(folder.glob("*.png"))) == COUNT and len(list(folder.glob("*.txt"))) == COUNT
    screenshot(page, "tab-dataset-imported")
    for tab, picker, box in (("WD Tagger", "tagger-dataset-picker", "#tagger-folder textarea"),
                             ("Tag Editor", "tag-editor-dataset-picker", "#tag-editor-folder textarea"),
                             ("Expert", "expert-train_data_dir-picker", "#field-dataset-train_data_dir textarea")):
        open_tab(page, tab)
        pick(page, picker, "shapes")
        expect(page.locator(box)).to_have_value(str(folder.parent))
    open_tab(page, "Novice")
    pick(page, "novice-train_data_dir-picker", "shapes")
    expect(page.locator("#novice-dataset-train_data_dir textarea")).to_have_value(str(folder.parent))
    expect(page.locator("#novice-plan")).to_contain_text(f"{COUNT} images", timeout=60_000)
    page.click("#novice-start")
    expect(page.locator("#novice-msg")).to_contain_text("Started run", timeout=180_000)
    page.locator("#novice-run-outputs").wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#novice-run-outputs")).to_contain_text(".safetensors")
    run = next(p for p in (workspace / "runs").iterdir() if p.is_dir() and p.name not in before)
    assert str(folder.parent) in (run / "config.toml").read_text()
    assert list(run.rglob("*.safetensors"))
    # The finished run downloads as one zip: the list is read again when the tab is shown (no Refresh needed).
    open_tab(page, "Dataset")
    page.get_by_text("Download runs and outputs as a zip").click()
    pick(page, "dataset-download-pick", f"runs/{run.name}/")
    page.click("#dataset-download-make")
    link = page.locator("#dataset-download-file a[href$='.zip']")
    link.wait_for(timeout=60_000)
    got = page.request.get(link.get_attribute("href"))  # what the browser downloads
    (tmp_path / "got.zip").write_bytes(got.body())
    with zipfile.ZipFile(tmp_path / "got.zip") as zf:
        assert any(n.startswith(f"{run.name}/") and n.endswith(".safetensors") for n in zf.namelist())


@pytest.mark.browser
def test_zip_with_parent_entries_is_refused_and_nothing_written(app, page, tmp_path):
    url, workspace = app
    datasets = tree(workspace / "datasets")  # the app is shared: other tests' datasets may be there
    page.goto(url)
    bad = demo_zip(tmp_path / "bad.zip", extra={"../../escaped.png": (DEMO / f"{FIRST}.png").read_bytes()})
    upload(page, bad, "evil", "x")
    expect(page.locator("#dataset-msg")).to_contain_text("points outside the archive", timeout=30_000)
    page.click("#dataset-import")
    expect(page.locator("#dataset-msg")).to_contain_text("nothing was written", timeout=30_000)
    assert not (workspace / "datasets" / "evil").exists()
    assert not list(tmp_path.rglob("escaped.png")) and not list(workspace.parent.rglob("escaped.png"))
    assert tree(workspace / "datasets") == datasets


# In the page: each upload takes 1.5 s, and a preview asked for with the name typed but the concept still empty
# reaches the server a second late. window.__held counts the requests held back.
SLOW_UPLOAD_AND_STALE_PREVIEW = """
window.__held = 0;
const fetch0 = window.fetch;
window.fetch = async function (input, init) {
  const url = String(input instanceof Request ? input.url : input);
  let hold = 0;
  if (/\\/upload(\\?|$)/.test(url)) hold = 1500;
  else if (url.includes("/queue/join") && typeof init?.body === "string") {
    const data = JSON.parse(init.body).data || [];
    if (data.includes("evil-late") && data.includes("")) hold = 1000;
  }
  if (!hold) return fetch0.apply(this, arguments);
  window.__held++;
  try {
    await new Promise((resolve) => setTimeout(resolve, hold));
    return await fetch0.apply(this, arguments);
  } finally {
    window.__held--;
  }
};
"""


@pytest.mark.browser
def test_preview_typed_during_an_upload_ends_on_the_fields_on_screen(app, page, tmp_path):
    """Fields typed while the zip still uploads: the preview last shown is of the fields as typed. (It once ran a
    preview per keystroke, each with the fields of its moment, side by side; the stalest could land last.)"""
    url, _ = app
    page.add_init_script(SLOW_UPLOAD_AND_STALE_PREVIEW)
    page.goto(url)
    bad = demo_zip(tmp_path / "bad.zip", extra={"../../escaped.png": (DEMO / f"{FIRST}.png").read_bytes()})
    upload(page, bad, "evil-late", "x")
    msg = page.locator("#dataset-msg")
    expect(msg).to_contain_text("points outside the archive", timeout=30_000)
    page.wait_for_function("window.__held === 0", timeout=30_000)
    page.wait_for_timeout(2_000)  # what a preview sent last would show by now
    expect(msg).to_contain_text("points outside the archive", timeout=1_000)


@pytest.mark.browser
def test_crop_and_convert_change_files_keep_backups_and_undo_restores_bytes(app, page):
    from PIL import Image

    url, workspace = app
    folder = workspace / "datasets" / "fixme" / "3_c"
    folder.mkdir(parents=True)
    Image.new("RGB", (120, 60), (10, 200, 30)).save(folder / "wide.png")
    Image.new("CMYK", (50, 50), (0, 255, 0, 0)).save(folder / "print.jpg")
    frames = [Image.new("P", (30, 30), i) for i in (5, 7)]
    frames[0].save(folder / "moving.gif", save_all=True, append_images=frames[1:])
    (folder / "moving.txt").write_text("caption stays")
    original = tree_digests(folder)
    page.goto(url)
    open_tab(page, "Dataset")
    page.locator("#dataset-tools").get_by_text("Image tools").click()
    pick(page, "dataset-tools-picker", "fixme")
    expect(page.locator("#dataset-tools-folder textarea")).to_have_value(str(folder.parent))
    page.get_by_role("radio", name="Convert to RGB (and GIF/TIFF to PNG)").check()
    page.click("#dataset-tools-preview")
    expect(page.locator("#dataset-tools-msg")).to_contain_text("2 file(s) would change", timeout=30_000)
    assert tree_digests(folder) == original, "preview writes nothing"
    page.click("#dataset-tools-apply")
    expect(page.locator("#dataset-tools-msg")).to_contain_text("Changed 2 file(s)", timeout=30_000)
    assert (folder / "moving.png").is_file() and not (folder / "moving.gif").exists()
    with Image.open(folder / "print.jpg") as img:
        assert img.mode == "RGB"
    backups = list((workspace / "backups" / "images").glob("*-convert-*/files/3_c/*"))
    assert sorted(p.name for p in backups) == ["moving.gif", "print.jpg"]
    page.get_by_role("radio", name="Crop to aspect ratio").check()
    page.click("#dataset-tools-apply")
    expect(page.locator("#dataset-tools-msg")).to_contain_text("Changed 1 file(s)", timeout=30_000)
    with Image.open(folder / "wide.png") as img:
        assert img.size == (60, 60)
    page.click("#dataset-tools-undo")
    expect(page.locator("#dataset-tools-msg")).to_contain_text("Undid “Crop to aspect ratio”", timeout=30_000)
    page.click("#dataset-tools-undo")
    expect(page.locator("#dataset-tools-msg")).to_contain_text("Undid “Convert", timeout=30_000)
    assert tree_digests(folder) == original, "undo restores every original byte for byte"


@pytest.mark.browser
def test_duplicate_group_is_quarantined_and_restored(app, page):
    url, workspace = app
    folder = workspace / "datasets" / "dups" / "1_c"
    folder.mkdir(parents=True)
    for name in (FIRST, SECOND):
        for ext in (".png", ".txt"):
            (folder / f"{name}{ext}").write_bytes((DEMO / f"{name}{ext}").read_bytes())
    (folder / "copy.png").write_bytes((DEMO / f"{FIRST}.png").read_bytes())
    (folder / "copy.txt").write_text("copy caption")
    original = tree_digests(folder)
    page.goto(url)
    open_tab(page, "Dataset")
    page.locator("#dataset-dupes").get_by_text("Duplicates").first.click()
    pick(page, "dataset-dupes-picker", "dups")
    expect(page.locator("#dataset-dupes-folder textarea")).to_have_value(str(folder.parent))
    page.click("#dataset-dupes-find")
    expect(page.locator("#dataset-dupes-msg")).to_contain_text("Found 1 group", timeout=30_000)
    expect(page.locator("#dataset-dupes-gallery img")).to_have_count(2, timeout=30_000)
    page.locator("#dataset-dupes-keep").get_by_role("radio", name=f"{FIRST}.png").check()
    page.click("#dataset-dupes-move")
    expect(page.locator("#dataset-dupes-msg")).to_contain_text("Moved 2 file(s)", timeout=30_000)
    assert sorted(p.name for p in folder.iterdir()) == [f"{FIRST}.png", f"{FIRST}.txt", f"{SECOND}.png",
                                                        f"{SECOND}.txt"]
    held = list((workspace / "quarantine").glob("*/files/1_c/*"))
    assert sorted(p.name for p in held) == ["copy.png", "copy.txt"]
    page.locator("#dataset-dupes-held input").click()
    page.get_by_role("option").first.click()
    page.click("#dataset-dupes-restore")
    expect(page.locator("#dataset-dupes-msg")).to_contain_text("Restored 2 file(s)", timeout=30_000)
    assert tree_digests(folder) == original


@pytest.mark.browser
def test_downloaded_model_is_selectable_in_model_fields_at_once(app, page):
    url, workspace = app
    Fake.state = {}  # a fresh fake, as the `server` fixture of test_datasets_downloads gives each test
    page.goto(url)
    open_tab(page, "Dataset")
    page.locator("#dataset-models").get_by_text("Base models and VAEs").click()
    page.locator("#dataset-models-source textarea").fill("civitai:77")  # the fake Civitai wants TOKEN
    page.locator("#dataset-models-token input").fill(TOKEN)
    page.click("#dataset-models-download")
    expect(page.locator("#dataset-models-msg")).to_contain_text("Downloaded to", timeout=60_000)
    model = workspace / "models" / "civ77.safetensors"
    assert model.stat().st_size == len(PAYLOAD)
    open_tab(page, "Expert")
    pick(page, "expert-base_model-picker", "civ77.safetensors")
    expect(page.locator("#field-model-base_model textarea")).to_have_value(str(model))
    open_tab(page, "Flux")  # each model field has its own list: Flux's autoencoder here
    pick(page, "flux-ae-picker", "civ77.safetensors")
    expect(page.locator("#flux-model-ae textarea")).to_have_value(str(model))
    open_tab(page, "Novice")
    page.locator("#novice-model input").click()
    expect(page.get_by_role("option", name="civ77.safetensors")).to_have_count(1)
    logs = "".join(p.read_text(errors="replace") for p in workspace.parent.glob("app-*.log"))  # running_app's
    assert TOKEN not in logs and TOKEN not in page.content(), "the token is never logged or shown"
