"""Boilerplate learned across sources: a line that is the template of
several unrelated sources goes from a new source's first article; the
memory is bounded, keeps hashes only, and a damaged one costs only itself."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from schemas import data_text
from schemas.records import BoilerplateLine
from schemas.settings import CleanSettings
from transforms.boilerplate import (
    ReadBoilerplateMemory,
    WriteBoilerplateMemory,
    known_boilerplate,
    remember_sightings,
)
from transforms.clutter import line_hash, load_starting_boilerplate
from transforms.templates import LearnSiteTemplates, strip_templates
from transforms.write import PublishFiles

from .conftest import article, pipeline

SETTINGS = CleanSettings()
# A CMS stock line no pattern names, that three sites repeat in every article.
STOCK = "Comments are moderated and appear after a member of staff has read them."
NOW = datetime(2026, 1, 10, tzinfo=UTC)


def sites_with_stock(count: int):
    return [article(f"site{site}.example", n, STOCK, day=n) for site in range(count) for n in range(3)]


def test_a_line_that_is_the_template_of_several_sources_goes_from_a_new_sources_first_article(tmp_path):
    out = str(tmp_path)
    with pipeline() as p:
        learned = (p | beam.Create(sites_with_stock(3))
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS,
                                        p | "Out" >> beam.Create([None]) | ReadBoilerplateMemory(out)))
        _ = ({"stored": p | "Out2" >> beam.Create([None]) | "Read2" >> ReadBoilerplateMemory(out),
              "seen": learned["sightings"]} | WriteBoilerplateMemory(out, "run1", SETTINGS)
             | PublishFiles(out, "run1"))
    newcomer = article("new.example", 1, STOCK)
    with pipeline() as p:
        stored = p | "Out" >> beam.Create([None]) | ReadBoilerplateMemory(out)
        learned = (p | beam.Create([newcomer])
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS, stored))
        assert_that(learned["articles"] | beam.Map(lambda a: (STOCK in a.text, a.clutter_removed)),
                    equal_to([(False, ("cross-source",))]))
    files = list((tmp_path / "_state" / "boilerplate").iterdir())
    assert [f.name for f in files] == ["lines-run1.parquet"]
    raw = files[0].read_bytes().decode("latin-1")
    assert STOCK not in raw and "site0.example" not in raw, "the memory keeps hashes only"


def test_a_line_of_two_sources_or_of_syndicated_copies_is_not_boilerplate(tmp_path):
    out = str(tmp_path)
    # The same wire story on five sites: one article each, so no site's template.
    wire = [article(f"paper{site}.example", 7, STOCK) for site in range(5)]
    with pipeline() as p:
        learned = (p | beam.Create(sites_with_stock(2) + wire)
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS))
        _ = ({"stored": p | "None" >> beam.Create([]), "seen": learned["sightings"]}
             | WriteBoilerplateMemory(out, "run1", SETTINGS)
             | PublishFiles(out, "run1"))
    with pipeline() as p:
        stored = p | "Out" >> beam.Create([None]) | ReadBoilerplateMemory(out)
        learned = (p | beam.Create([article("new.example", 1, STOCK)])
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS, stored))
        assert_that(learned["articles"] | beam.Map(lambda a: STOCK in a.text), equal_to([True]))


def test_a_long_line_is_never_removed_however_widely_seen():
    long_line = " ".join(["word"] * (SETTINGS.cross_source_max_words + 1))
    rows = [BoilerplateLine(line_hash(long_line), ("a", "b", "c"), NOW)]
    stripped = strip_templates(article("x.example", 1, long_line), frozenset(),
                               known_boilerplate(rows, SETTINGS), SETTINGS.cross_source_max_words)
    assert long_line in stripped.text


def test_the_memory_is_bounded_and_forgets_old_lines():
    settings = CleanSettings(cross_source_max_lines=3, cross_source_max_sources=2)
    old = BoilerplateLine("old", ("s1", "s2"), NOW - timedelta(days=settings.template_memory_days + 1))
    sightings = [(f"line{n}", f"s{k}") for n in range(5) for k in range(n % 3 + 1)]
    rows = remember_sightings([old], sightings, NOW, settings)
    assert len(rows) == 3 and "old" not in {row.line for row in rows}
    assert all(len(row.sources) <= 2 for row in rows)
    assert {row.line for row in rows} >= {"line2"}, "the most widely seen lines are kept"


def wrong_types() -> bytes:
    """A Parquet file with the memory's columns in other types."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"line": ["abc"], "sources": ["abc"], "last_seen": ["yesterday"]}), sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("damage", [b"", b"PAR1 not really parquet", wrong_types()],
                         ids=["empty", "not-parquet", "wrong-types"])
