"""Config schema, defaults merge, overrides, validation errors, algorithm checks, seeding."""

from __future__ import annotations

import dataclasses
import random
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    load_defaults,
    merge_defaults,
    parse_override,
    save_config,
)
from unigen_sb3.configs.shipped import shipped_config_path, shipped_configs
from unigen_sb3.data.prompts import SPLITS
from unigen_sb3.envs.env import DEFAULT_HORIZON, DEFAULT_SIZE
from unigen_sb3.envs.tasks import REFERENCE_MODES, TASK_KINDS
from unigen_sb3.experiments.algorithms import default_policy, get_algorithm_class
from unigen_sb3.experiments.runner import check_experiment
from unigen_sb3.experiments.seeding import seed_everything, worker_seed
from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.rewards.normalizers import NORMALIZATIONS
from unigen_sb3.rewards.perceptual import PERCEPTUAL_BACKENDS
from unigen_sb3.rewards.unifier import DEFAULT_WEIGHTS
from unigen_sb3.spec import OBS_MODES, VEC_ENV_KINDS
from unigen_sb3.utils import resolve_device
from unigen_sb3.wrappers.actions import ACTION_ENCODINGS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [shipped_config_path(name) for name in shipped_configs()]


def test_defaults_validate_and_derive_weights_from_the_reward_library() -> None:
    cfg = load_config()
    assert cfg.reward.weights == DEFAULT_WEIGHTS
    assert (cfg.env.size, cfg.env.horizon) == (DEFAULT_SIZE, DEFAULT_HORIZON)
    assert cfg.algorithm.name == "PPO" and cfg.wandb.enabled is False


def test_merge_fills_missing_keys_and_never_changes_what_the_user_wrote() -> None:
    defaults = load_defaults()
    user = {"training": {"total_timesteps": 123}, "env": {"task": "edit"}, "ablation": {"drop": []}}
    snapshot = yaml.safe_dump(user)
    merged = merge_defaults(defaults, user)
    assert yaml.safe_dump(user) == snapshot  # input untouched
    assert merged["training"]["total_timesteps"] == 123
    assert merged["training"]["n_envs"] == defaults["training"]["n_envs"]
    assert merged["env"]["task"] == "edit" and merged["env"]["size"] == defaults["env"]["size"]
    assert merged["ablation"]["drop"] == []  # lists replace, never merge
    assert merged["ablation"]["n_seeds"] == defaults["ablation"]["n_seeds"]


def test_weights_are_replaced_whole_and_a_partial_set_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"reward\.weights.*missing \['consistency'\]"):
        load_config({"reward": {"weights": {"quality": 0.5, "edit": 0.5}}})
    cfg = load_config({"reward": {"weights": {"quality": 0.5, "edit": 0.5, "consistency": 0.0}}})
    assert cfg.reward.weights == {"quality": 0.5, "edit": 0.5, "consistency": 0.0}


def test_typo_key_is_named_with_its_dotted_path() -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"training": {"total_timestep": 100}})
    assert err.value.path == "training.total_timestep"
    assert "total_timesteps" in str(err.value)  # the accepted keys are listed
    with pytest.raises(ConfigError, match=r"^envv: unknown key"):
        load_config({"envv": {}})


