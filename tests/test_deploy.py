"""deploy/ checked offline: manifests parse and hang together, every command
line in them is one `news-ingest` accepts, the Dataflow template's parameters
are options of `stream`, and the images agree with the pinned Beam."""
from __future__ import annotations

import configparser
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import apache_beam
import pytest
import yaml
from apache_beam.options.pipeline_options import FlinkRunnerOptions, PipelineOptions
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from pipelines.cli import _parser
from pipelines.options import check_beam_options, parse_interval

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
METADATA = json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())
COMPOSE = yaml.safe_load((DEPLOY / "flink" / "docker-compose.yaml").read_text())
KUBERNETES = {doc["kind"]: doc
              for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())}
UNITS = sorted((DEPLOY / "systemd").glob("*.*"))


def accepted(argv: list[str]):
    """The parsed command, after proving neither news-ingest nor Beam finds an unknown option."""
    args, rest = _parser().parse_known_args(argv)
    check_beam_options(PipelineOptions(rest), args.command)  # raises UsageError, naming the option
    return args


def option_names(command: str) -> dict[str, object]:
    """Long options of a subcommand with their defaults."""
    subparsers = next(a for a in _parser()._actions if a.dest == "command")
    return {option: action.default for action in subparsers.choices[command]._actions
            for option in action.option_strings if option.startswith("--")}


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser


def test_template_parameters_are_stream_options_with_the_same_defaults():
    stream = option_names("stream")
    assert METADATA["streaming"] is True
    for parameter in METADATA["parameters"]:
        option = "--" + parameter["name"].replace("_", "-")
        assert option in stream, f"{parameter['name']} is not an option of news-ingest stream"
        default = re.search(r"Default: ([^.\s]+(?:\.\d+)?)", parameter["helpText"])
        if default:
            assert str(stream[option]).removesuffix(".0") == default.group(1), parameter["name"]
    required = {p["name"] for p in METADATA["parameters"] if not p["isOptional"]}
    assert required == {"feeds", "out"}


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("interval", ["15m", "30s", "1h30m"], ["15 minutes", "m15"]),
    ("out", ["gs://bucket/news"], ["/tmp/news", "gs://"]),
    ("feeds", ["gs://bucket/feeds.opml", "https://example.org/rss"], ["feeds.opml"]),
])
def test_template_parameter_checks_agree_with_the_cli(name, good, bad):
    (parameter,) = [p for p in METADATA["parameters"] if p["name"] == name]
    patterns = [re.compile(regex) for regex in parameter["regexes"]]
    for value in good:
        assert all(p.match(value) for p in patterns), value
        if name == "interval":
            parse_interval(value)
    for value in bad:
        assert not all(p.match(value) for p in patterns), value


def test_template_launcher_arguments_become_a_detached_stream():
    spec = importlib.util.spec_from_file_location("flex_main", DEPLOY / "dataflow" / "main.py")
    flex_main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flex_main)
    launcher = ["--feeds=gs://b/feeds.opml", "--out=gs://b/news", "--read_timeout=30", "--interval=5m",
                "--runner=DataflowRunner", "--project=p", "--region=europe-west1",
                "--temp_location=gs://b/tmp", "--sdk_container_image=europe-docker.pkg.dev/p/r/news-ingest"]
    args = accepted(flex_main.cli_args(launcher))
    assert (args.command, args.detach, args.read_timeout, args.interval, args.out) == \
        ("stream", True, 30.0, "5m", "gs://b/news")


