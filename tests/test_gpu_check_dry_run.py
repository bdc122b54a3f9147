"""``benchmarks/gpu_check.py --device cpu``: the script for a lent GPU runs end to end.

A GPU is lent only now and then and for minutes, so the script must not fail there for a
reason a CPU run shows: this runs every stage, the throughput rows and the breakdowns at a
tiny size on the CPU (its numbers mean nothing here).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from cli_support import REPO


def test_every_stage_passes_on_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import gpu_check

    torch.set_num_threads(1)
    out = tmp_path / "vec_throughput_gpu.md"
    args = ["--device", "cpu", "--n-envs", "2", "4", "--seconds", "0.1", "--size", "36"]
    status = gpu_check.main([*args, "--skip-dummy-above", "2", "--output", str(out)])
    text = out.read_text()
    assert status == 0, text
    stages = re.findall(r"^- (.*?): \*\*(\w+)\*\*", text, flags=re.MULTILINE)
    assert [name for name, _ in stages] == [
        "env state on the device",
        "device vs CPU equivalence (fp32, TF32 off)",
        "device vs CPU equivalence (PyTorch default: TF32 convolutions)",
        "PPO on the device",
    ]
    assert all(state == "ok" for _, state in stages), stages
    assert "lazy: canvas, target, start, mask on the device" in text
    # A row per N and metric dtype (bank), the middle N with the bank keeping its targets'
    # features, without a bank and dense, one dummy.
    rows = re.findall(r"^\| 36 \| (\d+) \| (\w+) \| (\w+) \| cpu \| ([\d.]+) \|", text, re.M)
    assert len(rows) == 8 and all(float(rate) > 0 for *_, rate in rows), rows
    kept = [line for line in text.splitlines() if "its targets' features kept" in line]
    assert len(kept) == 1 and kept[0].startswith("| 36 | 4 | lazy | UniGenVecEnv |"), kept
    assert sum(1 for row in rows if row[2] == "DummyVecEnv") == 1
    bf16 = [line for line in text.splitlines() if line.startswith("| 36 |") and "bfloat16" in line]
    assert len(bf16) == 2, bf16
    breakdowns = (tmp_path / "step_breakdown_gpu.md").read_text()
    assert breakdowns.count("| whole vector step (with the VecEnv wrappers) |") == 2
