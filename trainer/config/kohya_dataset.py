"""sd-scripts' `dataset_config`: a dataset TOML ([general], one [[datasets]] a resolution, [[datasets.subsets]]
an image folder each) named by an imported config.

Danlu trains one folder of `<repeats>_<name>` sub-folders (and one for regularisation images) with one set of
options a run. A dataset file that says exactly that, as most do (the kohya layout: img/10_mychar, reg/1_person),
becomes train_data_dir / reg_data_dir plus its options; anything else is an error that names the subset or option
and says how to lay the folders out, never a silently different dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.config.errors import ConfigError, Finding, error
from trainer.data.scan import parse_subset_name

RENAMED = {"batch_size": "train_batch_size"}  # dataset-file keys that are command-line options under another name
PLACE = frozenset({"image_dir", "num_repeats", "class_tokens", "is_reg"})  # where the images are: read here
OTHER_KINDS = {"metadata_file": ("fine-tuning metadata", "微调元数据")}
FOLDERS = ("conditioning_data_dir",)  # subset options that are folders: read from the dataset file's folder too
_MISSING = object()


def fold_dataset_config(flat: dict[str, Any], base_dir: Path | None, known: set[str],
                        findings: list[Finding]) -> None:
    """Replace flat["dataset_config"] by the folders and options its file gives (the file wins over the config's own
    options, as in sd-scripts); each reason it cannot is appended to `findings`."""
    name = flat.pop("dataset_config", None)
    if not name:
        return
    path = Path(name).expanduser()
    path = path if path.is_absolute() or base_dir is None else base_dir / path
    try:
        from trainer.config.toml_io import read_toml_file

        data = read_toml_file(path)
    except ConfigError as exc:
        findings += [error("dataset_config", f"{path} {f.en}", f"{path} {f.zh}") for f in exc.findings]
        return
    problems: list[tuple[str, str]] = []
    options = _options(data, path.parent, problems)
    for key, value in options.items():
        key = RENAMED.get(key, key)
        if key not in known:  # named once, as the dataset file's
            problems.append((f"'{key}' is not a dataset option Danlu knows or supports yet; remove it",
                             f"'{key}' 不是丹炉认识或已支持的数据集选项；请删除"))
        else:
            flat[key] = value
    findings += [error("dataset_config", f"{path}: {en}", f"{path}：{zh}") for en, zh in problems]


def _options(data: dict[str, Any], base: Path, problems: list) -> dict[str, Any]:
    """The run's options and folders from the file's one dataset; reasons it has not exactly one go to problems.
    A relative image_dir is read from `base`, the dataset file's folder (sd-scripts reads it from the folder it
    was started in, which a config does not record)."""
    datasets = data.get("datasets") or []
    if len(datasets) != 1:
        problems.append((f"it names {len(datasets)} datasets ([[datasets]]); Danlu trains one dataset (one resolution "
                         "and batch size) a run: train each as a run of its own", f"其中有 {len(datasets)} 个数据集"
                         "（[[datasets]]）；丹炉每次训练一个数据集（一种分辨率和批次大小）：请分别训练"))
        return {}
    dataset = dict(datasets[0])
    subsets = dataset.pop("subsets", None) or []
    options = {**(data.get("general") or {}), **dataset}
    if not subsets:
        problems.append(("its dataset has no [[datasets.subsets]] (image folders)", "数据集中没有 [[datasets.subsets]]（图片文件夹）"))
        return options
    subsets = _trigger_word_on_reg(subsets)
    options.update(_shared_subset_options(subsets, options, problems))
    for key in FOLDERS:  # the mask pictures of masked_loss (dataset.conditioning_data_dir)
        if options.get(key):
            folder = Path(str(options[key])).expanduser()
            options[key] = str(folder if folder.is_absolute() else base / folder)
    for is_reg, field in ((False, "train_data_dir"), (True, "reg_data_dir")):
        group = [s for s in subsets if bool(s.get("is_reg", False)) == is_reg]
        if group:
            options[field] = str(_parent_folder(group, base, problems))
    return options


def is_trigger_word(prefix: Any) -> bool:
    """Whether an sd-scripts caption_prefix is one tag and its comma ("zk, "): a trigger word, which Danlu puts first
    in captions that lack it. Any other prefix (several tags, or text glued to the caption's first tag: "photo of")
    stays caption.caption_prefix, trained as sd-scripts trains it."""
    if not isinstance(prefix, str) or not prefix.strip().endswith(","):
        return False
    word = prefix.strip()[:-1].strip()
    return bool(word) and "," not in word


def _trigger_word_on_reg(subsets: list[dict]) -> list[dict]:
    """A trigger word given as the training subsets' caption_prefix, and none on the regularisation subsets (they show
    the plain class), trains as Danlu's trigger word, which never goes on regularisation images: those subsets are
    read as having it too, so that the subsets agree."""
    train = {s.get("caption_prefix") for s in subsets if not s.get("is_reg")}
    prefix = next(iter(train)) if len(train) == 1 else None
    if not is_trigger_word(prefix) or any("caption_prefix" in s for s in subsets if s.get("is_reg")):
        return subsets
    return [{**s, "caption_prefix": prefix} if s.get("is_reg") else s for s in subsets]


def _shared_subset_options(subsets: list[dict], inherited: dict[str, Any], problems: list) -> dict[str, Any]:
    """Options the subsets set (other than where their images are): Danlu has each once a run, so all must agree. A
    subset without a key has the dataset's or [general]'s (`inherited`), as sd-scripts falls back."""
    out = {}
    for key in sorted({k for s in subsets for k in s} - PLACE):
        if key in OTHER_KINDS:
            en, zh = OTHER_KINDS[key]
            problems.append((f"{key}: {en} is not a dataset Danlu trains; use image folders with caption files",
                             f"{key}：丹炉不训练{zh}数据集；请使用带标注文件的图片文件夹"))
            continue
        values = [s.get(key, inherited.get(key, _MISSING)) for s in subsets]
        if any(v != values[0] for v in values):
            problems.append((f"its subsets differ in {key}; Danlu has one {key} a run: give it once in [general]",
                             f"各子集的 {key} 不同；丹炉每次训练只有一个 {key}：请在 [general] 中统一设置"))
        else:
            out[key] = values[0]
    return out


def _parent_folder(group: list[dict], base: Path, problems: list) -> Path:
    """The one folder whose `<repeats>_<name>` sub-folders are exactly the group's image_dirs."""
    dirs = []
    for s in group:
        folder = Path(str(s.get("image_dir", ""))).expanduser()
        folder = folder if folder.is_absolute() else base / folder
        dirs.append(folder)
        parsed = parse_subset_name(folder.name)
        repeats = s.get("num_repeats", 1)
        if parsed is None:
            problems.append((f"image_dir '{folder}' is not named <repeats>_<name> (e.g. {repeats}_mychar): Danlu reads "
                             "the repeats from the folder's name; put the images in such a folder and name it here",
                             f"image_dir '{folder}' 的名称不是 <重复次数>_<名称>（如 {repeats}_mychar）：丹炉从文件夹名读取"
                             "重复次数；请把图片放进这样的文件夹"))
        elif parsed[0] != repeats:
            problems.append((f"image_dir '{folder}' has {parsed[0]} repeats in its name but num_repeats = {repeats}; "
                             f"rename the folder to {repeats}_{parsed[1]} or set num_repeats = {parsed[0]}",
                             f"image_dir '{folder}' 的名称表示重复 {parsed[0]} 次，但 num_repeats = {repeats}；"
                             f"请把文件夹改名为 {repeats}_{parsed[1]} 或设置 num_repeats = {parsed[0]}"))
        elif s.get("class_tokens") not in (None, parsed[1]):
            problems.append((f"class_tokens '{s['class_tokens']}' differs from the name of '{folder}' ({parsed[1]}), "
                             "which Danlu uses as the caption of images without one; rename the folder",
                             f"class_tokens '{s['class_tokens']}' 与文件夹 '{folder}' 的名称（{parsed[1]}）不同，丹炉把"
                             "文件夹名用作无标注图片的标注；请重命名文件夹"))
    parents = sorted({d.parent for d in dirs})
    if len(parents) > 1:
        problems.append((f"its subsets lie in {len(parents)} folders ({', '.join(map(str, parents))}); Danlu reads one "
                         "folder of <repeats>_<name> sub-folders: move them into one",
                         f"各子集分布在 {len(parents)} 个文件夹中；丹炉读取一个包含 <重复次数>_<名称> 子文件夹的文件夹："
                         "请移到同一个文件夹下"))
    parent = parents[0]
    if parent.is_dir():
        extra = sorted(c.name for c in parent.iterdir()
                       if c.is_dir() and parse_subset_name(c.name) and c not in dirs)
        if extra:
            problems.append((f"{parent} also holds {', '.join(extra)}, which the file leaves out but Danlu would "
                             f"train too; move them out of {parent}", f"{parent} 中还有 {', '.join(extra)}，文件未列出"
                             f"但丹炉也会训练它们；请移出 {parent}"))
    return parent
