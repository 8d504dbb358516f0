"""Write stage: hive folders, atomic files, safe partition values, read back with DuckDB."""
from __future__ import annotations

from datetime import UTC, datetime

import apache_beam as beam
import duckdb
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline

from pipelines.lock import RunLock
from schemas.layout import hidden_path, safe_partition_value
from schemas.records import Article, Duplicate, Mention, Reject
from schemas.settings import WriteSettings
from schemas.tables import ARTICLES
from transforms.write import WriteDataset, partition_rows, publish_files, write_partition

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("value, expected", [
    ("shq", "shq"),
    ("syrian-regime", "syrian-regime"),
    ("../../etc", "etc"),
    ("..", "unknown"),
    ("a/b\\c", "a_b_c"),
    ("Ünïcödé ☃ actor", "unicode_actor"),
    ("", "unknown"),
    ("x" * 500, "x" * 64),
    ("\uff0e\uff0e/\uff0e\uff0e/etc", "etc"),  # full-width dots fold to '.', then go
    ("a\u202egnp.exe", "agnp.exe"),  # a right-to-left override
    ("nul\x00byte", "nul_byte"),
    (".hidden", "hidden"),
    ("\U0001f600", "unknown"),
])
def test_partition_values_cannot_escape_the_dataset(value, expected):
    assert safe_partition_value(value, 64) == expected


def article(article_id: str, actor: str, day: int, mentions=()) -> Article:
    return Article(article_id=article_id, url=f"https://a.example/{article_id}",
                   canonical_url=f"https://a.example/{article_id}", source="a.example",
                   feed_url="https://a.example/rss", title=f"Title {article_id}",
                   text="Some text.", published_at=datetime(2017, 8, day, 9, tzinfo=UTC),
                   date_source="feed", fetched_at=NOW, content_hash=f"h{article_id}",
                   word_count=2, language="en", language_confidence=0.99,
                   actors=tuple(m.actor for m in mentions), primary_actor=actor,
                   mentions=tuple(mentions), event_types=("statement",))


def test_partition_file_is_renamed_into_place_and_rewritten_on_retry(tmp_path):
    rows = [{"stage": "fetch", "url": f"https://a.example/{n}", "feed_url": "f",
             "error_type": "timeout", "message": "slow", "http_status": None,
             "rejected_at": NOW, "run_id": "r1"} for n in range(5)]
    for _attempt in range(2):
        paths = write_partition(str(tmp_path), ("rejects", "2026-01-01", ""), rows, "r1", 3)
    files = sorted(p.name for p in (tmp_path / "rejects" / "date=2026-01-01").iterdir())
    assert files == ["part-r1-00000.parquet", "part-r1-00001.parquet"]
    assert [len(pq.read_table(path)) for path in paths] == [3, 2]


def test_write_dataset_lands_every_table_in_hive_folders(tmp_path):
    records = {
        "articles": [article("a1", "shq", 2, [Mention("shq", 3, True), Mention("coalition", 1, False)]),
                     article("a2", "none", 3)],
        "duplicates": [Duplicate("d1", "https://b.example/d1", "b.example", "f",
                                 datetime(2017, 8, 2, tzinfo=UTC), "a1", "exact", 1.0, NOW)],
        "rejects": [Reject("fetch", "https://c.example/x", "f", "http-status", "HTTP 404", 404, NOW)],
    }
    with TestPipeline(runner="FnApiRunner") as p:
        outputs = {name: p | f"Create{name}" >> beam.Create(rows) for name, rows in records.items()}
        _ = outputs | WriteDataset(str(tmp_path), "run1", WriteSettings())

    def read(table):
        return duckdb.sql(f"select * from read_parquet('{tmp_path}/{table}/**/*.parquet', "
                          "hive_partitioning=true) order by all")

    articles = read("articles").fetchall()
    columns = read("articles").columns
    assert len(articles) == 2
    by_id = {row[columns.index("article_id")]: dict(zip(columns, row, strict=True)) for row in articles}
    assert str(by_id["a1"]["date"]) == "2017-08-02" and by_id["a1"]["actor"] == "shq"
    assert by_id["a2"]["actor"] == "none"
    assert by_id["a1"]["run_id"] == "run1"
    assert set(ARTICLES.names) <= set(columns)
    mentions = duckdb.sql(f"select article_id, actor, count, in_title from read_parquet("
                          f"'{tmp_path}/mentions/**/*.parquet', hive_partitioning=true) "
                          "order by actor").fetchall()
    assert mentions == [("a1", "coalition", 1, False), ("a1", "shq", 3, True)]
    assert read("duplicates").fetchall()[0][:2] == ("d1", "https://b.example/d1")
    assert len(read("rejects").fetchall()) == 1
    assert not list(tmp_path.rglob(".*inprogress"))


def _hidden_run(tmp_path, run: str) -> list[str]:
    """A run's article and its mention, written but not yet published."""
    record = article("a9", "shq", 4, [Mention("shq", 2, True)])
    return [path for partition, row in partition_rows(record, run, 64)
            for path in write_partition(str(tmp_path), partition, [row], run, 1000, publish=False)]


def visible(tmp_path) -> list[str]:
    return sorted(path.name for path in tmp_path.rglob("*.parquet"))


def test_a_run_is_published_all_tables_at_once(tmp_path):
    finals = _hidden_run(tmp_path, "r1")
    assert visible(tmp_path) == [], "nothing visible before the commit"
    publish_files(str(tmp_path), "r1", finals)
    assert visible(tmp_path) == ["part-r1-00000.parquet"] * 2
    assert not list(tmp_path.rglob("*.inprogress")) and not list((tmp_path / "_state").rglob("*.json"))


def test_a_commit_cut_short_is_finished_by_the_next_start(tmp_path, monkeypatch):
    finals = _hidden_run(tmp_path, "r1")
    renamed = []

    def crash_after_one(commit):  # the process dies after the first rename
        first = commit["files"][0]
        FileSystems.rename([hidden_path(first)], [first])
        renamed.append(first)
        raise KeyboardInterrupt

    monkeypatch.setattr("transforms.write._complete", crash_after_one)
    with pytest.raises(KeyboardInterrupt):
        publish_files(str(tmp_path), "r1", finals)
    assert len(visible(tmp_path)) == 1, "an article visible without its mention"
    monkeypatch.undo()
    _hidden_run(tmp_path, "r2")  # a run that died before its commit: rolled back
    (tmp_path / "_state" / "run.lock").touch()  # ...leaving its lock file, as a killed run does
    with RunLock(str(tmp_path)):
        assert visible(tmp_path) == ["part-r1-00000.parquet"] * 2
        assert not list(tmp_path.rglob("*.inprogress"))
        assert not list((tmp_path / "_state" / "commits").iterdir())
