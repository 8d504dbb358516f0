"""Outlet facts: where a news outlet is based, by its registered domain.

schemas/data/outlets.yaml holds them for the region's outlets (country as
ISO 3166-1 alpha-2, main language as ISO 639-1); a user's file (`--outlets
FILE`, checked by rulefiles.py) adds to them and wins where both name a
domain. The classify stage stamps each article's `source_country` from
them: null for an outlet no file names.
"""
from __future__ import annotations

from typing import NamedTuple

import yaml

from schemas import load_data

OUTLETS = "outlets.yaml"


class Outlet(NamedTuple):
    country: str | None = None
    language: str | None = None
    name: str | None = None


class OutletFacts:
    def __init__(self, outlets: dict[str, Outlet]):
        self.outlets = outlets

    @classmethod
    def load(cls, override: str | None = None) -> OutletFacts:
        """The bundled outlets, with a user's file's (its checked text) over them."""
        entries = dict(load_data(OUTLETS)["outlets"])
        if override:
            entries.update((yaml.safe_load(override) or {}).get("outlets") or {})
        return cls({domain.lower(): Outlet(facts.get("country"), facts.get("language"), facts.get("name"))
                    for domain, facts in entries.items()})

    def country_of(self, source: str) -> str | None:
        """The country of the outlet at `source` (a registered domain), or None."""
        return self.outlets.get(source.lower(), Outlet()).country
