"""Site templates learned per source: within one run, across runs, never real text."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Article, SourceHistory
from schemas.settings import CleanSettings
from transforms.templates import (
    LearnSiteTemplates,
    ReadTemplateHistory,
    WriteTemplateHistory,
    article_history,
    learn_templates,
    line_hash,
    recent_window,
    strip_templates,
)
from transforms.textnorm import content_hash
from transforms.write import PublishFiles

from .conftest import PLACES, article, pipeline, story
from .conftest import TEMPLATE_NOW as NOW

SETTINGS = CleanSettings()
# No clutter pattern names this line: only repetition can tell it is a promo.
PROMO = "The Levant Letter lands every Friday with the week's best frontline reporting."
BACKGROUND = "The Syrian war has killed more than half a million people since 2011."


def test_a_line_on_every_article_of_a_source_is_template():
    window = [article_history(article("a.example", n, PROMO)) for n in range(4)]
    assert learn_templates(window, SETTINGS) == {line_hash(PROMO)}


def test_a_sentence_seen_once_or_in_a_few_stories_is_not():
    few = [article("a.example", n, BACKGROUND if n < 3 else f"A detail from {PLACES[n]}.")
           for n in range(10)]
    assert learn_templates([article_history(a) for a in few], SETTINGS) == frozenset()
    small_source = [article("b.example", n, BACKGROUND if n < 3 else "") for n in range(4)]
    assert learn_templates([article_history(a) for a in small_source], SETTINGS) == frozenset(), \
        "3 of a new source's 4 stories sharing a background paragraph is not a template"
    two = [article_history(article("a.example", n, PROMO)) for n in range(2)]
    assert learn_templates(two, SETTINGS) == frozenset(), "two articles are not enough evidence"


def test_stripping_records_the_removal_and_rehashes():
    original = article("a.example", 1, PROMO)
    stripped = strip_templates(original, frozenset({line_hash(PROMO)}))
    assert PROMO not in stripped.text and story(1) in stripped.text
    assert stripped.clutter_removed == ("site-template",)
    assert stripped.content_hash == content_hash(stripped.text) != original.content_hash
    assert strip_templates(stripped, frozenset({line_hash(PROMO)})) == stripped


def test_the_window_keeps_the_newest_articles_once():
    rows = [SourceHistory("a", f"id{n % 5}", NOW + timedelta(minutes=n), (f"k{n % 5}",))
            for n in range(12)]
    window = recent_window(rows, 3)
    assert [row.article_id for row in window] == ["id4", "id0", "id1"]


def test_versions_of_one_story_are_not_its_template():
    versions = [article("a.example", 1, f"Update {n}: the convoy reached the border.", day=n)
                for n in range(4)]
    assert learn_templates([article_history(a) for a in versions], SETTINGS) == frozenset()


def test_one_story_under_several_urls_counts_once():
    copies = [article("a.example", 1, day=n) for n in range(3)]
    copies = [Article(**{**copy.__dict__, "article_id": f"url-{n}"}) for n, copy in enumerate(copies)]
    others = [article("a.example", n, day=10 + n) for n in range(2, 5)]
    window = recent_window([article_history(a) for a in copies + others], 50)
    assert len(window) == 4
    assert learn_templates(window, SETTINGS) == frozenset(), "the story's own lines are not template"


def test_a_repeated_promo_is_learned_within_one_run():
    site_a = [article("a.example", n, PROMO, day=n) for n in range(4)]
    once_elsewhere = article("b.example", 9, PROMO)
    with pipeline() as p:
        learned = (p | beam.Create([*site_a, once_elsewhere])
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS))
        assert_that(learned["articles"] | beam.Map(lambda a: (a.article_id, PROMO in a.text)),
                    equal_to([(a.article_id, False) for a in site_a] + [("b.example-9", True)]),
                    label="PromoGoneOnlyWhereRepeated")
        assert_that(learned["history"] | "Sources" >> beam.Map(lambda row: row.source),
                    equal_to(["a.example"] * 4 + ["b.example"]), label="WindowRemembered")


def test_templates_learned_in_earlier_runs_apply_to_a_lone_new_article(tmp_path):
    out = str(tmp_path)
    with pipeline() as p:
        first = (p | beam.Create([article("a.example", n, PROMO, day=n) for n in range(3)])
                 | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS))
        _ = first["history"] | WriteTemplateHistory(out, "run1") | PublishFiles(out, "run1")
    with pipeline() as p:
        second = (p | beam.Create([article("a.example", 7, PROMO, day=9)])
                  | LearnSiteTemplates(p | "Out" >> beam.Create([None]) | ReadTemplateHistory(out), SETTINGS))
        assert_that(second["articles"] | beam.Map(lambda a: (PROMO in a.text, a.clutter_removed)),
                    equal_to([(False, ("site-template",))]))
        _ = second["history"] | WriteTemplateHistory(out, "run2") | PublishFiles(out, "run2")
    files = sorted((tmp_path / "_state" / "templates").iterdir())
    assert [f.name for f in files] == ["history-run2.parquet"], "the older window is replaced"
    assert pq.read_table(files[0]).num_rows == 4
    assert PROMO not in files[0].read_bytes().decode("latin-1"), "the state keeps hashes, not text"


def test_an_article_that_is_only_template_is_rejected():
    site = [article("a.example", n, PROMO, day=n) for n in range(3)]
    hollow = article("a.example", 50, day=5)
    hollow = Article(**{**hollow.__dict__, "text": PROMO, "word_count": 12})
    with pipeline() as p:
        learned = (p | beam.Create([*site, hollow])
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS))
        assert_that(learned["rejects"] | beam.Map(lambda r: (r.url, r.error_type)),
                    equal_to([(hollow.url, "template-only")]))


def test_sources_silent_for_months_are_forgotten_the_others_carried_over():
    now = datetime.now(UTC)
    old = SourceHistory("old.example", "o1", now - timedelta(days=400), ("k",))
    recent = SourceHistory("recent.example", "r1", now - timedelta(days=3), ("k",))
    with pipeline() as p:
        learned = (p | "NoArticles" >> beam.Create([])
                   | LearnSiteTemplates(p | beam.Create([old, recent]), SETTINGS))
        assert_that(learned["history"] | beam.Map(lambda row: row.source), equal_to(["recent.example"]))
