"""Hub uploads as a run saves (publish group): the final file with its model card and samples, which the hand-off
(trainer.engine.header.hand_off) gathers; with upload_every_save each earlier save too; with save_state_to_huggingface
each save's training state. One commit a save, sent once the save (its state included) is on disk. A failed upload is
a warning: the files are saved and can be uploaded by hand."""

from __future__ import annotations

from pathlib import Path


def folder_files(folder: Path) -> dict[str, Path]:
    """Every file under `folder`, by its path in the repository (the folder's name first)."""
    return {f"{folder.name}/{p.relative_to(folder).as_posix()}": p for p in sorted(folder.rglob("*")) if p.is_file()}


def after_save(session, name: str, state: Path | None) -> None:
    """Upload the save `name` (and its `state` folder, None without one) as the publish settings ask."""
    from trainer.publish.upload import Target

    cfg = session.cfg
    target = Target.of(cfg.publish)
    final = name == cfg.save.output_name
    if not target.repo_id or not (final or cfg.publish.upload_every_save):
        return
    file = session.output_file(name)
    files = dict((session.hub_files if final else None) or {file.name: file})
    session.hub_files = None  # the hand-off's file, card and samples: sent once
    diffusers = session.diffusers_folder(name)
    if not final and diffusers.is_dir():  # a Dreambooth save's folder (the hand-off adds the final one)
        files.update(folder_files(diffusers))
    if state is not None and cfg.publish.save_state_to_huggingface:
        files.update(folder_files(state))
    send(session, target, files, f"{file.name} from Danlu, step {session.progress.global_step}")


def send(session, target, files: dict[str, Path | bytes], message: str) -> None:
    from trainer.publish.upload import UploadError, upload

    rep = session.rep
    rep.status(f"uploading {len(files)} files to the Hugging Face Hub repository {target.repo_id}")
    try:
        url = upload(target, files, message)
    except UploadError as exc:
        rep.warning(f"upload to {target.repo_id} failed: {exc}",
                    f"Log in with `hf auth login` or set HF_TOKEN, check publish.huggingface_repo_id; the files are "
                    f"saved in {session.out_dir}.")
        return
    rep.status(f"uploaded to {url}")