def test_dockerfile_builds_the_pinned_beam_and_python_and_copies_what_it_names():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    beam = next(Requirement(r) for r in pyproject["project"]["dependencies"] if r.startswith("apache-beam"))
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", DOCKERFILE, re.M))
    assert beam.specifier.contains(args["BEAM_VERSION"])
    assert args["BEAM_VERSION"] == apache_beam.__version__, "workers must run the Beam the tests ran"
    python = args["PYTHON_VERSION"]
    assert f"python{python.replace('.', '')}-template-launcher" in DOCKERFILE
    assert SpecifierSet(pyproject["project"]["requires-python"]).contains(python)
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
    extras = re.search(r'pip install [^"]*"\.\[([\w,]+)\]"', DOCKERFILE).group(1).split(",")
    assert set(extras) <= set(pyproject["project"]["optional-dependencies"])
    entry = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/news-ingest/(\S+)", DOCKERFILE).group(1)
    assert (ROOT / entry).is_file() and "WORKDIR /opt/news-ingest" in DOCKERFILE
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in DOCKERFILE


def test_flink_example_matches_the_beam_it_submits_with():
    services = COMPOSE["services"]
    flink = {re.search(r"flink:(\d+\.\d+)", services[name]["image"]).group(1)
             for name in ("jobmanager", "taskmanager")}
    job_server = re.fullmatch(r"apache/beam_flink(\d+\.\d+)_job_server:(\S+)",
                              services["job-server"]["image"])
    flink_version, beam_version = job_server.groups()
    assert flink == {flink_version} and flink_version in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    assert beam_version == apache_beam.__version__
    assert services["worker-pool"]["network_mode"] == "service:taskmanager"
    args = accepted(services["submit"]["command"])
    assert args.command == "stream"
    assert (ROOT / args.feeds[0]).is_file(), "the image's working folder is the repository root"
    out_volume = next(v for v in services["submit"]["volumes"] if v.endswith(":/data"))
    assert args.out.startswith("/data/") and out_volume in services["worker-pool"]["volumes"], \
        "the submitter and the workers see the same dataset"


def test_cronjob_never_overlaps_and_mounts_what_its_command_reads():
    cronjob = KUBERNETES["CronJob"]["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    assert cronjob["schedule"] == "*/15 * * * *"
    pod = cronjob["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = accepted(container["args"])
    assert container["command"] == ["news-ingest"] and args.command == "run"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts.keys() == volumes.keys()
    feeds = Path(args.feeds[0])
    (config_volume,) = [n for n, v in volumes.items() if "configMap" in v]
    assert feeds.parent == Path(mounts[config_volume])
    assert volumes[config_volume]["configMap"]["name"] == KUBERNETES["ConfigMap"]["metadata"]["name"]
    assert feeds.name in KUBERNETES["ConfigMap"]["data"]
    (data_volume,) = [n for n, v in volumes.items() if "persistentVolumeClaim" in v]
    assert Path(args.out).is_relative_to(mounts[data_volume])
    assert volumes[data_volume]["persistentVolumeClaim"]["claimName"] == \
        KUBERNETES["PersistentVolumeClaim"]["metadata"]["name"]


def test_systemd_units_run_commands_news_ingest_accepts_and_treat_its_exit_codes_right():
    timer = unit(DEPLOY / "systemd" / "news-ingest.timer")
    assert timer["Timer"]["OnCalendar"] == "*:0/15" and timer["Timer"]["Persistent"] == "true"
    expected = {"news-ingest.service": ("run", "75"), "news-ingest-stream.service": ("stream", "130")}
    for name, (command, success) in expected.items():
        service = unit(DEPLOY / "systemd" / name)["Service"]
        binary, *argv = shlex.split(service["ExecStart"])
        assert binary.endswith("/bin/news-ingest")
        assert accepted(argv).command == command
        assert service["SuccessExitStatus"] == success
    assert unit(DEPLOY / "systemd" / "news-ingest-stream.service")["Service"]["KillSignal"] == "SIGINT", \
        "systemctl stop must let the poll in progress finish, as Ctrl-C does"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    binary = str(Path(sys.executable).with_name("news-ingest"))
    for path in UNITS:
        (tmp_path / path.name).write_text(path.read_text().replace("/opt/news-ingest/.venv/bin/news-ingest",
                                                                   binary))
    checked = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / p.name) for p in UNITS)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), \
        checked.stdout + checked.stderr
