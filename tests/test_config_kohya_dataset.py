"""sd-scripts' `dataset_config` (a dataset TOML: [general], [[datasets]], [[datasets.subsets]]) in an imported
config. Before, any config naming one was refused ("is not a setting Danlu knows"). Now a dataset file whose
subsets are `<num_repeats>_<name>` folders of one parent (the kohya layout most such files describe) becomes
train_data_dir / reg_data_dir with its options; any other dataset file is an error that names the subset or
option and says how to lay the folders out instead."""

from __future__ import annotations

import pytest

from trainer.config import ConfigError, load_config


@pytest.fixture
def layout(tmp_path):
    """img/10_mychar, img/3_outfit and reg/1_person (a dataset file may name them by any path)."""
    for sub in ("img/10_mychar", "img/3_outfit", "reg/1_person"):
        (tmp_path / sub).mkdir(parents=True)
    return tmp_path


def write(tmp_path, dataset: str, train: str = "") -> str:
    (tmp_path / "dataset.toml").write_text(dataset, encoding="utf-8")
    (tmp_path / "train.toml").write_text('pretrained_model_name_or_path = "m.safetensors"\n'
                                         'dataset_config = "dataset.toml"\nlearning_rate = 1e-4\n' + train,
                                         encoding="utf-8")
    return str(tmp_path / "train.toml")


DATASET = """\
[general]
shuffle_caption = true
caption_extension = ".caption"
keep_tokens = 1

[[datasets]]
resolution = [768, 512]
batch_size = 3
enable_bucket = true
max_bucket_reso = 1024

  [[datasets.subsets]]
  image_dir = '{root}/img/10_mychar'
  class_tokens = 'mychar'
  num_repeats = 10

  [[datasets.subsets]]
  image_dir = '{root}/img/3_outfit'
  num_repeats = 3

  [[datasets.subsets]]
  is_reg = true
  image_dir = '{root}/reg/1_person'
  class_tokens = 'person'
"""


def test_a_kohya_layout_dataset_file_becomes_the_folders_and_their_options(layout):
    cfg = load_config(write(layout, DATASET.format(root=layout), "train_batch_size = 1\nkeep_tokens = 0\n"))
    assert cfg.dataset.train_data_dir == str(layout / "img") and cfg.dataset.reg_data_dir == str(layout / "reg")
    assert cfg.dataset.resolution == "768,512" and cfg.dataset.max_bucket_reso == 1024
    # the dataset file wins over the command-line options, as in sd-scripts
    assert cfg.training.train_batch_size == 3 and cfg.caption.keep_tokens == 1
    assert cfg.caption.shuffle_caption and cfg.caption.caption_extension == ".caption"


def test_a_relative_image_dir_is_read_from_the_dataset_files_folder(layout):
    cfg = load_config(write(layout, "[[datasets]]\n[[datasets.subsets]]\nimage_dir = 'img/10_mychar'\n"
                                    "num_repeats = 10\n[[datasets.subsets]]\nimage_dir = 'img/3_outfit'\n"
                                    "num_repeats = 3\n"))
    assert cfg.dataset.train_data_dir == str(layout / "img")


@pytest.mark.parametrize("dataset, named", [
    # repeats that differ from the folder's number would train another balance than the file says
    ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img/10_mychar'\nnum_repeats = 5\n"
     "[[datasets.subsets]]\nimage_dir = '{root}/img/3_outfit'\nnum_repeats = 3\n", "num_repeats = 5"),
    # a folder not named <repeats>_<name>
    ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img'\n", "<repeats>_<name>"),
    # a sibling folder the file leaves out would be trained too
    ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img/10_mychar'\nnum_repeats = 10\n", "3_outfit"),
    # two resolutions (two datasets) are two runs in Danlu
    ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img/10_mychar'\nnum_repeats = 10\n"
     "[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img/3_outfit'\nnum_repeats = 3\n", "2 datasets"),
    # subsets that differ in an option Danlu has once per run
    ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img/10_mychar'\nnum_repeats = 10\nflip_aug = true\n"
     "[[datasets.subsets]]\nimage_dir = '{root}/img/3_outfit'\nnum_repeats = 3\n", "flip_aug"),
    # fine-tuning metadata is another dataset kind
    ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img/10_mychar'\nmetadata_file = 'meta.json'\n",
     "metadata_file"),
    ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{root}/img/10_mychar'\nnum_repeats = 10\nnot_a_key = 1\n"
     "[[datasets.subsets]]\nimage_dir = '{root}/img/3_outfit'\nnum_repeats = 3\n", "not_a_key"),
])
def test_a_dataset_file_danlu_cannot_train_as_written_is_an_error_naming_why(layout, dataset, named):
    with pytest.raises(ConfigError) as got:
        load_config(write(layout, dataset.format(root=layout)))
    text = str(got.value)
    assert "dataset_config" in text and named in text, text
    assert len([f for f in got.value.findings if named in f.en]) == 1, text  # said once


def test_a_missing_dataset_file_is_named(tmp_path):
    (tmp_path / "train.toml").write_text('dataset_config = "nowhere.toml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="nowhere.toml"):
        load_config(tmp_path / "train.toml")