@pytest.mark.parametrize(
    ("override", "path", "fragment"),
    [
        ("training.total_timesteps=1e4", "training.total_timesteps", "write 10000"),
        ("training.n_envs=true", "training.n_envs", "expected an integer"),
        ("env.action=boxx", "env.action", "'multidiscrete'"),
        ("env.size=20", "env.size", "out of range"),
        ("env.edit_fraction=abc", "env.edit_fraction", "expected a number"),
        ("evaluation.n_episodes=1", "evaluation.n_episodes", "out of range"),
        ("sweep.search_space.lr={type: float, low: 1, high: 0}", "sweep.search_space.lr", "below"),
    ],
)
def test_wrong_types_name_the_key_and_what_is_accepted(
    override: str, path: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert err.value.path == path
    assert fragment in str(err.value)


CHOICE_CONSTANTS: dict[str, tuple[str, ...]] = {
    "env.task": TASK_KINDS,
    "env.action": ACTION_ENCODINGS,
    "env.obs": OBS_MODES,
    "env.perceptual_backend": PERCEPTUAL_BACKENDS,
    "env.prompt_split": SPLITS,
    "env.reference": REFERENCE_MODES,
    "reward.normalization": NORMALIZATIONS,
    "reward.shaping.potential": COMPONENT_NAMES,
    "training.vec_env_kind": VEC_ENV_KINDS,
    "evaluation.prompt_split": SPLITS,
    "ablation.drop": COMPONENT_NAMES,
}


def _choice_fields(cls: type, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Dotted path -> accepted values of every ``choices`` field under dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    found: dict[str, tuple[str, ...]] = {}
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            found.update(_choice_fields(hints[f.name], f"{path}."))
        elif "choices" in f.metadata:
            found[path] = f.metadata["choices"]
    return found


def test_choice_fields_accept_exactly_their_defining_constants() -> None:
    # Each enumeration of the schema is read from the constant that defines it, so a value
    # added there is accepted by the config without a second edit.
    assert _choice_fields(ExperimentConfig) == CHOICE_CONSTANTS
    for path, values in CHOICE_CONSTANTS.items():
        as_list = path == "ablation.drop"
        for value in values:
            cfg = load_config(None, [f"{path}={[value] if as_list else value}"])
            node: Any = config_to_dict(cfg)
            for key in path.split("."):
                node = node[key]
            assert node == ([value] if as_list else value)
        with pytest.raises(ConfigError) as err:
            load_config(None, [f"{path}={['nope'] if as_list else 'nope'}"])
        assert err.value.path == (f"{path}[0]" if as_list else path)
        assert f"expected one of {list(values)}, got 'nope'" in str(err.value)


def test_weights_summing_to_2_7_are_refused() -> None:
    bad = {"reward": {"weights": {"quality": 1.0, "edit": 1.0, "consistency": 0.7}}}
    with pytest.raises(ConfigError, match=r"reward\.weights.*sum to 2\.7"):
        load_config(bad)
    grid = {"ablation": {"weight_grid": [{"quality": 0.9, "edit": 0.9, "consistency": 0.9}]}}
    with pytest.raises(ConfigError, match=r"ablation\.weight_grid\[0\]"):
        load_config(grid)
    cfg = load_config({**bad, "reward": {**bad["reward"], "normalize_weights": True}})
    assert cfg.reward.weights["quality"] == 1.0  # kept as written
    assert cfg.reward.effective_weights() == pytest.approx(
        {"quality": 1 / 2.7, "edit": 1 / 2.7, "consistency": 0.7 / 2.7}, abs=1e-12
    )


def test_normalize_weights_hint_is_given_only_for_reward_weights() -> None:
    bad = {"quality": 0.9, "edit": 0.9, "consistency": 0.9}
    with pytest.raises(ConfigError) as err:
        load_config({"reward": {"weights": bad}})
    assert err.value.path == "reward.weights"
    assert "or set reward.normalize_weights to rescale them" in str(err.value)
    for data, path in [
        ({"evaluation": {"weights": bad}}, "evaluation.weights"),
        ({"ablation": {"weight_grid": [bad]}}, "ablation.weight_grid[0]"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_config(data)
        assert err.value.path == path and "sum to 2.7" in str(err.value)
        assert "normalize" not in str(err.value)  # these weights are never rescaled


DEVICE_SPECS = ["auto", "cpu", "cuda", "cuda:0", "cuda:3", "cpu:0", "mps", "gpu", "GPU"]
DEVICE_SPECS += ["CUDA", "cuda:-1", "cuda:", "cuda:1.0", "cuda:01", " cpu", ""]


@pytest.mark.parametrize("cuda", [False, True], ids=["no_cuda", "cuda"])
@pytest.mark.parametrize("spec", DEVICE_SPECS)
def test_env_device_accepts_exactly_what_resolve_device_accepts(
    spec: str, cuda: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    try:
        resolve_device(spec)
    except ValueError:
        with pytest.raises(ConfigError) as err:
            load_config(None, [f"env.device={spec!r}"])
        assert err.value.path == "env.device" and repr(spec) in str(err.value)
        assert "'auto'" in str(err.value) and "'cpu'" in str(err.value)
    else:
        assert load_config(None, [f"env.device={spec!r}"]).env.device == spec


@pytest.mark.parametrize(("spec", "ok"), [("cuda:1", True), ("mps", True), ("gpu", False)])
def test_training_device_is_a_torch_device_and_cuda_may_be_absent(
    spec: str, ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # SB3 falls back to the CPU
    if ok:
        assert load_config(None, [f"training.device={spec}"]).training.device == spec
        return
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"training.device={spec}"])
    assert err.value.path == "training.device"
    assert "got 'gpu' (str)" in str(err.value) and "'cuda:N' (N >= 0)" in str(err.value)


@pytest.mark.parametrize("override", ["training.device=gpu", "env.device=gpu"])
def test_cli_refuses_a_bad_device_with_exit_2_before_writing(
    override: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", str(shipped_config_path("quickstart")), "--out", str(out)]
    assert main([*args, "--set", override]) == EXIT_CONFIG_ERROR
    assert not out.exists()  # no run directory (and no meta.json stuck at "running")
    err = capsys.readouterr().err
    assert f"{override.split('=')[0]}: expected 'auto'" in err


def test_overrides_parse_yaml_values_and_apply_in_order() -> None:
    assert parse_override("a.b=7") == ("a.b", 7)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("x.y=null") == ("x.y", None)
    assert parse_override("k=a=b") == ("k", "a=b")
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        parse_override("novalue")
    with pytest.raises(ConfigError, match=r"^seed: .*not a mapping"):
        apply_overrides({"seed": 1}, ["seed.x=2"])
    cfg = load_config(
        {"seed": 3},
        [
            "seed=7",
            "algorithm.kwargs.n_steps=32",
            "reward.weights.edit=0.3",
            "reward.weights.consistency=0.3",
        ],
    )
    assert cfg.seed == 7 and cfg.algorithm.kwargs == {"n_steps": 32}
    assert cfg.reward.weights == {"quality": 0.4, "edit": 0.3, "consistency": 0.3}


def test_saved_config_loads_back_equal(tmp_path: Path) -> None:
    cfg = load_config({"seed": 11, "env": {"task": "edit"}}, ["algorithm.kwargs.gamma=0.9"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert config_to_dict(again) == config_to_dict(cfg)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    cfg = load_config(path)
    check_experiment(cfg)


def test_the_five_configs_ship() -> None:
    names = {p.name for p in SHIPPED}
    expected = {
        "quickstart.yaml",
        "ppo_unified.yaml",
        "sac_unified.yaml",
        "ablation.yaml",
        "sweep.yaml",
    }
    assert expected <= names


def test_algorithm_checks_run_before_training() -> None:
    with pytest.raises(ConfigError, match=r"algorithm\.name.*unknown algorithm 'PP0'"):
        check_experiment(load_config(None, ["algorithm.name=PP0"]))
    with pytest.raises(ConfigError) as err:
        check_experiment(load_config(None, ["algorithm.kwargs.n_stepz=5"]))
    assert err.value.path == "algorithm.kwargs.n_stepz" and "n_steps" in str(err.value)
    with pytest.raises(ConfigError, match=r"env\.action.*DQN"):
        check_experiment(load_config(None, ["algorithm.name=DQN"]))
    with pytest.raises(ConfigError, match=r"algorithm\.kwargs\.seed"):
        check_experiment(load_config(None, ["algorithm.kwargs.seed=3"]))
    shaped = ["reward.shaping.enabled=true", "reward.shaping.gamma=0.9"]
    with pytest.raises(ConfigError, match=r"reward\.shaping\.gamma.*0\.99") as err:
        check_experiment(load_config(None, shaped))  # PPO's default gamma is 0.99
    # The advice names the config key, not the Python class a config user never writes.
    assert "set reward.shaping.gamma to 0.99, or to null" in err.value.message
    assert "PotentialShaping(" not in str(err.value)
    check_experiment(load_config(None, [*shaped, "algorithm.kwargs.gamma=0.9"]))


@pytest.mark.parametrize(
    ("name", "obs", "policy"),
    [
        ("PPO", "image", "CnnPolicy"),
        ("SAC", "dict", "MultiInputPolicy"),
        ("RecurrentPPO", "image", "CnnLstmPolicy"),
        ("MaskablePPO", "dict", "MultiInputPolicy"),
        ("ARS", "image", "MlpPolicy"),
        ("TQC", "image", "CnnPolicy"),
    ],
)
def test_default_policy_follows_the_observation_mode(name: str, obs: str, policy: str) -> None:
    assert default_policy(get_algorithm_class(name), obs) == policy


def test_seed_everything_repeats_every_generator() -> None:
    def draw() -> tuple[float, float, float]:
        legacy = float(np.random.rand())  # noqa: NPY002 (the global RNG is what is seeded)
        return random.random(), legacy, float(torch.rand(()))

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first
    assert worker_seed(7, 3) == 10
    with pytest.raises(ValueError, match="seed must be"):
        seed_everything(-1)
