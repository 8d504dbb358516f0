"""Typed records, output schemas, settings and the data files the stages apply."""
from __future__ import annotations

from importlib import resources

import yaml


def load_data(name: str, text: str | None = None) -> dict:
    """Parse a YAML data file of `schemas/data/` (or `text` in its stead: tests
    pass their own gazetteer or patterns)."""
    if text is None:
        text = resources.files(__name__).joinpath("data", name).read_text("utf-8")
    return yaml.safe_load(text)


def data_text(name: str) -> str:
    """The text of a data file of `schemas/data/` that is not YAML."""
    return resources.files(__name__).joinpath("data", name).read_text("utf-8")
