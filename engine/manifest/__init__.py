"""The manifest layer: YAML with line marks, then schema, then meaning, then the frozen
model in :mod:`engine.core.model`."""

from engine.manifest.loader import load, load_text

__all__ = ["load", "load_text"]