def test_a_damaged_memory_costs_only_itself(tmp_path, caplog, damage):
    folder = tmp_path / "_state" / "boilerplate"
    folder.mkdir(parents=True)
    (folder / "lines-run0.parquet").write_bytes(damage)
    with caplog.at_level(logging.WARNING), pipeline() as p:
        stored = p | "Out" >> beam.Create([None]) | ReadBoilerplateMemory(str(tmp_path))
        learned = (p | beam.Create(sites_with_stock(1))
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS, stored))
        assert_that(learned["articles"] | beam.Map(lambda a: STOCK in a.text), equal_to([False] * 3))
        _ = ({"stored": stored, "seen": learned["sightings"]}
             | WriteBoilerplateMemory(str(tmp_path), "run1", SETTINGS)
             | PublishFiles(str(tmp_path), "run1"))
    assert "lines-run0.parquet" in caplog.text and "unreadable" in caplog.text
    assert [f.name for f in folder.iterdir()] == ["lines-run1.parquet"], "replaced by a good one"
    assert pq.read_table(folder / "lines-run1.parquet").num_rows == 1


def test_the_shipped_memory_knows_common_cms_lines_and_nothing_shorter_than_three_words():
    text = data_text("boilerplate.txt")
    lines = [row.split("\t", 1)[1] for row in text.splitlines() if row and not row.startswith("#")]
    assert all(len(line.split()) >= 3 for line in lines)
    assert line_hash("Your email address will not be published.") in load_starting_boilerplate()


def test_a_memory_written_with_naive_times_is_read_as_utc(tmp_path):
    folder = tmp_path / "_state" / "boilerplate"
    folder.mkdir(parents=True)
    naive = pa.table({"line": [line_hash(STOCK)], "sources": [["a", "b", "c"]],
                      "last_seen": pa.array([datetime(2026, 1, 1)], pa.timestamp("us"))})
    pq.write_table(naive, folder / "lines-run0.parquet")
    with pipeline() as p:
        stored = p | "Out" >> beam.Create([None]) | ReadBoilerplateMemory(str(tmp_path))
        learned = (p | beam.Create([article("new.example", 1, STOCK), *sites_with_stock(1)])
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS, stored))
        assert_that(learned["articles"] | beam.Map(lambda a: STOCK in a.text), equal_to([False] * 4))
        _ = ({"stored": stored, "seen": learned["sightings"]}
             | WriteBoilerplateMemory(str(tmp_path), "run1", SETTINGS)
             | PublishFiles(str(tmp_path), "run1"))
    assert pq.read_table(folder / "lines-run1.parquet").column("sources").to_pylist()[0][-1] != "c"


def test_an_unreadable_file_named_to_sort_last_is_passed_over_and_removed(tmp_path, caplog):
    out = str(tmp_path)
    with pipeline() as p:
        learned = (p | beam.Create(sites_with_stock(3))
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS))
        _ = ({"stored": p | "None" >> beam.Create([]), "seen": learned["sightings"]}
             | WriteBoilerplateMemory(out, "run1", SETTINGS)
             | PublishFiles(out, "run1"))
    folder = tmp_path / "_state" / "boilerplate"
    (folder / "lines-zz-backup.parquet").write_bytes(b"junk")
    with caplog.at_level(logging.WARNING), pipeline() as p:
        stored = p | "Out" >> beam.Create([None]) | ReadBoilerplateMemory(out)
        learned = (p | beam.Create([article("new.example", 1, STOCK), *sites_with_stock(1)])
                   | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS, stored))
        assert_that(learned["articles"] | beam.Map(lambda a: STOCK in a.text), equal_to([False] * 4))
        _ = ({"stored": stored, "seen": learned["sightings"]} | WriteBoilerplateMemory(out, "run2", SETTINGS)
             | PublishFiles(out, "run2"))
    assert "lines-zz-backup.parquet" in caplog.text
    assert sorted(f.name for f in folder.iterdir()) == ["lines-run2.parquet"]
    assert pq.read_table(folder / "lines-run2.parquet").column("sources").to_pylist()[0][0:3] != []


def test_an_earlier_windows_memory_never_replaces_a_later_ones(tmp_path):
    # A stream's windows may be published out of order: the later memory must stay.
    out, later, earlier = str(tmp_path), "20260101T000200Z-abcdef", "20260101T000100Z-abcdef"
    for run_id in (later, earlier):
        with pipeline() as p:
            learned = (p | beam.Create(sites_with_stock(3))
                       | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS))
            _ = ({"stored": p | "None" >> beam.Create([]), "seen": learned["sightings"]}
                 | WriteBoilerplateMemory(out, run_id, SETTINGS) | PublishFiles(out, run_id))
    names = sorted(path.name for path in (tmp_path / "_state" / "boilerplate").iterdir())
    assert names == [f"lines-{earlier}.parquet", f"lines-{later}.parquet"]


def test_a_memory_dated_ahead_of_the_clock_is_replaced(tmp_path):
    # Written while the clock was years ahead: as the newest name it would be read forever.
    out, ahead = str(tmp_path), "20991231T000000Z-skewed"
    for run_id in (ahead, "20260101T000100Z-abcdef"):
        with pipeline() as p:
            learned = (p | beam.Create(sites_with_stock(3))
                       | LearnSiteTemplates(p | "NoHistory" >> beam.Create([]), SETTINGS))
            _ = ({"stored": p | "None" >> beam.Create([]), "seen": learned["sightings"]}
                 | WriteBoilerplateMemory(out, run_id, SETTINGS) | PublishFiles(out, run_id))
    names = [path.name for path in (tmp_path / "_state" / "boilerplate").iterdir()]
    assert names == ["lines-20260101T000100Z-abcdef.parquet"]
