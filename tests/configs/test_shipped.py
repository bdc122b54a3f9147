"""Shipped experiment configs: resolved by name, listed and copied by ``unigen-sb3 configs``."""

from __future__ import annotations

from pathlib import Path

import pytest

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import load_config
from unigen_sb3.configs.shipped import (
    copy_shipped_config,
    resolve_config,
    shipped_config_path,
    shipped_configs,
)

REPO = Path(__file__).resolve().parents[2]
NAMES = [
    "ablation",
    "baseline_consistency",
    "baseline_edit",
    "baseline_edit_only",
    "baseline_generate_only",
    "baseline_quality",
    "baseline_raw_sum",
    "ppo_unified",
    "quickstart",
    "sac_unified",
    "sweep",
]


def test_configs_ship_inside_the_package_with_a_one_line_description() -> None:
    configs = shipped_configs()
    assert list(configs) == NAMES
    for name, line in configs.items():
        path = shipped_config_path(name)
        assert path.parent.name == "experiments" and "unigen_sb3" in path.parts
        assert line and not line.startswith("#") and len(line) <= 100, (name, line)
    # One source of truth: no copies left at the top of the repository.
    assert not list((REPO / "configs").glob("*.yaml"))


def test_a_name_resolves_to_the_shipped_file_and_an_existing_path_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config("quickstart") == shipped_config_path("quickstart")
    assert resolve_config("quickstart.yaml") == shipped_config_path("quickstart")
    assert load_config("quickstart").env.size == 48
    local = tmp_path / "quickstart"
    local.write_text("env: {size: 40}\n", "utf-8")
    assert resolve_config("quickstart") == Path("quickstart")
    assert load_config("quickstart").env.size == 40  # the file in the working directory wins


def test_an_unknown_name_or_a_missing_path_says_what_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    listing = r"'quikstart'.*shipped: ablation, baseline_consistency"
    with pytest.raises(FileNotFoundError, match=listing):
        resolve_config("quikstart")
    # The old repository path names the shipped config to use instead.
    with pytest.raises(FileNotFoundError, match=r"unigen-sb3 train quickstart"):
        resolve_config("configs/quickstart.yaml")
    with pytest.raises(FileNotFoundError, match="not a shipped config"):
        shipped_config_path("nope")


def test_copy_writes_an_editable_copy_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = copy_shipped_config("quickstart")
    assert path == Path("quickstart.yaml")
    assert path.read_text("utf-8") == shipped_config_path("quickstart").read_text("utf-8")
    with pytest.raises(FileExistsError, match="--force"):
        copy_shipped_config("quickstart")
    assert copy_shipped_config("quickstart", overwrite=True) == path
    folder = tmp_path / "mine"
    folder.mkdir()
    assert copy_shipped_config("sweep", folder) == folder / "sweep.yaml"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        copy_shipped_config("sweep", tmp_path / "missing" / "x.yaml")


def test_cli_configs_lists_copies_and_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["configs"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == NAMES
    assert main(["configs", "list"]) == 0
    assert main(["configs", "copy", "quickstart", "edit.yaml"]) == 0
    assert "unigen-sb3 train edit.yaml" in capsys.readouterr().out
    assert main(["configs", "copy", "quickstart", "edit.yaml"]) == EXIT_CONFIG_ERROR
    assert "--force" in capsys.readouterr().err
    assert main(["configs", "copy", "quickstart", "edit.yaml", "--force"]) == 0
    assert main(["configs", "copy", "nope"]) == EXIT_CONFIG_ERROR
    assert "shipped configs: ablation" in capsys.readouterr().err


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    from unigen_sb3 import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"unigen-sb3 {__version__}"


def test_cli_train_by_name_reports_an_unknown_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "quikstart", "--out", str(tmp_path / "r")])
    assert code == EXIT_CONFIG_ERROR
    assert "not a shipped config name" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_with_overwrite_is_trains_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "quickstart", "--resume", "--overwrite"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: unigen-sb3 train ")
    assert "not allowed with argument --resume" in err


def test_threads_flag_checks_its_value_and_becomes_the_config_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from unigen_sb3.cli import _overrides, build_parser

    args = build_parser().parse_args(["train", "quickstart", "--threads", "3", "--set", "seed=1"])
    assert _overrides(args) == ["seed=1", "training.torch_threads=3"]
    assert load_config("quickstart", _overrides(args)).training.torch_threads == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "quickstart", "--threads", "0"])
    assert "expected an integer >= 1, got 0" in capsys.readouterr().err
