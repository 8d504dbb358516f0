"""Classify stage: language, actors (with the primary one) and event types,
set on each article by the Beam-free core (transforms/tagging.py)."""
from __future__ import annotations

import apache_beam as beam

from schemas.records import Article
from schemas.settings import ClassifySettings

from .metrics import counter
from .tagging import Classifier


class _ClassifyFn(beam.DoFn):
    def __init__(self, settings: ClassifySettings):
        self.settings = settings

    def setup(self):
        self.classifier = Classifier(self.settings)

    def process(self, article: Article):
        classified = self.classifier.classify(article)
        counter(f"classify/language/{classified.language}").inc()
        yield classified


class ClassifyArticles(beam.PTransform):
    """Article -> the same Article with language, actors and event types set."""

    def __init__(self, settings: ClassifySettings):
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        return articles | "Classify" >> beam.ParDo(_ClassifyFn(self.settings))
