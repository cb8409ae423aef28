"""The exception hierarchy of mixinfer.

Every failure that a user can cause (a bad file, a bad option, a missing extra) is raised as a
subclass of :class:`MixinferError` whose message says what went wrong and what to do about it.
The CLI maps each subclass to an exit code in one place (``mixinfer.cli.EXIT_CODES``).
"""

from __future__ import annotations


class MixinferError(Exception):
    """Base class of every error mixinfer raises on purpose."""


class UsageError(MixinferError):
    """An option or argument has a value that cannot be used (e.g. ``--merges 0``)."""


class TokenizerError(MixinferError):
    """The tokenizer could not be found, read or understood as a BPE merge list."""


class TokenizerNotFoundError(TokenizerError):
    """The tokenizer source does not exist locally and could not be downloaded."""


class SamplesError(MixinferError):
    """The samples directory or one of its categories cannot be used."""


class CacheError(MixinferError):
    """The cache directory cannot be used (e.g. not writable)."""


class SolverError(MixinferError):
    """The LP solver is missing or returned a status that should be impossible."""


class MissingDependencyError(MixinferError):
    """An optional dependency is needed for this feature; the message names the pip extra."""


class WorkerError(MixinferError):
    """A worker process died or could not run a job (e.g. killed for lack of memory)."""
