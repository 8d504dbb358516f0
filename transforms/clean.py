"""Clean stage: a fetched page becomes article text and metadata.

Each page is cleaned on its own by the Beam-free core (transforms/cleaner.py:
metadata, main text, clutter removed line by line); then, across the
articles of one source, lines that repeat as the site's template are removed
(transforms/templates.py). Every removal is recorded in the article's
`clutter_removed` column; a page that yields no article is a reject.
"""
from __future__ import annotations

from datetime import UTC, datetime

import apache_beam as beam

from schemas.records import Page, rejects_for
from schemas.settings import CleanSettings

from .cleaner import Cleaner, CleanError
from .metrics import counter
from .pooled import PooledFn
from .templates import LearnSiteTemplates


class CleaningFn(PooledFn):
    """Cleans each page, on the worker processes when they are open
    (transforms/pooled.py): the result is the Article or the CleanError.
    Subclasses say in `emit` what becomes of each (a run's clean stage,
    `reprocess --what text`)."""

    job = "clean"

    def __init__(self, settings: CleanSettings):
        self.settings = settings
        self._cleaner = None

    def pool_does_mine(self, pool) -> bool:
        return hasattr(pool.jobs, self.job) and pool.settings.clean == self.settings

    def inline(self, page: Page):
        if self._cleaner is None:  # built on first use: with a pool, never
            self._cleaner = Cleaner(self.settings)
        return self._cleaner.clean_or_reject(page)


class _CleanPageFn(CleaningFn):
    """A run's pages: articles on, rejects recorded."""

    def __init__(self, settings: CleanSettings):
        super().__init__(settings)
        self.cleaned = counter("clean/ok")

    def emit(self, page: Page, result):
        if isinstance(result, CleanError):
            counter(f"clean/rejected/{result.error_type}").inc()
            for reject in rejects_for(page.item, "clean", result.error_type, str(result),
                                      page.status, datetime.now(UTC)):
                yield beam.pvalue.TaggedOutput("rejects", reject)
            return
        self.cleaned.inc()
        yield result


class CleanPages(beam.PTransform):
    """Page -> Article (text and metadata, clutter and site templates removed).

    `history`: the remembered recent articles per source (ReadTemplateHistory);
    none means learning starts from this run alone. `boilerplate`: the
    cross-source memory's rows (ReadBoilerplateMemory), or none. Returns
    `articles`, `rejects` (unusable pages), `history` (the window to
    remember) and `sightings` (this run's template lines, for the memory).
    """

    def __init__(self, settings: CleanSettings, history=None, boilerplate=None):
        super().__init__()
        self.settings, self.history, self.boilerplate = settings, history, boilerplate

    def expand(self, pages):
        history = self.history if self.history is not None else (
            pages.pipeline | "NoHistory" >> beam.Create([]))
        extracted = pages | "Extract" >> beam.ParDo(_CleanPageFn(self.settings)).with_outputs(
            "rejects", main="articles")
        learned = extracted.articles | "SiteTemplates" >> LearnSiteTemplates(history, self.settings,
                                                                             self.boilerplate)
        rejects = (extracted.rejects, learned.rejects) | "AllRejects" >> beam.Flatten()
        return {"articles": learned.articles, "rejects": rejects, "history": learned.history,
                "sightings": learned.sightings}
