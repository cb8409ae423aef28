"""``tiktoken:NAME``: an encoding of tiktoken's registry (downloaded, or from its cache offline).

Offline, tiktoken's loader is made to fail instead of downloading, while its cache
(``TIKTOKEN_CACHE_DIR``, files named by the SHA-1 of the URL) is still read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mixinfer.errors import MissingDependencyError, TokenizerError, TokenizerNotFoundError
from mixinfer.formats.choose import for_ranks
from mixinfer.formats.ranks import ranks_tokenizer, recover, skipped_notes
from mixinfer.tokenizer import BPETokenizer

PREFIX = "tiktoken:"


class _OfflineMiss(Exception):
    """tiktoken wanted to download while offline."""


_TIKTOKEN_LOCK = threading.Lock()


@contextmanager
def _tiktoken_no_network() -> Iterator[None]:
    """Make tiktoken's loader fail instead of downloading (its cache is still read)."""
    import tiktoken.load as tl

    def refuse(blobpath: str) -> bytes:
        if "://" in blobpath:
            raise _OfflineMiss(blobpath)
        with open(blobpath, "rb") as f:
            return f.read()

    with _TIKTOKEN_LOCK:
        original = tl.read_file
        tl.read_file = refuse
        try:
            yield
        finally:
            tl.read_file = original


class TiktokenRegistry:
    """Sources written ``tiktoken:NAME``."""

    name: str = "tiktoken"
    prefixed = True

    def claims(self, source: str) -> bool:
        """``tiktoken:NAME``."""
        return source.startswith(PREFIX)

    def open(self, source: str, *, offline: bool) -> BPETokenizer:
        """Load the encoding through tiktoken (its cache only, when ``offline``)."""
        name = source[len(PREFIX) :]
        try:
            import tiktoken
        except ImportError:
            raise MissingDependencyError(
                "tiktoken is not installed; `pip install tiktoken` to use tiktoken:NAME"
            ) from None
        try:
            names = tiktoken.list_encoding_names()
        except Exception as exc:
            raise TokenizerError(f"tiktoken's registry cannot be listed: {exc}") from None
        if name not in names:
            raise TokenizerError(
                f"unknown tiktoken encoding {name!r} in {source!r}; tiktoken knows: {', '.join(names)}"
            )
        cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
        advice = (
            "set TIKTOKEN_CACHE_DIR to a cache that holds it (run the same command once online), "
            "or pass a local .tiktoken file"
        )
        try:
            if offline:
                with _tiktoken_no_network():
                    enc = tiktoken.get_encoding(name)
            else:
                enc = tiktoken.get_encoding(name)
        except _OfflineMiss:
            raise TokenizerNotFoundError(
                f"tiktoken encoding {name!r} is not in tiktoken's cache "
                f"({cache or 'default cache'}) and offline mode forbids downloading it; {advice}"
            ) from None
        except Exception as exc:
            raise TokenizerNotFoundError(
                f"tiktoken could not download encoding {name!r} ({type(exc).__name__}: {exc}); {advice}"
            ) from None
        ranks = getattr(enc, "_mergeable_ranks", None)
        pat = getattr(enc, "_pat_str", None)
        if not isinstance(ranks, dict) or not isinstance(pat, str):
            raise TokenizerError(
                f"tiktoken encoding {name!r} exposes no mergeable ranks/pattern in this tiktoken "
                "version; pass its .tiktoken file instead"
            )
        got = recover(ranks, source)
        notes = skipped_notes(got, f"tiktoken {name}")
        pre = for_ranks(got.merges, pat, f"tiktoken {name}", notes)
        counted = f"{len(ranks)} mergeable ranks"
        return ranks_tokenizer(
            got, source=source, pretokenizer=pre, notes=notes, fmt="tiktoken", counted=counted
        )
