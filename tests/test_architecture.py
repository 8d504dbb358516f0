"""The code's layering, as README's "Architecture" section states it: a
newcomer can trust which module may touch what.

    schemas/    records, settings, tables, the dataset layout: no stage
    transforms/ the stages and their Beam-free cores: no command line
    pipelines/  graphs, drivers, commands: anything

Checked on the import statements themselves (ast), so a violation fails
here with the module and line, not later as a circle at import time.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGES = ("schemas", "transforms", "pipelines")
# Every module of transforms/ by the stage it serves, in data-flow order: a
# module may import its own stage's, an earlier stage's, or a shared one's,
# never a later stage's (as README's Architecture section groups them).
SHARED = ("urls", "textnorm", "metrics", "windows", "quarantine")
STAGES = (
    ("workers", ("workers", "pooled")),
    ("client", ("failures", "netguard", "politeness", "httpclient", "robots", "scheduler")),
    ("feeds", ("feeds", "feedlist", "feedstate", "feedformats", "discovery")),
    ("fetch", ("fetch", "warc", "archive")),
    ("clean", ("clean", "cleaner", "metadata", "recall", "clutter", "cues", "furniture", "templates",
               "paywall", "boilerplate")),
    ("dedup", ("dedup", "neardup", "memory")),
    ("classify", ("classify", "tagging", "rulefiles", "outlets")),
    ("write", ("write",)),
    ("reprocess", ("reprocess",)),
)
# The cores other tools reuse (extract, verify, benchmarks) without a pipeline.
BEAM_FREE = ("transforms.urls", "transforms.textnorm", "transforms.failures", "transforms.netguard",
             "transforms.httpclient", "transforms.politeness", "transforms.robots", "transforms.metadata",
             "transforms.clutter", "transforms.cues", "transforms.furniture", "transforms.recall",
             "transforms.feedstate", "transforms.feedformats", "transforms.neardup", "transforms.feedlist",
             "transforms.quarantine", "transforms.workers",
             "transforms.cleaner", "transforms.tagging", "transforms.rulefiles", "transforms.warc")


def _modules() -> dict[str, Path]:
    return {f"{package}.{path.stem}": path for package in PACKAGES
            for path in sorted((ROOT / package).glob("*.py")) if path.stem != "__init__"}


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import, relative ones resolved."""
    package = name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = f"{package}.{base}" if base else package
            found.append((base, node.lineno))
            # `from . import x` / `from schemas import layout`: the names may be modules
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


MODULES = _modules()
GRAPH = {name: {(target, line) for target, line in _imports(name, path) if target in MODULES}
         for name, path in MODULES.items()}


def test_lower_layers_never_import_higher_ones():
    rank = {package: n for n, package in enumerate(PACKAGES)}
    wrong = [f"{name}:{line} imports {target}" for name, targets in GRAPH.items() for target, line in targets
             if rank[target.split(".")[0]] > rank[name.split(".")[0]]]
    assert not wrong, wrong


def _stage_rank() -> dict[str, int]:
    rank = {f"transforms.{name}": -1 for name in SHARED}
    rank.update({f"transforms.{name}": n for n, (_, names) in enumerate(STAGES) for name in names})
    return rank


def test_every_transforms_module_has_a_stage():
    rank = _stage_rank()
    assert sorted(name for name in MODULES if name.startswith("transforms.") and name not in rank) == []
    assert sorted(name for name in rank if name not in MODULES) == [], "a stage lists a module that is gone"


def test_no_module_imports_a_later_stage():
    rank = _stage_rank()
    def allowed(name: str, target: str) -> bool:
        if target not in rank:  # schemas (pipelines: the layer test)
            return True
        return rank[target] == -1 if rank[name] == -1 else rank[target] <= rank[name]

    wrong = [f"{name}:{line} imports {target}" for name, targets in GRAPH.items() if name in rank
             for target, line in targets if not allowed(name, target)]
    assert not wrong, wrong


def test_modules_import_each_other_in_no_circle():
    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            name, path = stack.pop()
            for target, _ in GRAPH[name]:
                if target == start:
                    return path + [start]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, path + [target]))
        return None

    circles = [cycle for name in GRAPH if (cycle := cycle_from(name))]
    assert not circles, circles[0]


@pytest.mark.parametrize("core", BEAM_FREE)
def test_cores_need_no_pipeline(core):
    """Neither the module nor anything of ours it imports uses Beam beyond its
    FileSystems (the file access that reaches gs:// and s3://)."""
    reached, todo = set(), [core]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        imports = _imports(name, MODULES[name])
        beam = [f"{name}:{line}" for target, line in imports
                if target.startswith("apache_beam") and not target.startswith("apache_beam.io.filesystems")]
        assert not beam, f"{core} reaches Beam through {beam[0]}"
        todo += [target for target, _ in imports if target in MODULES]


def test_every_module_is_named_in_the_architecture_section():
    text = (ROOT / "README.md").read_text("utf-8")
    section = text[text.index("## Architecture"):]
    section = section[:section.index("\n## ", 1)]
    missing = [name for name, path in MODULES.items() if path.name not in section]
    assert not missing, missing
