"""A site whose template names one section page as every story's canonical
URL: each story is still an article, in this run and in later ones."""
from __future__ import annotations

from pathlib import Path

from .test_odd_paths import article_urls
from .test_pipeline import run_cli

WORDS = ("convoy", "ceasefire", "province", "talks", "shelling", "council", "border", "aid",
         "delegation", "checkpoint", "brigade", "residents")


def story_page(number: int) -> str:
    text = " ".join(WORDS[(number + k) % len(WORDS)] for k in range(60))
    return (f"<html><head><title>Story {number}</title>"
            "<link rel='canonical' href='https://news.example/world/'></head><body><article>"
            f"<h1>Story {number}</h1><p>Report {number}: {text}.</p><p>Officials said story {number} "
            f"was the {number}th report of the week from the northern province.</p></article></body></html>")


def write_feed(folder: Path, numbers: range) -> Path:
    items = ""
    for number in numbers:
        (folder / f"story-{number}.html").write_text(story_page(number))
        items += (f"<item><title>Story {number}</title><link>story-{number}.html</link>"
                  f"<pubDate>Mon, 0{number % 9 + 1} Jun 2026 10:00:00 +0000</pubDate></item>")
    feed = folder / "feed.xml"
    feed.write_text(f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}"
                    "</channel></rss>")
    return feed


def test_stories_sharing_a_section_canonical_are_all_articles(tmp_path):
    out = tmp_path / "data"
    code, printed = run_cli("--feeds", str(write_feed(tmp_path, range(1, 4))), "--out", str(out))
    assert code == 0, printed
    assert len(article_urls(out)) == 3, printed
    code, printed = run_cli("--feeds", str(write_feed(tmp_path, range(1, 6))), "--out", str(out))
    assert code == 0, printed
    assert [url.rsplit("/", 1)[-1] for url in article_urls(out)] == [f"story-{n}.html" for n in range(1, 6)]
