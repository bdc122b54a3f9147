"""Progress lines (``ProgressLogCallback``) and torch threads of ``unigen-sb3 train``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from cli_support import QUICKSTART, TINY, sets
from stable_baselines3 import PPO

from unigen_sb3 import make_unigen_env
from unigen_sb3.callbacks import ProgressLogCallback
from unigen_sb3.callbacks.progress import format_duration
from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import load_config
from unigen_sb3.experiments.runner import apply_torch_threads


def test_format_duration() -> None:
    assert format_duration(83.2) == "1:23"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("nan")) == "?"


@pytest.mark.parametrize("every", [0, -3, 2.5, True, "8"])
def test_every_must_be_a_positive_integer(every: object) -> None:
    with pytest.raises(ValueError, match=r"every=.* must be an integer >= 1 or None"):
        ProgressLogCallback(every)  # type: ignore[arg-type]


def test_lines_every_n_timesteps_with_rate_eta_and_last_r_total() -> None:
    env = make_unigen_env(task="edit", size=36, horizon=4, seed=0)
    model = PPO("CnnPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0)
    stream = io.StringIO()
    cb = ProgressLogCallback(16, stream=stream, prefix="run")
    model.learn(64, callback=cb)
    lines = stream.getvalue().splitlines()
    assert lines == cb.lines
    assert [line.split(":")[1].split()[0] for line in lines[:-1]] == [
        "16/64",
        "32/64",
        "48/64",
        "64/64",
    ]
    assert all("steps/s" in line and "ETA" in line for line in lines[:-1])
    # Episodes of 4 steps ended: the unshaped R_total of the latest one is shown.
    assert "last episode R_total" in lines[-2]
    assert cb.last_episode_r_total is not None and 0.0 <= cb.last_episode_r_total <= 1.0
    assert lines[-1].startswith("run: trained 64 timesteps in ")


def test_train_prints_progress_lines_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["train", str(QUICKSTART), "--out", str(out), *sets(TINY)]) == 0
    stdout = capsys.readouterr().out  # captured: not a terminal
    lines = [line for line in stdout.splitlines() if line.startswith(f"{out}: ")]
    assert any("timesteps (" in line and "steps/s" in line for line in lines), stdout
    assert any(": trained 64 timesteps in " in line for line in lines), stdout
    silent = tmp_path / "silent"
    args = [*sets([*TINY, "training.progress_bar=false"]), "--no-eval"]
    assert main(["train", str(QUICKSTART), "--out", str(silent), *args]) == 0
    assert f"{silent}: " not in capsys.readouterr().out.replace(f"{silent}: 64 timesteps", "")


def test_an_existing_run_names_resume_and_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", str(QUICKSTART), "--out", str(out), *sets(TINY), "--no-eval"]
    assert main(args) == 0
    assert main(args) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err


def test_torch_threads_from_the_config_and_its_default() -> None:
    before = torch.get_num_threads()
    try:
        # null keeps torch's own setting; a number sets it.
        assert apply_torch_threads(load_config(None)) == before == torch.get_num_threads()
        assert apply_torch_threads(load_config(None, ["training.torch_threads=1"])) == 1
        assert torch.get_num_threads() == 1
        assert apply_torch_threads(load_config(None, ["training.torch_threads=2"])) == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value", ["0", "1.5", "many"])
def test_torch_threads_refuses_bad_values(value: str) -> None:
    from unigen_sb3.configs import ConfigError

    with pytest.raises(ConfigError, match=r"training\.torch_threads"):
        load_config(None, [f"training.torch_threads={value}"])
