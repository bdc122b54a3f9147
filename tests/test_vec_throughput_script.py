"""``benchmarks/vec_throughput.py --repeats``: each row reports its median run."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from cli_support import REPO


@pytest.fixture
def vt(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import vec_throughput

    return vec_throughput


def test_median_run_reports_the_middle_figure_and_lists_every_run(vt: ModuleType) -> None:
    runs = [
        vt.Result("batched", 64, 64, "cpu", steps_per_s=v, network_ms=v / 100)
        for v in (480.0, 455.5, 502.0)
    ]
    chosen = vt.median_run(runs)
    assert chosen.steps_per_s == 480.0 and chosen.network_ms == 4.8  # the whole run's row
    assert chosen.note == "median of 3 runs: 480.0, 455.5, 502.0"
    even = [vt.Result("dummy", 8, 64, "cpu", steps_per_s=v, note="x") for v in (3.0, 1.0, 4.0, 2.0)]
    assert vt.median_run(even).steps_per_s == 2.0  # the lower middle one
    assert vt.median_run(even).note == "x; median of 4 runs: 3.0, 1.0, 4.0, 2.0"
    single = vt.Result("batched", 1, 64, "cpu", steps_per_s=9.0)
    assert vt.median_run([single]) is single and single.note == ""


def test_repeats_below_one_are_refused(vt: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        vt.main(["--repeats", "0", "--output", "/nonexistent/never-written.md"])
    assert "--repeats must be an integer >= 1, got 0" in capsys.readouterr().err


def test_before_lines_give_the_ratio_of_medians_and_pass_by_pass(vt: ModuleType) -> None:
    def row(schedule: str, runs: tuple[float, ...]) -> object:
        one = [vt.Result("batched", 64, 64, "cpu", steps_per_s=v, schedule=schedule) for v in runs]
        return vt.median_run(one)

    before = row("before", (100.0, 120.0, 110.0))
    lazy = row("lazy", (190.0, 260.0, 231.0))
    text = vt.before_lines([before, lazy])
    assert text == (
        "- N=64, 64x64, UniGenVecEnv: lazy scoring 231.0 env steps/s against 110.0 before: "
        "2.10x. Pass by pass: 1.90x, 2.17x, 2.10x (median 2.10x)."
    )
    single = vt.before_lines([row("before", (100.0,)), row("lazy", (150.0,))])
    assert single.endswith("150.0 env steps/s against 100.0 before: 1.50x.")


def test_both_timing_scripts_refuse_a_before_folder_without_the_package(
    vt: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import train_wall_time

    for script in (vt, train_wall_time):
        with pytest.raises(SystemExit):
            script.main(["--before", str(tmp_path), "--output", str(tmp_path / "never.md")])
        assert f"--before {tmp_path}: no unigen_sb3 package in that folder" in (
            capsys.readouterr().err
        )
        with pytest.raises(SystemExit):
            script.main(["--repeats", "-1", "--output", str(tmp_path / "never.md")])
        assert "--repeats must be an integer >= 1, got -1" in capsys.readouterr().err
    assert not (tmp_path / "never.md").exists()


def test_before_rows_cover_subprocvecenv_with_its_workers_memory(vt: ModuleType) -> None:
    # The repository itself stands in for an older checkout: the row runs in a fresh process
    # that must import the package from the folder it is given.
    r = vt.measure_before(
        REPO, "subproc", 1, size=48, seconds=0.0, min_steps=1, warmup=0, threads=1
    )
    assert (r.kind, r.schedule, r.vec_steps) == ("subproc", "before", 1)
    assert r.steps_per_s is not None and r.steps_per_s > 0
    assert r.worker_rss_mb is not None and r.worker_rss_mb > 100  # torch + the network
    assert r.peak_rss_mb is not None and r.peak_rss_mb > r.worker_rss_mb
    with pytest.raises(ValueError, match="not 'threads'"):
        vt.measure_before(REPO, "threads", 1, size=48, seconds=0.0, min_steps=1, warmup=0)


def test_before_subprocvecenv_rows_above_max_subproc_are_not_run(vt: ModuleType) -> None:
    import argparse

    args = argparse.Namespace(device="cpu", baseline_device="cpu", max_subproc=8, before=REPO)
    r = vt._measure_row(args, 64, 64, "before", "subproc", 880.0)
    assert r.steps_per_s is None and r.schedule == "before"
    assert r.note == "not run: N > --max-subproc, about 880 MB RSS per worker"
    cuda = argparse.Namespace(device="cuda", baseline_device="cpu", max_subproc=8, before=REPO)
    assert vt._measure_row(cuda, 64, 64, "before", "batched", None) is None  # CPU only


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"{field} not in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_rss_restarts_without_the_heap_earlier_rows_freed(vt: ModuleType) -> None:
    # 60 KB blocks come from the heap (below glibc's mmap threshold); a 1 KB block kept after
    # each one stops glibc giving the freed ones back by itself.
    blocks, keepers = [], []
    for _ in range(3000):
        blocks.append(bytearray(60_000))
        keepers.append(bytearray(1_000))
    del blocks
    held = _rss_mb("VmRSS")
    vt._reset_peak_rss()
    assert _rss_mb("VmRSS") < held - 100  # the freed ~180 MB went back to the OS
    assert _rss_mb("VmHWM") < held - 100  # and the peak restarts from there
    assert len(keepers) == 3000


def test_kept_target_features_rows_warm_up_through_the_bank(
    vt: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import step_breakdown

    for script in (vt, step_breakdown):
        with pytest.raises(SystemExit):
            script.main(["--task-bank-features", "--output", str(tmp_path / "never.md")])
        assert (
            "--task-bank-features keeps a task bank's target features: give --task-bank-size"
            in (capsys.readouterr().err)
        )
    assert not (tmp_path / "never.md").exists()
    assert vt.bank_warmup(4) == 4 * 12  # default horizon x bank size
    out = tmp_path / "rows.md"
    args = ["--sizes", "36", "--n-envs", "2", "--kinds", "batched", "--scoring", "lazy"]
    bank = ["--task-bank-size", "1", "--task-bank-features", "--seconds", "0", "--output"]
    vt.main([*args, *bank, str(out)])
    text = out.read_text()
    assert "12 warm-up step(s)" in text  # every env played its one banked task
    row = [line for line in text.splitlines() if line.startswith("| 36 | 2 | lazy |")]
    assert len(row) == 1 and "task bank of 1 per env, its targets' features kept" in row[0], row


def test_worker_rss_joins_a_rows_note(vt: ModuleType) -> None:
    banked = vt.Result("subproc", 4, 64, "cpu", worker_rss_mb=812.4, note="task bank of 2 per env")
    banked.note_workers()
    assert banked.note == "task bank of 2 per env, 812 MB RSS per worker"
    plain = vt.Result("subproc", 4, 64, "cpu", worker_rss_mb=790.0)
    plain.note_workers()
    assert plain.note == "790 MB RSS per worker"
    unmeasured = vt.Result("dummy", 4, 64, "cpu", note="x")
    unmeasured.note_workers()
    assert unmeasured.note == "x"


def test_revision_names_the_commit_and_marks_uncommitted_changes(
    vt: ModuleType, tmp_path: Path
) -> None:
    import subprocess

    assert vt.revision(tmp_path) == str(tmp_path)  # not a checkout: its path
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert vt.revision(tmp_path) == head[:7]
    (tmp_path / "new.py").write_text("")  # untracked files are not counted (git_revision)
    assert vt.revision(tmp_path) == head[:7]
    (tmp_path / "a.py").write_text("x = 2\n")
    assert vt.revision(tmp_path) == f"{head[:7]} with uncommitted changes"
