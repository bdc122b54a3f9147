"""Every bad config input is exit 2 with a one-line message, before a run folder exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import QUICKSTART

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import ConfigError, load_config
from unigen_sb3.configs.loader import MAX_DEPTH

BOMB = """
algorithm:
  kwargs:
    a: &a [x, x, x, x, x, x, x, x, x]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]
"""

FILES = {
    "duplicate key": b"seed: 1\nseed: 2\n",
    "duplicate section": b"training: {n_envs: 1}\ntraining: {n_envs: 2}\n",
    "alias bomb": BOMB.encode(),
    "action_options alias": b"x: &o {bins: 3}\nenv: {action: multidiscrete, action_options: *o}\n",
    "binary": bytes(range(256)) * 4,
    "not utf-8": "seed: 1 # café\n".encode("latin-1"),
    "deep nesting": ("a: " + "[" * 200 + "]" * 200 + "\n").encode(),
}


def _exit_2(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()
    return err


@pytest.mark.parametrize("name", list(FILES))
def test_bad_config_files(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_bytes(FILES[name])
    out = tmp_path / "run"
    err = _exit_2(["train", str(cfg), "--out", str(out)], out, capsys)
    expected = {
        "duplicate key": "duplicate key 'seed'",
        "duplicate section": "duplicate key 'training'",
        "alias bomb": "aliases",
        "action_options alias": "aliases",
        "binary": "UTF-8",
        "not utf-8": "UTF-8",
        "deep nesting": "nested",
    }[name]
    assert expected in err


def test_a_folder_as_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert "is a folder" in _exit_2(["train", str(tmp_path), "--out", str(out)], out, capsys)


SETS = {
    "algorithm.kwargs={n_steps: -5}": "algorithm.kwargs.n_steps",
    "algorithm.kwargs={learning_rate: .nan}": "algorithm.kwargs.learning_rate",
    "algorithm.kwargs={gamma: 1.5}": "algorithm.kwargs.gamma",
    "algorithm.kwargs={batch_size: 1}": "batch_size > 1",
    "env.action_options={bins: 3}": "env.action_options",
    "evaluation.seed=-5": "evaluation.seed",
    "reward.shaping.scale=1.0e+308": "overflows float32",
    "env.size=100000": "env.size",
    "training.n_envs=100000": "training.n_envs",
    "training.total_timesteps=100000000000000": "training.total_timesteps",
    "algorithm.kwargs={a: &x [1, 2], b: *x}": "aliases",
    "a" + ".b" * 2000 + "=1": f"more than {MAX_DEPTH} levels",
    "seed=" + "[" * 100 + "]" * 100: "nested",
}


@pytest.mark.parametrize("override", list(SETS))
def test_bad_overrides(override: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    err = _exit_2(["train", str(QUICKSTART), "--out", str(out), "--set", override], out, capsys)
    assert SETS[override] in err


@pytest.mark.parametrize("bound", [".nan", ".inf", "-.inf"])
def test_non_finite_sweep_bounds(bound: str) -> None:
    with pytest.raises(ConfigError, match="finite"):
        load_config(
            QUICKSTART,
            [f"sweep.search_space={{learning_rate: {{type: float, low: {bound}, high: 1}}}}"],
        )


def test_a_malformed_meta_json_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "meta.json").write_text('{"status": ')
    assert main(["eval", str(run)]) == EXIT_CONFIG_ERROR
    assert "meta.json is not valid JSON" in capsys.readouterr().err
    (run / "meta.json").write_text(json.dumps([1, 2]))
    assert main(["eval", str(run)]) == EXIT_CONFIG_ERROR


def test_saved_configs_load_back(tmp_path: Path) -> None:
    """A config the package writes never holds what the strict loader refuses."""
    from unigen_sb3.configs.loader import save_config

    cfg = load_config(QUICKSTART)
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
