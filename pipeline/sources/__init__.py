"""One module per input format, plus what they share (``files``, ``versions``, ``merge``, ``safe_xml``).

Each format's module registers a ``Source`` here: how to read it from the pipeline's options (a
PTransform returning ``documents``, ``errors`` (dead-letter records, see ``linkbert.pipeline.records.error_record``) and,
where the format has them, ``redirects``), its default edge type, and how to reconcile its counters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# The modules that register sources; imported on first look-up so that ``linkbert synth`` stays light.
_SOURCE_MODULES = ("wikipedia", "pubmed", "pmc", "merge", "text")


@dataclass(frozen=True)
class Source:
    name: str
    default_links: str
    # (pipeline, config) -> {"documents", "errors"[, "redirects"]}
    read: Callable
    # run counters -> (every input record accounted for, summary lines)
    reconcile: Callable[[dict[str, int]], tuple[bool, list[str]]]
    # what a raw out-link names: "doc_id" (the text source), or None: titles for hyperlinks, ids otherwise
    link_key: str | None = None


_REGISTRY: dict[str, Source] = {}


def register(source: Source) -> Source:
    if source.name in _REGISTRY and _REGISTRY[source.name] != source:
        raise ValueError(f"source {source.name!r} is registered twice")
    _REGISTRY[source.name] = source
    return source


def _load() -> None:
    for module in _SOURCE_MODULES:
        importlib.import_module(f"{__name__}.{module}")


def names() -> tuple[str, ...]:
    _load()
    return tuple(_REGISTRY)


def get(name: str) -> Source:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; known: {', '.join(_REGISTRY)}") from None
