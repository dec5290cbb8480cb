"""The Dataset tab's path boxes follow the path sandbox: on a remote server a folder outside the workspace and
--allow-path is refused, locally it is used. (Uploads and downloads always write inside the workspace.)"""

from __future__ import annotations

from tests.test_sandbox_tabs import judged, mode, world  # noqa: F401 (fixtures shared with the other tabs)
from tests.ui_press import press, text_of


def test_image_tools_and_duplicates_folders(world, mode):  # noqa: F811
    demo, _, outside = world
    for button, box in (("dataset-tools-preview", "dataset-tools-folder"), ("dataset-tools-undo", "dataset-tools-folder"),
                        ("dataset-dupes-find", "dataset-dupes-folder")):
        judged(mode, text_of(press(demo, button, values={box: str(outside)})))


def test_zip_download_only_from_the_workspace(world, mode):  # noqa: F811
    demo, _, outside = world
    shown = text_of(press(demo, "dataset-download-make", values={"dataset-download-pick": str(outside)}))
    judged(mode, shown)
    assert "not inside the workspace" in shown or "--allow-path" in shown, "never zips a folder outside"
