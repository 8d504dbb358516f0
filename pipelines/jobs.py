"""What worker processes do (transforms/workers.py): the clean and classify
stages' cores with a run's settings, built once per process; for a run,
also near-copy signatures and the raw archive's records."""
from __future__ import annotations

from schemas.records import Article, Page
from schemas.settings import Settings
from transforms.cleaner import Cleaner, CleanError
from transforms.tagging import Classifier
from transforms.warc import NotArchived, records_or_reason


class CleanJobs:
    """Cleaning alone (`reprocess --what text`, which classifies in its own
    step). Each method takes one element and returns its result, never
    raising for a page that yields no article (the CleanError is the result)."""

    def __init__(self, settings: Settings):
        self.cleaner = Cleaner(settings.clean)

    def clean(self, page: Page) -> Article | CleanError:
        return self.cleaner.clean_or_reject(page)


class StageJobs(CleanJobs):
    """`extract`'s: cleaning and classification."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.classifier = Classifier(settings.classify)

    def classify(self, article: Article) -> Article:
        return self.classifier.classify(article)

    def extract(self, page):
        """`news-ingest extract`'s work on one saved page: its classified
        article or the CleanError; anything but a Page (a file that could
        not be read, a note to show) passes through, in its place."""
        if not isinstance(page, Page):
            return page
        cleaned = self.clean(page)
        return cleaned if isinstance(cleaned, CleanError) else self.classify(cleaned)


class RunJobs(StageJobs):
    """A run's and a stream's: also near-copy signatures and the raw archive's records."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        # Here, not at the top: datasketch brings scipy, which `extract` would wait for.
        from transforms.neardup import Signer, signed

        self.signer, self._signed = Signer(settings.dedup), signed

    def sign(self, article: Article) -> Article:
        """An article with its near-copy signature and figures (transforms/dedup.py)."""
        return self._signed(article, self.signer)

    def archive_page(self, page: Page) -> bytes | NotArchived:
        """A fetched page's WARC records (transforms/archive.py)."""
        return records_or_reason(page, entry=True)

    def archive_feed(self, feed: Page) -> bytes | NotArchived:
        """A feed's, read anew."""
        return records_or_reason(feed, entry=False)
