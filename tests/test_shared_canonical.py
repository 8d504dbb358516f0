"""A site whose template names one section page as every story's canonical
URL: each story is still an article, in this run and in later ones."""
from __future__ import annotations

import pytest

from .conftest import article_urls, run_cli, write_feed

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them


def test_stories_sharing_a_section_canonical_are_all_articles(tmp_path):
    out = tmp_path / "data"
    code, printed, _ = run_cli("--feeds", str(write_feed(tmp_path, range(1, 4))), "--out", str(out))
    assert code == 0, printed
    assert len(article_urls(out)) == 3, printed
    code, printed, _ = run_cli("--feeds", str(write_feed(tmp_path, range(1, 6))), "--out", str(out))
    assert code == 0, printed
    assert [url.rsplit("/", 1)[-1] for url in article_urls(out)] == [f"story-{n}.html" for n in range(1, 6)]
