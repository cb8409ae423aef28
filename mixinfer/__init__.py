"""mixinfer: infer the training-data mixture of a BPE tokenizer from its merge list.

The method is Hayase, Liu, Choi, Oh and Smith, "Data Mixture Inference: What do BPE Tokenizers
Reveal about their Training Data?" (NeurIPS 2024). Typical use::

    import mixinfer
    result = mixinfer.infer("tokenizer.json", "samples/")
    print(result.proportions)
"""

from __future__ import annotations

from mixinfer import stages
from mixinfer.audit import AuditResult, audit
from mixinfer.cache import Cache, default_cache_dir
from mixinfer.errors import (
    CacheError,
    MissingDependencyError,
    MixinferError,
    SamplesError,
    SolverError,
    TokenizerError,
    TokenizerNotFoundError,
    UsageError,
)
from mixinfer.options import OptionError, Options, Runtime
from mixinfer.pipeline import infer
from mixinfer.pretokenizers import PRESETS, Pretokenizer
from mixinfer.progress import Progress
from mixinfer.report import InferenceResult
from mixinfer.simulate import SimulationResult, simulate
from mixinfer.tokenizer import BPETokenizer, load_tokenizer

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AuditResult",
    "BPETokenizer",
    "Cache",
    "CacheError",
    "InferenceResult",
    "MissingDependencyError",
    "MixinferError",
    "OptionError",
    "Options",
    "Pretokenizer",
    "Progress",
    "Runtime",
    "SamplesError",
    "SimulationResult",
    "SolverError",
    "TokenizerError",
    "TokenizerNotFoundError",
    "UsageError",
    "__version__",
    "audit",
    "default_cache_dir",
    "infer",
    "load_tokenizer",
    "simulate",
    "stages",
]
