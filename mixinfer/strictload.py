"""JSON and YAML readers that refuse a key given twice in one mapping.

``json.loads`` and ``yaml.safe_load`` keep the last of two equal keys without a word, so a
manifest naming a category twice silently lost one of them and labelled the other's text with its
name (an answer with exit 0 about the wrong text). Manifests, ``--groups`` files and truth files
are read through these instead. TOML needs nothing: ``tomllib`` already refuses repeated keys.
"""

from __future__ import annotations

import functools
import json
from typing import Any


class DuplicateKeyError(ValueError):
    """A mapping holds ``key`` twice; ``where`` says where, when the parser knows (YAML)."""

    def __init__(self, key: object, where: str = "") -> None:
        self.key = key
        self.where = where
        super().__init__(f"the key {key!r} is given twice{' ' + where if where else ''}")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def json_loads(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` (a ``ValueError``) on a repeated key."""
    return json.loads(text, object_pairs_hook=_unique_pairs, **kwargs)


def yaml_safe_load(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKeyError` on a repeated key (needs PyYAML)."""
    import yaml

    return yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass


@functools.cache
def _unique_key_loader() -> Any:
    """A ``yaml.SafeLoader`` subclass whose mappings refuse a repeated key (built once)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor below reports it
                continue
            if repeated:
                mark = key_node.start_mark
                raise DuplicateKeyError(key, f"(line {mark.line + 1})")
        return loader.construct_mapping(node, deep=deep)

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return _Loader
