"""The algorithm is built on a stand-in env of the training stack's spaces before a run
folder is written: whatever its constructor refuses is exit 2, not a failed run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from cli_support import QUICKSTART, TINY, sets

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import ConfigError, load_config
from unigen_sb3.experiments.runner import check_construction, check_experiment
from unigen_sb3.make import build_env, stack_spaces
from unigen_sb3.spec import UniGenSpec

BOX = ["env.action=box", "algorithm.kwargs={}"]

# Values the fixed kwargs checks do not cover: each is refused by the constructor only.
REFUSED = {
    "net_arch not a list": ["algorithm.kwargs={policy_kwargs: {net_arch: 5}}"],
    "unknown policy kwarg": ["algorithm.kwargs={policy_kwargs: {foo: 1}}"],
    "gSDE on discrete actions": ["algorithm.kwargs={use_sde: true}"],
    "SAC train_freq unit": [
        *BOX,
        "algorithm.name=SAC",
        "algorithm.kwargs={train_freq: [1, bogus]}",
    ],
    "SAC ent_coef": [*BOX, "algorithm.name=SAC", "algorithm.kwargs={ent_coef: wrong}"],
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_kwarg_the_constructor_refuses_is_exit_2_before_the_run_folder(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", str(QUICKSTART), "--out", str(out), *sets([*TINY, *REFUSED[case]])]
    assert main(args) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "refuses these kwargs" in err and "algorithm.kwargs" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()  # no run folder, no config.yaml


def test_a_sweep_choice_the_constructor_refuses_is_exit_2_before_the_sweep_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    space = "sweep.search_space={use_sde: {type: categorical, choices: [false, true]}}"
    args = ["sweep", str(QUICKSTART), "--out", str(out), *sets([*TINY, space])]
    assert main(args) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "sweep.search_space.use_sde" in err and "refuses these kwargs" in err, err
    assert not out.exists()


def test_the_users_buffer_size_is_still_checked() -> None:
    config = load_config(QUICKSTART, [*TINY, *BOX, "algorithm.name=SAC"])
    check_experiment(config)  # built with a 1-transition buffer, whatever is configured
    with pytest.raises(ConfigError, match="buffer_size"):
        check_experiment(
            load_config(
                QUICKSTART, [*TINY, *BOX, "algorithm.name=SAC", "algorithm.kwargs={buffer_size: 0}"]
            )
        )


def test_the_check_is_fast_and_leaves_torch_as_it_was() -> None:
    config = load_config(QUICKSTART, ["env.size=64", "training.n_envs=4"])
    cls, policy = check_experiment(config, construct=False)
    check_construction(config, cls, policy)  # first call: lazy imports
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        check_construction(config, cls, policy)
        best = min(best, time.perf_counter() - start)
    assert best < 0.5, f"the construction check took {best:.3f} s"
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["env.obs=dict"],
        ["env.reference=observed", "env.action=box"],
        ["env.action=multidiscrete", "env.action_options={bins: 5}"],
    ],
    ids=["image-discrete", "dict", "observed-box", "multidiscrete"],
)
def test_stack_spaces_are_the_built_stacks(overrides: list[str]) -> None:
    spec = UniGenSpec.from_config(load_config(QUICKSTART, [*TINY, *overrides]))
    env = build_env(spec)
    try:
        assert stack_spaces(spec) == (env.observation_space, env.action_space)
    finally:
        env.close()
