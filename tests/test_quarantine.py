"""A damaged file of the dataset never stops ingestion: it is moved to
`_state/quarantine/` with a warning naming it and what it cost, and the run
goes on (the real CLI on the bundled offline demo, files damaged on disk)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.rebuild import salvaged_rows, stored_columns
from transforms.quarantine import DamagedFile

from .conftest import DEMO_FEEDS, article_urls, assert_sound, run_cli


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quarantine") / "data"
    code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(out))
    assert code == 0, printed
    return out


@pytest.fixture
def dataset(first_run, tmp_path) -> Path:
    """A copy of a demo dataset whose feeds are due again."""
    out = tmp_path / "data"
    shutil.copytree(first_run, out)
    (out / "_state" / "feeds.json").unlink()
    return out


def quarantined(out: Path) -> list[Path]:
    folder = out / "_state" / "quarantine"
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def run_again(out: Path, capsys, sound: bool = True) -> str:
    """The run's warnings (it must succeed, and leave the dataset sound)."""
    code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(out))
    warned = capsys.readouterr().err
    assert code == 0, printed + warned
    if sound:
        assert_sound(out)
    return warned


@pytest.mark.e2e
@pytest.mark.parametrize("damage", [b"", b"PAR1 truncated"])
def test_a_damaged_articles_file_is_quarantined_when_the_memory_is_rebuilt(dataset, capsys, damage):
    every = article_urls(dataset)
    damaged = sorted((dataset / "articles").rglob("*.parquet"))[0]
    lost = pq.read_table(damaged, columns=["url"]).column("url").to_pylist()
    damaged.write_bytes(damage)
    shutil.rmtree(dataset / "_state" / "memory")  # so the run rebuilds it from the tables
    warned = run_again(dataset, capsys)
    assert str(damaged) in warned and "quarantine" in warned
    assert "mentions of articles a damaged file lost" in warned
    aside = {path.relative_to(dataset / "_state" / "quarantine").parts[0] for path in quarantined(dataset)}
    assert [path.name.split(".parquet")[0] for path in quarantined(dataset)
            if "articles" in path.parts] == [damaged.stem]
    assert aside == {"articles", "mentions"}, "its mentions set aside, not deleted"
    # Nothing of it could be salvaged, so its URLs were fetched again: every article is back.
    assert lost and article_urls(dataset) == every
    run_again(dataset, capsys)  # and later runs are not stopped either


@pytest.mark.e2e
def test_a_damaged_template_history_is_quarantined(dataset, capsys):
    history = next((dataset / "_state" / "templates").glob("history-*.parquet"))
    history.write_bytes(history.read_bytes()[:40])
    warned = run_again(dataset, capsys)
    assert history.name in warned and "learned again" in warned
    assert [path.name.startswith(history.name) for path in quarantined(dataset)] == [True]
    run_again(dataset, capsys)  # and later runs are not stopped either


@pytest.mark.e2e
@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b'{"files": [], "replaced": "ab"}',
                                     b'{"files": [], "replaced": ["/etc/hostname"]}'])
def test_a_damaged_commit_list_is_quarantined(dataset, capsys, content):
    commits = dataset / "_state" / "commits"
    commits.mkdir(exist_ok=True)
    (commits / "20260101T000000Z-aaaaaa.json").write_bytes(content)
    assert "20260101T000000Z-aaaaaa.json" in run_again(dataset, capsys)
    assert [path.name.startswith("20260101T000000Z-aaaaaa.json") for path in quarantined(dataset)] == [True]


@pytest.mark.e2e
def test_the_summary_names_what_was_quarantined_even_when_quiet(dataset, capsys):
    # The warnings are hidden under -q: the one summary line must still say it.
    history = next((dataset / "_state" / "templates").glob("history-*.parquet"))
    history.write_bytes(b"")
    (dataset / "_state" / "commits").mkdir(exist_ok=True)
    (dataset / "_state" / "commits" / "20260101T000000Z-aaaaaa.json").write_bytes(b"{")  # read at the start
    code, printed, summary = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(dataset), "-q")
    assert code == 0 and capsys.readouterr().err == ""
    assert printed.count("\n") == 1 and "; QUARANTINED 2 damaged files: see _state/quarantine/" in printed
    names = summary["quarantined"]
    assert sorted(name.rsplit(".", 1)[0] for name in names) == [
        "_state/commits/20260101T000000Z-aaaaaa.json", f"_state/templates/{history.name}"]
    code, printed, summary = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(dataset))
    assert code == 0, printed
    assert summary["quarantined"] == [], "only what this run set aside"


