"""Upload a finished LoRA, its model card and its sample images to a Hugging Face Hub repository, in one commit.

huggingface_hub finds the token itself (HF_TOKEN, or the one `hf auth login` stored); Danlu never stores one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class UploadError(Exception):
    """The Hub refused or could not be reached; the files stay on disk."""


@dataclass(frozen=True)
class Target:
    repo_id: str
    repo_type: str = "model"
    path_in_repo: str = ""
    private: bool = True  # used only when the repository has to be created

    @classmethod
    def of(cls, publish) -> Target:
        """From the config's publish group (trainer.config.groups_publish)."""
        return cls(publish.huggingface_repo_id.strip(), publish.huggingface_repo_type,
                   publish.huggingface_path_in_repo.strip("/ "), publish.huggingface_repo_visibility != "public")

    def path(self, name: str) -> str:
        return f"{self.path_in_repo}/{name}" if self.path_in_repo else name


def upload(target: Target, files: dict[str, Path | bytes], message: str) -> str:
    """Create the repository if needed, then commit `files` (path in the upload folder -> file or bytes).
    Returns the commit's URL; raises UploadError with the Hub's reason."""
    import httpx  # huggingface_hub's HTTP client: connection failures arrive as its errors
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    api = HfApi()
    operations = [CommitOperationAdd(path_in_repo=target.path(name), path_or_fileobj=_content(content))
                  for name, content in files.items()]
    try:
        api.create_repo(target.repo_id, repo_type=target.repo_type, private=target.private, exist_ok=True)
        info = api.create_commit(target.repo_id, operations, commit_message=message, repo_type=target.repo_type)
    except (HfHubHTTPError, LocalTokenNotFoundError, httpx.HTTPError, OSError, ValueError) as exc:
        raise UploadError(f"{type(exc).__name__}: {exc}") from None
    return str(getattr(info, "commit_url", "") or target.repo_id)


def _content(content: Path | bytes) -> str | bytes:
    return content if isinstance(content, bytes) else str(content)
