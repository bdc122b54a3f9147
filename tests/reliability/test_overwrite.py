"""``--overwrite`` deletes only a folder that is a unigen-sb3 run, never anything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_support import QUICKSTART, sets
from rel_support import FAST

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.experiments.rundir import MARKER_NAME, RunDir, is_run_dir
from unigen_sb3.experiments.runner import remove_run_dir


def _train(out: Path, *extra: str) -> int:
    return main(["train", str(QUICKSTART), "--out", str(out), "--no-eval", *sets(FAST), *extra])


def test_a_folder_with_a_config_yaml_and_other_files_is_not_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "project"
    (out / "src").mkdir(parents=True)
    (out / "src" / "important.py").write_text("precious = True\n")
    (out / "config.yaml").write_text("seed: 1\n")
    assert _train(out, "--overwrite") == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "not a unigen-sb3 run directory" in err and "src" in err
    assert (out / "src" / "important.py").read_text() == "precious = True\n"
    assert not (out / MARKER_NAME).exists()


def test_a_symlinked_out_is_not_deleted_through(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep.txt").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(FileExistsError, match="symbolic link"):
        remove_run_dir(link)
    assert (real / "keep.txt").exists() and link.is_symlink()


def test_marked_and_pre_marker_runs_are_replaced(tmp_path: Path) -> None:
    marked = tmp_path / "marked"
    RunDir(marked).mark()
    (marked / "anything.txt").write_text("written by the user into their run")
    remove_run_dir(marked)
    assert not marked.exists()
    legacy = tmp_path / "legacy"  # a run written before the marker: only run files
    (legacy / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "meta.json", "model.zip", "eval.json"):
        (legacy / name).write_text("{}")
    assert is_run_dir(legacy) == (True, [])
    remove_run_dir(legacy)
    assert not legacy.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    remove_run_dir(empty)  # nothing to delete, nothing refused
    assert empty.exists()


def test_a_trained_run_is_marked_and_overwritable(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _train(out) == 0
    assert (out / MARKER_NAME).exists() and is_run_dir(out)[0]
    (out / "notes.txt").write_text("the marker makes the folder the run's")
    remove_run_dir(out)
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        assert _train(parent / "run") == EXIT_CONFIG_ERROR
    finally:
        parent.chmod(0o700)
    assert "Permission denied" in capsys.readouterr().err


def test_an_out_below_a_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert _train(tmp_path / "file" / "run") == EXIT_CONFIG_ERROR
    assert "Traceback" not in capsys.readouterr().err
