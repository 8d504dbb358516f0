"""The same pipeline through the portable job API (the path Flink, Spark and
Dataflow take), translated to the Runner API, and writing to an object store."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

import apache_beam as beam
import grpc
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc, standard_window_fns_pb2

from pipelines.batch import build_pipeline
from pipelines.cli import main
from pipelines.options import PreflightError, feed_urls
from pipelines.stream import build_stream_pipeline
from schemas.settings import Settings

from .conftest import ROOT, dataset_files, query, run_cli
from .objectstore import ObjectStore

PORTABLE = ("--runner", "PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK")


@pytest.mark.e2e
def test_a_run_through_the_portable_job_api_lands_the_same_dataset(news_site, site, tmp_path):
    args = ("--feeds", str(news_site), "--allow-private-network", "--read-timeout", "1")
    local, portable = tmp_path / "local", tmp_path / "portable"
    code, printed, summary = run_cli(*args, "--out", str(local))
    assert code == 0 and summary["items"]["seen"] == 10 and summary["adds_up"], printed
    code, printed, summary = run_cli(*args, "--out", str(portable), *PORTABLE)
    assert code == 0, printed
    assert summary["items"]["seen"] == 10 and summary["adds_up"], "counters come back through the job API"
    for table, columns in (("articles", "url, actor, date, title, text"),
                           ("duplicates", "url, method"),
                           ("rejects", "stage, url, error_type, http_status")):
        sql = f"select {columns} from t order by all"
        assert query(portable, table, sql) == query(local, table, sql), table


def _proto(build, **options):
    pipeline = beam.Pipeline(options=PipelineOptions(**options))
    build(pipeline)
    return pipeline.to_runner_api()


@pytest.mark.e2e
def test_batch_and_stream_graphs_translate_to_the_runner_api(tmp_path):
    feeds, out, settings = ["https://a.example/rss"], str(tmp_path), Settings()
    batch = _proto(lambda p: build_pipeline(p, feeds, out, "r1", settings))
    stream = _proto(lambda p: build_stream_pipeline(p, feeds, out, "20260101T000000Z-abc123", settings,
                                                    interval_s=300), streaming=True)
    for proto in (batch, stream):
        names = {t.unique_name for t in proto.components.transforms.values()}
        assert {"PollFeeds", "FetchPages", "CleanPages", "Deduplicate", "Classify", "Write",
                "RememberFeeds"} <= names
        beam.Pipeline.from_runner_api(proto, runner=None, options=PipelineOptions())

    fixed = [standard_window_fns_pb2.FixedWindowsPayload.FromString(w.window_fn.payload).size.seconds
             for w in stream.components.windowing_strategies.values()
             if w.window_fn.urn == common_urns.fixed_windows.urn]
    assert fixed and set(fixed) == {300}, "the stream writes one set of files per interval"
    assert any(t.spec.urn == common_urns.primitives.PAR_DO.urn and t.unique_name.startswith("EveryInterval")
               for t in stream.components.transforms.values())


@pytest.mark.e2e
def test_a_run_writes_to_an_object_store_through_beam_filesystems(news_site, site, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setattr(ObjectStore, "root", str(tmp_path / "bucket"))
    args = ("--feeds", str(news_site), "--out", "objstore://bucket/news", "--allow-private-network",
            "--read-timeout", "1", *PORTABLE)
    code, printed, summary = run_cli(*args)
    assert code == 0 and summary["items"]["articles"] == 5, printed
    stored = tmp_path / "bucket" / "bucket" / "news"
    assert query(stored, "articles")[0][0] == 5
    assert (stored / "_state" / "feeds.json").exists()
    assert list((stored / "raw").rglob("*.warc.gz")), "a new dataset in a store keeps its pages too"
    files = dataset_files(stored)  # the tables' files (the memory's are replaced as it grows)
    code, printed, summary = run_cli(*args)
    assert code == 0, printed
    assert (summary["feeds"]["not_modified"], summary["feeds"]["unchanged"]) == (0, 1), \
        "feed state read back from the store"
    site.add("/p/again", site.routes["/p/levant"].body)
    second = site.routes["/feeds/second.xml"].body.replace(
        b"</channel>", b"<item><link>/p/again</link></item></channel>")
    site.add("/feeds/second.xml", second, content_type="application/rss+xml")
    code, printed, summary = run_cli(*args)
    assert code == 0, printed
    assert (summary["items"]["already_ingested"], summary["items"]["duplicates"]) == (7, 1), \
        "earlier fingerprints are read from the store"
    assert files < dataset_files(stored), "no file rewritten"
    assert list((stored / "_state" / "memory" / "keys").rglob("*.parquet")), "the memory is in the store"


@pytest.mark.e2e
def test_an_older_dataset_in_a_store_stays_without_an_archive(news_site, tmp_path, monkeypatch):
    monkeypatch.setattr(ObjectStore, "root", str(tmp_path / "bucket"))
    stored = tmp_path / "bucket" / "bucket" / "old"
    shutil.copytree(ROOT / "tests" / "data" / "old-dataset", stored,
                    ignore=shutil.ignore_patterns("README.md"))
    code, printed, _ = run_cli("--feeds", str(news_site), "--out", "objstore://bucket/old",
                               "--allow-private-network", "--read-timeout", "1", *PORTABLE)
    assert code == 0, printed
    assert not (stored / "raw").exists(), "an older dataset in a store began an archive nobody asked for"


@pytest.mark.e2e
def test_stream_through_the_portable_job_api_polls_on_each_interval(news_site, site, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["stream", "--feeds", str(news_site), "--out", str(out), "--allow-private-network",
                 "--read-timeout", "1", "--interval", "1s", "--polls", "2", *PORTABLE])
    polls = [line for line in capsys.readouterr().out.splitlines() if "feeds polled" in line]
    assert code == 0 and len(polls) == 2
    assert "articles 5," in polls[0] and "articles 0, duplicates 0" in polls[1]
    assert query(out, "articles")[0][0] == 5


def test_a_feed_list_in_the_object_store_is_read_through_beam_filesystems(site, tmp_path, monkeypatch):
    monkeypatch.setattr(ObjectStore, "root", str(tmp_path / "bucket"))
    listed = tmp_path / "bucket" / "lists"
    listed.mkdir(parents=True)
    (listed / "feeds.txt").write_text(f"# conflict desk\n{site.url('/a.xml')}\n{site.url('/b.xml')}\n")
    (listed / "feeds.opml").write_text(
        f'<opml version="2.0"><body><outline xmlUrl="{site.url("/c.xml")}"/></body></opml>')
    (listed / "relative.txt").write_text("feeds/a.xml\n")
    assert feed_urls(["objstore://lists/feeds.txt", "objstore://lists/feeds.opml"]) == [
        site.url("/a.xml"), site.url("/b.xml"), site.url("/c.xml")]
    for spec, message in (("objstore://lists/missing.txt", "cannot read feed list objstore://lists/missing.txt"),
                          ("objstore://lists/relative.txt", "must name feeds by absolute URL"),
                          ("nostore://lists/feeds.txt", "cannot read feed list nostore://")):
        with pytest.raises(PreflightError, match=re.escape(message)) as raised:
            feed_urls([spec])
        assert "\n" not in str(raised.value)


@pytest.fixture
def job_service(tmp_path):
    """Beam's own job service (the API Flink's and Spark's job servers speak)
    in a process of its own, as a remote runner would be."""
    port_file = tmp_path / "job-service.port"
    server = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                               "--port", "0", "--port_file", str(port_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and server.poll() is None, "job service did not start"
            time.sleep(0.1)
        endpoint = f"localhost:{port_file.read_text().strip()}"
        channel = grpc.insecure_channel(endpoint)
        yield endpoint, beam_job_api_pb2_grpc.JobServiceStub(channel)
        channel.close()
    finally:
        server.kill()
        server.wait()


@pytest.mark.e2e
def test_a_detached_stream_returns_while_its_job_runs_on(news_site, tmp_path, job_service, capsys):
    endpoint, jobs = job_service
    code = main(["stream", "--feeds", str(news_site), "--out", str(tmp_path / "out"), "--interval", "1m",
                 "--allow-private-network", "--detach", "--runner", "PortableRunner",
                 f"--job_endpoint={endpoint}", "--environment_type=beam:env:embedded_python:v1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    job_id = re.search(r"streaming job (\S+) submitted", printed).group(1)
    state = jobs.GetState(beam_job_api_pb2.GetJobStateRequest(job_id=job_id)).state
    assert state in (beam_job_api_pb2.JobState.STARTING, beam_job_api_pb2.JobState.RUNNING), \
        "the job keeps running after the command returned"
    jobs.Cancel(beam_job_api_pb2.CancelJobRequest(job_id=job_id))


@pytest.mark.e2e
def test_detach_needs_a_runner_outside_this_process(news_site, tmp_path, capsys):
    code = main(["stream", "--feeds", str(news_site), "--out", str(tmp_path), "--detach"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "--detach needs a runner outside this process" in error
