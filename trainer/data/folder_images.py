"""The images a folder tool (the WD tagger, the tag editor) works on, found as the user means the folder: its own
images, or with "include sub-folders" every image below it. A kohya training folder (the train_data_dir a run
takes, which the workspace lists fill in) has no images of its own, all of them lie in `<repeats>_<name>`
sub-folders: that folder means those images, never an empty list."""

from __future__ import annotations

import os
from pathlib import Path

from trainer.data.scan import IMAGE_EXTENSIONS, parse_subset_name
from trainer.walk import Listing, walk_files


def folder_images(root: str | os.PathLike, recursive: bool, exclude: Path | None = None) -> Listing:
    """Images (the types a run reads) and what was skipped, of `root` as above. Finding none is a ValueError saying
    what to pass instead, never a silent empty result."""
    listing = walk_files(root, IMAGE_EXTENSIONS, recursive=recursive, exclude=exclude)
    if not listing.files and not recursive:
        below = walk_files(root, IMAGE_EXTENSIONS, recursive=True, exclude=exclude)
        listing = Listing([f for f in below.files if _in_subset(f, root)],
                          listing.skipped + [s for s in below.skipped if _in_subset(s[0], root)])
        if not listing.files and below.files:
            raise ValueError(f"no images in '{root}' itself, nor in <repeats>_<name> sub-folders (e.g. 10_mychar); "
                             "its other sub-folders hold images: include them with --recursive (in the tabs: "
                             "'Include sub-folders'), or point at the sub-folder")
    if not listing.files:
        raise ValueError(f"no images in '{root}'{' or its sub-folders' if recursive else ''} "
                         f"(image types: {' '.join(IMAGE_EXTENSIONS)})")
    return listing


def _in_subset(path: str, root) -> bool:
    """Directly inside a `<repeats>_<name>` sub-folder of root."""
    parts = Path(os.path.relpath(path, root)).parts
    return len(parts) == 2 and parse_subset_name(parts[0]) is not None
