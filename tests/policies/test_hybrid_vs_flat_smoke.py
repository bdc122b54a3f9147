"""``benchmarks/hybrid_vs_flat.py --smoke``: every method trains, is scored and tabulated.

The full benchmark is not part of the test run; this runs its tiny mode on one task.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch as th
from cli_support import REPO


def _load_benchmark() -> ModuleType:
    path = REPO / "benchmarks" / "hybrid_vs_flat.py"
    spec = importlib.util.spec_from_file_location("hybrid_vs_flat", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_smoke_mode_tabulates_every_method(tmp_path: Path) -> None:
    th.set_num_threads(1)
    bench = _load_benchmark()
    out = tmp_path / "hybrid_vs_flat.md"
    assert bench.main(["--smoke", "--tasks", "unified", "--output", str(out)]) == 0
    text = out.read_text()
    assert "python benchmarks/hybrid_vs_flat.py --smoke" in text
    for method in bench.METHODS:
        assert f"| unified | {method} | " in text
        # An op histogram row per task kind met: one share per op, summing to 1, then the steps.
        rows = re.findall(
            rf"^\| unified \| {re.escape(method)} \| (generate|edit) \|(.*)\| (\d+) \|$",
            text,
            flags=re.MULTILINE,
        )
        assert rows, method
        for _kind, shares, steps in rows:
            values = [float(v) for v in shares.split("|")]
            assert len(values) == len(bench.OPS) and abs(sum(values) - 1) < 0.03 and int(steps) > 0


def test_parallel_jobs_give_the_serial_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--jobs 2 --threads 1`` (runs in spawned processes) tabulates what ``--jobs 1`` does."""
    th.set_num_threads(1)
    # Spawned workers import the benchmark by its module name, from the parent's sys.path.
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    bench = _load_benchmark()
    methods = list(bench.METHODS)[:2]
    tables = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.md"
        argv = ["--smoke", "--tasks", "edit", "--methods", *methods]
        assert bench.main([*argv, "--jobs", jobs, "--threads", "1", "--output", str(out)]) == 0
        # Everything but the first paragraph, which names the command and the wall time.
        tables.append(out.read_text().split("\n\n", 2)[2])
    assert "| edit | " in tables[0]
    assert tables[0] == tables[1]


def test_jobs_and_threads_must_be_positive() -> None:
    bench = _load_benchmark()
    for flag in ("--jobs", "--threads"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--smoke", flag, "0"])