def cli(*args: str) -> subprocess.CompletedProcess:
    """The command in a process of its own, so a hang fails the test instead of stalling the suite."""
    return subprocess.run([sys.executable, "-c", "import sys; from pipelines.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", *args],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)


@pytest.mark.e2e
@pytest.mark.parametrize("fifo", [("commits", "20260101T000000Z-bbbbbb.json"), ("feeds.json",)])
def test_a_state_file_that_is_a_fifo_hangs_neither_run_nor_report(dataset, fifo):
    path = dataset.joinpath("_state", *fifo)
    path.unlink(missing_ok=True)
    path.parent.mkdir(exist_ok=True)
    os.mkfifo(path)
    done = cli("run", "--feeds", str(DEMO_FEEDS), "--out", str(dataset))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not a regular file" in done.stderr
    path.unlink(missing_ok=True)  # the run wrote a new feed state
    os.mkfifo(path)  # again, for the report
    done = cli("report", "--out", str(dataset))
    assert done.returncode == 0, done.stdout + done.stderr


def damage_row_group(path: Path, group: int) -> None:
    """Overwrite the start of one row group's first page: its footer still reads."""
    data = bytearray(path.read_bytes())
    start = pq.ParquetFile(path).metadata.row_group(group).column(0).data_page_offset + 10
    data[start:start + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))


def test_the_readable_row_groups_of_a_damaged_file_are_salvaged(tmp_path):
    path = tmp_path / "part.parquet"
    urls = [f"https://news.example/{n}" for n in range(200)]
    pq.write_table(pa.table({"url": urls, "article_id": [str(n) for n in range(200)]}), path,
                   compression="zstd", row_group_size=100)
    damage_row_group(path, 0)
    with pytest.raises(DamagedFile):
        stored_columns(str(path), "articles")
    assert salvaged_rows(str(path)).column("url").to_pylist() == urls[100:]


