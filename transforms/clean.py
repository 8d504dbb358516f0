"""Clean stage: a fetched page becomes article text and metadata.

Each page is cleaned on its own by the Beam-free core (transforms/cleaner.py:
metadata, main text, clutter removed line by line); then, across the
articles of one source, lines that repeat as the site's template are removed
(transforms/templates.py). Every removal is recorded in the article's
`clutter_removed` column; a page that yields no article is a reject.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime

import apache_beam as beam

from schemas.records import Page, rejects_for
from schemas.settings import CleanSettings

from .cleaner import Cleaner, CleanError
from .metrics import counter
from .templates import LearnSiteTemplates

_LOG = logging.getLogger(__name__)


class _CleanPageFn(beam.DoFn):
    def __init__(self, settings: CleanSettings):
        self.settings = settings
        self.cleaned = counter("clean/ok")

    def setup(self):
        self.cleaner = Cleaner(self.settings)

    def process(self, page: Page):
        try:
            article = self.cleaner.clean(page)
        except Exception as failure:  # one odd page must not stop the run: record it
            error = failure if isinstance(failure, CleanError) else CleanError(
                "internal-error", f"{type(failure).__name__}: {str(failure)[:200]}")
            if not isinstance(failure, CleanError):
                _LOG.info("unexpected error cleaning %s", page.final_url, exc_info=True)  # -v
            counter(f"clean/rejected/{error.error_type}").inc()
            for reject in rejects_for(page.item, "clean", error.error_type, str(error),
                                      page.status, datetime.now(UTC)):
                yield beam.pvalue.TaggedOutput("rejects", reject)
            return
        self.cleaned.inc()
        yield article


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
