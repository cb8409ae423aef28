"""A Hugging Face Hub id ``ORG/NAME`` that is not an existing path (``huggingface_hub``).

Online, the file is downloaded (or taken from the cache when the Hub cannot be reached); offline
(``HF_HUB_OFFLINE=1`` or ``offline=True``) only the local cache is read (``HF_HUB_CACHE``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mixinfer.errors import MissingDependencyError, TokenizerNotFoundError
from mixinfer.formats.hf_json import HFJsonFormat
from mixinfer.formats.merges_txt import MergesTxtFormat
from mixinfer.tokenizer import BPETokenizer

# A Hub id is ORG/NAME with the characters the Hub allows; strings ending in a tokenizer file
# extension are treated as (missing) local paths, since that is by far the likelier intent.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
FILE_SUFFIXES = (".json", ".txt", ".tiktoken", ".model", ".gz")


def hub_fetch(repo_id: str, filename: str, *, offline: bool) -> tuple[str | None, str, str]:
    """Download (or find in the cache) one file of a Hub repository.

    Returns ``(path, status, detail)`` with status ``"ok"``, ``"no-repo"``, ``"no-file"`` (the
    repository exists but lacks the file) or ``"unavailable"`` (not reachable and not cached).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    # Read at call time, so that HF_HUB_CACHE set after import (tests, notebooks) is honoured.
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    detail = ""
    if not offline:
        try:
            return str(hf_hub_download(repo_id, filename, cache_dir=cache_dir)), "ok", ""
        except RepositoryNotFoundError:
            # Also raised for private or gated repositories when no token grants access.
            return None, "no-repo", "the Hub has no such repository (or it is private or gated)"
        except LocalEntryNotFoundError:
            # huggingface_hub already fell back to its cache after failing to reach the Hub.
            return None, "unavailable", "the Hub could not be reached and the file is not cached"
        except EntryNotFoundError:
            return None, "no-file", f"the repository has no {filename}"
        except Exception as exc:
            detail = f"the download failed ({type(exc).__name__}: {str(exc)[:200]})"
    try:
        path = hf_hub_download(repo_id, filename, cache_dir=cache_dir, local_files_only=True)
        return str(path), "ok", ""
    except Exception:
        where = "the file is not in the local Hugging Face cache"
        return None, "unavailable", f"{detail}, and {where}" if detail else where


class HubSource:
    """Sources written ``ORG/NAME`` that are not local paths."""

    name: str = "huggingface-hub"
    prefixed = False

    def claims(self, source: str) -> bool:
        """An ``ORG/NAME`` id not ending in a tokenizer file extension (checked after local paths)."""
        return bool(HUB_ID.match(source)) and not source.lower().endswith(FILE_SUFFIXES)

    def open(self, source: str, *, offline: bool) -> BPETokenizer:
        """The repository's ``tokenizer.json``, or its ``merges.txt`` (+ ``vocab.json``)."""
        repo_id = source
        try:
            import huggingface_hub.errors  # noqa: F401  (the module exists since 0.23)
        except ImportError:
            raise MissingDependencyError(
                f"{repo_id} is not a local path; to load it from the Hugging Face Hub install "
                "huggingface_hub >= 0.23 (`pip install -U huggingface_hub`), or download its "
                "tokenizer.json and pass the file"
            ) from None
        path, status, detail = hub_fetch(repo_id, "tokenizer.json", offline=offline)
        if path is not None:
            tok = HFJsonFormat().load(Path(path), repo_id)
        else:
            merges_path = None
            # GPT-2 style repositories have vocab.json + merges.txt instead; only worth asking when
            # the repository answered (or the cache is all we may read).
            if status == "no-file" or (offline and status == "unavailable"):
                merges_path, _, _ = hub_fetch(repo_id, "merges.txt", offline=offline)
            if merges_path is None:
                mode = "offline mode: only the local cache was searched; " if offline else ""
                raise TokenizerNotFoundError(
                    f"tokenizer not found: {repo_id} is not a local path, and its tokenizer.json could "
                    f"not be loaded from the Hugging Face Hub ({mode}{detail}). If you meant a local "
                    "file, check the path for typos. Otherwise download it while online first (e.g. "
                    f"`hf download {repo_id} tokenizer.json`); with HF_HUB_OFFLINE=1 it "
                    "is then read from the cache (HF_HUB_CACHE selects the cache directory)"
                )
            vocab_path, _, _ = hub_fetch(repo_id, "vocab.json", offline=offline)
            vocab = Path(vocab_path) if vocab_path is not None else None
            # Hub cache files are symlinks named by hash; name the vocabulary explicitly.
            tok = MergesTxtFormat().load(Path(merges_path), repo_id, vocab_path=vocab)
        tok.notes.append(
            f"loaded {repo_id} from the "
            + ("local Hugging Face cache (offline)" if offline else "Hugging Face Hub or its cache")
        )
        return tok
