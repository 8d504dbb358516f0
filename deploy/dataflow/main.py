"""Flex-template entry point: Dataflow's launcher runs this file with the
template's parameters and its own pipeline options as `--name=value`.

Template parameter names cannot hold hyphens, so `read_timeout` becomes the
CLI's `--read-timeout`; everything else (runner, project, region, temp
location, container image) is passed through to Beam unchanged. The job is
submitted detached: the launcher must return while the stream runs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines.cli import main

METADATA = Path(__file__).with_name("metadata.json")


def template_parameters() -> set[str]:
    return {parameter["name"] for parameter in json.loads(METADATA.read_text())["parameters"]}


def cli_args(launcher_args: list[str]) -> list[str]:
    """`news-ingest stream --detach` arguments for the launcher's arguments."""
    parameters = template_parameters()
    args = ["stream", "--detach"]
    for arg in launcher_args:
        name, equals, value = arg.removeprefix("--").partition("=")
        if arg.startswith("--") and equals and name in parameters:
            args.append(f"--{name.replace('_', '-')}={value}")
        else:
            args.append(arg)
    return args


if __name__ == "__main__":
    sys.exit(main(cli_args(sys.argv[1:])))
