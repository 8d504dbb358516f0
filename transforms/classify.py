"""Classify stage: language, actors (with the primary one) and event types,
set on each article by the Beam-free core (transforms/tagging.py)."""
from __future__ import annotations

import apache_beam as beam

from schemas.records import Article
from schemas.settings import ClassifySettings

from .metrics import counter
from .pooled import PooledFn
from .tagging import Classifier


class _ClassifyFn(PooledFn):
    """Classifies each article, on the worker processes when they are open (transforms/pooled.py)."""

    job = "classify"

    def __init__(self, settings: ClassifySettings):
        self.settings = settings
        self._classifier = None

    def pool_does_mine(self, pool) -> bool:
        return hasattr(pool.jobs, self.job) and pool.settings.classify == self.settings

    def inline(self, article: Article) -> Article:
        if self._classifier is None:  # built on first use: with a pool, never
            self._classifier = Classifier(self.settings)
        return self._classifier.classify(article)

    def emit(self, article: Article, classified: Article):
        counter(f"classify/language/{classified.language}").inc()
        yield classified


class ClassifyArticles(beam.PTransform):
    """Article -> the same Article with language, actors and event types set."""

    def __init__(self, settings: ClassifySettings):
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        return articles | "Classify" >> beam.ParDo(_ClassifyFn(self.settings))
