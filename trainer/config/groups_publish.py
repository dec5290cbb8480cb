"""Parameter group: what the finished LoRA says about itself (header, model card) and where it is shared."""

from __future__ import annotations

from typing import ClassVar, Literal

from trainer.config.groups_core import Group
from trainer.config.spec import GroupInfo, param


class PublishGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Model card and sharing", "模型信息与分享")
    metadata_title: str = param(
        "", "Title stored in the LoRA file (modelspec.title), shown by Civitai and LoRA managers. Empty: the "
        "output name.", "写入 LoRA 文件的标题（modelspec.title），Civitai 和 LoRA 管理工具会显示它。留空则用输出名称。",
        label_zh="模型标题",
    )
    metadata_author: str = param("", "Author stored in the LoRA file.", "写入 LoRA 文件的作者名。", label_zh="作者")
    metadata_description: str = param(
        "", "Description stored in the LoRA file and written into the model card.",
        "写入 LoRA 文件并写进模型说明卡的描述。", widget="textarea", label_zh="模型描述",
    )
    metadata_license: str = param(
        "", "License stored in the LoRA file and the model card (e.g. openrail++, creativeml-openrail-m).",
        "写入 LoRA 文件和模型说明卡的许可证（如 openrail++、creativeml-openrail-m）。", label_zh="许可证",
    )
    metadata_tags: str = param(
        "", "Comma-separated tags stored in the LoRA file and the model card (e.g. character, anime).",
        "以逗号分隔的标签，写入 LoRA 文件和模型说明卡（如 character, anime）。", label_zh="模型标签",
    )
    training_comment: str = param(
        "", "A comment stored in the LoRA file's header (ss_training_comment), as sd-scripts' --training_comment "
        "writes it; WebUI extensions show it beside the file.", "写入 LoRA 文件头（ss_training_comment）的备注，与 "
        "sd-scripts 的 --training_comment 相同；WebUI 插件会在文件旁显示它。", label_zh="训练备注",
    )
    no_metadata: bool = param(
        False, "Keep the LoRA file's header to what loaders read (network type, dim, alpha, base model version, the "
        "title, author and other model-spec fields written here, the hashes), as sd-scripts' no_metadata: the "
        "training settings, dataset folders, tag counts, base model path, preview thumbnail and Danlu's config stay "
        "out. For a file shared in public; the run folder keeps everything, and the model card (model_card) is a "
        "file of its own.",
        "LoRA 文件头只保留加载工具读取的内容（网络类型、维度、alpha、底模版本、此处填写的标题作者等模型信息、哈希），与 "
        "sd-scripts 的 no_metadata 相同：训练设置、数据集文件夹、标签计数、底模路径、预览缩略图和丹炉配置都不写入。用于公开"
        "分享的文件；训练文件夹仍保留全部信息，模型说明卡（model_card）是单独的文件。", label_zh="精简文件头",
    )
    model_card: bool = param(
        True, "Write a model card <name>.md next to each final LoRA or Dreambooth checkpoint: base model, trigger "
        "word, tags with counts, key settings and sample images.",
        "在每个最终 LoRA 或 Dreambooth 检查点旁写一份模型说明卡 <名称>.md：底模、触发词、标签及其数量、主要设置和示例图。",
        kohya="", label_zh="写模型说明卡",
    )
    huggingface_repo_id: str = param(
        "", "Upload the final LoRA or checkpoint (and its diffusers folder), its model card and the sample images "
        "to this Hugging Face Hub repository (e.g. yourname/my-lora) when training ends. The token comes from "
        "HF_TOKEN or `hf auth login`. Empty: no upload.",
        "训练结束时把最终 LoRA 或检查点（及其 diffusers 文件夹）、模型说明卡和示例图上传到这个 Hugging Face Hub 仓库"
        "（如 yourname/my-lora）。令牌取自环境变量 HF_TOKEN 或 `hf auth login`。留空则不上传。", label_zh="Hub 仓库",
    )
    upload_every_save: bool = param(
        False, "Also upload each save made during training (save_every_n_epochs/steps) to huggingface_repo_id as it "
        "is saved, as sd-scripts does whenever a repository is set: a rented machine that goes away leaves them on "
        "the Hub. Training waits while each upload runs. Off: only the final file goes, when training ends.",
        "训练中每次保存（save_every_n_epochs/steps）后也立即上传到 huggingface_repo_id，与 sd-scripts 设置仓库时的做法相同："
        "租用的机器即使被回收，这些文件也已在 Hub 上。每次上传时训练会等待。关闭则只在训练结束时上传最终文件。",
        kohya="", label_zh="每次保存都上传",
    )
    save_state_to_huggingface: bool = param(
        False, "Upload each training state (save.save_state) with its save, so a run can be continued on another "
        "machine: download the state folder (`hf download`) and set save.resume to it. A state is several times "
        "the LoRA's size.",
        "每次保存时把训练状态（save.save_state）一并上传，以便在另一台机器上继续训练：用 `hf download` 下载状态文件夹，"
        "再把 save.resume 设为它。训练状态是 LoRA 大小的数倍。", label_zh="上传训练状态",
    )
    huggingface_repo_type: Literal["model", "dataset"] = param(
        "model", "Kind of Hub repository to upload to.", "上传目标 Hub 仓库的类型。", label_zh="Hub 仓库类型",
    )
    huggingface_path_in_repo: str = param(
        "", "Folder inside the Hub repository for the upload. Empty: the top level.",
        "上传到 Hub 仓库中的哪个文件夹。留空则放在最顶层。", label_zh="仓库内路径",
    )
    huggingface_repo_visibility: Literal["private", "public"] = param(
        "private", "Visibility of the Hub repository when Danlu has to create it (an existing one is unchanged).",
        "需要新建 Hub 仓库时的可见性（已有仓库不变）。", label_zh="仓库可见性",
    )