@pytest.mark.e2e
def test_a_salvaged_articles_file_keeps_its_rows_in_the_dataset(dataset, capsys):
    every = article_urls(dataset)
    files = sorted((dataset / "articles").rglob("*.parquet"))
    merged = pa.concat_tables([pq.read_table(path) for path in files])  # one file, a row group per article
    for path in files:
        path.unlink()
    target = files[0]
    pq.write_table(merged, target, row_group_size=1)
    damage_row_group(target, 1)
    shutil.rmtree(dataset / "_state" / "memory")
    warned = run_again(dataset, capsys, sound=False)  # its rows are of several partitions
    assert "4 of its rows salvaged" in warned, warned
    # Four rows kept from the damaged file, the fifth article fetched again: each once, none lost.
    assert article_urls(dataset) == every
    assert len(quarantined(dataset)) == 1 and not target.exists()


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["keys", "texts"])
def test_a_damaged_memory_file_is_quarantined_and_the_memory_rebuilt(dataset, capsys, kind):
    every = article_urls(dataset)
    damaged = sorted((dataset / "_state" / "memory" / kind).rglob("*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:30])
    warned = run_again(dataset, capsys)
    assert str(damaged) in warned and "rebuilt from the tables" in warned
    assert len(quarantined(dataset)) == 1
    assert article_urls(dataset) == every  # the rebuilt memory knew them all: nothing ingested twice
    run_again(dataset, capsys)  # the rebuilt memory serves the next run


@pytest.mark.e2e
def test_a_damaged_table_file_under_an_intact_memory_stops_neither_report_nor_compact(dataset, capsys):
    # The memory serves runs, so no rebuild meets the file: `report` once failed on it forever.
    damaged = sorted((dataset / "articles").rglob("*.parquet"))[0]
    (lost,) = pq.read_table(damaged, columns=["article_id"]).column("article_id").to_pylist()
    damaged.write_bytes(damaged.read_bytes()[:60])
    printed = cli("report", "--out", str(dataset))
    assert printed.returncode == 0, printed.stderr
    assert "left out 1 damaged file" in printed.stdout
    assert f"verify --out {dataset} --repair" in printed.stdout
    assert "articles 4 from" in printed.stdout, printed.stdout
    (dataset / "articles" / "date=2099-01-01" / "actor=isis").mkdir(parents=True)
    second = damaged.parent / damaged.name.replace("-00000", "-00001")
    shutil.copy(next(path for path in (dataset / "articles").rglob("*.parquet") if path != damaged), second)
    compacted = cli("compact", "--out", str(dataset))
    assert compacted.returncode == 1 and "verify --repair" in compacted.stdout, compacted.stdout
    assert damaged.exists()
    second.unlink()
    # verify --repair sets it aside and takes out its articles' mentions; a copy of its article
    # points at nothing until the next run fetches that article again (then all is sound).
    repaired = cli("verify", "--out", str(dataset), "--repair")
    after = repaired.stdout.split("repair: ")[-1].splitlines()[1:]
    assert "mentions of articles a damaged file lost" in repaired.stderr, repaired.stderr
    assert len(after) == 2 and after[0].startswith("duplicates pointing at no stored article: 1, e.g. ")
    assert after[0].endswith(f" -> {lost}") and after[1] == "verify: 1 problem", after
    run_again(dataset, capsys)
    assert len(article_urls(dataset)) == 5


def mention_rows(out: Path) -> int:
    return sum(pq.read_metadata(path).num_rows for path in (out / "mentions").rglob("*.parquet"))


def lose_an_article(dataset: Path) -> Path:
    """An articles file damaged beyond salvage, the memory gone (the run rebuilds it)."""
    damaged = sorted((dataset / "articles").rglob("*.parquet"))[0]
    damaged.write_bytes(b"")
    shutil.rmtree(dataset / "_state" / "memory")
    return damaged


@pytest.mark.e2e
def test_the_summary_counts_damaged_files_not_the_copies_kept_of_pruned_ones(dataset, tmp_path):
    lose_an_article(dataset)
    code, printed, summary = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(dataset), "-q")
    assert code == 0 and len(summary["quarantined"]) == 1, printed
    assert len(quarantined(dataset)) > 1, "the mentions files pruned were copied too"


@pytest.mark.e2e
def test_mentions_are_kept_when_their_copy_cannot_be_made(dataset, capsys):
    lose_an_article(dataset)
    before = mention_rows(dataset)
    (dataset / "_state" / "quarantine").mkdir(parents=True)
    (dataset / "_state" / "quarantine" / "mentions").write_text("a file where a folder must go")
    warned = run_again(dataset, capsys, sound=False)  # the lost article's mentions stay (and a new one)
    assert "keeps the mentions of articles a damaged file lost" in warned, warned
    assert mention_rows(dataset) > before, "none taken out without a copy"


@pytest.mark.e2e
def test_odd_files_beside_a_lost_article_cost_nothing_else(dataset, capsys):
    lose_an_article(dataset)
    day = sorted((dataset / "mentions").glob("date=*"))[0]
    # A hand-made folder named like a pattern, and a mentions file of another schema on the lost day.
    (dataset / "articles" / "date=*" / "actor=x").mkdir(parents=True)
    (dataset / "articles" / "date=*" / "actor=x" / "part-a.parquet").write_bytes(b"junk")
    foreign = next(day.glob("actor=*")) / "part-foreign-00000.parquet"
    pq.write_table(pa.table({"article_id": pa.nulls(2)}), foreign)
    before = rows_by_day(dataset)
    warned = run_again(dataset, capsys, sound=False)
    assert foreign.exists() and "set aside" in warned
    after = rows_by_day(dataset)
    del before[day.name], after[day.name]
    assert after == before, "mentions of other days untouched"


def rows_by_day(out: Path) -> dict[str, int]:
    return {day.name: sum(pq.read_metadata(path).num_rows for path in day.rglob("*.parquet"))
            for day in (out / "mentions").glob("date=*")}
