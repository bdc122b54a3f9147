"""UniGenSpec, the composition root and the layer rule: one spec, one stack order, one path."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch
import torchvision
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

import unigen_sb3
from unigen_sb3 import UniGenEvalCallback, UniGenSpec, make_unigen_env, spec_of
from unigen_sb3.configs import load_config
from unigen_sb3.envs import env as env_module
from unigen_sb3.envs.env import UniGenEnv
from unigen_sb3.envs.policies import NoOpPolicy
from unigen_sb3.evaluation import evaluate_unigen
from unigen_sb3.experiments.runner import evaluate_model, make_shaping, make_train_vec_env
from unigen_sb3.rewards.perceptual import PerceptualDistance, default_lpips_backbone_path
from unigen_sb3.rewards.shaping import PotentialShaping
from unigen_sb3.spec import SETTING_NAMES
from unigen_sb3.wrappers.actions import HybridToDiscreteWrapper
from unigen_sb3.wrappers.observation import ImageObsWrapper
from unigen_sb3.wrappers.reward import UnifiedRewardWrapper

SIZE = 36
PACKAGE = Path(unigen_sb3.__file__).parent

# --------------------------------------------------------------------------- the spec


def test_defaults_are_validated_and_recorded_resolved() -> None:
    spec = UniGenSpec(size=SIZE)
    assert spec.perceptual_backend in ("stlpips", "lpips")  # never "auto"
    assert spec.device in ("cpu", "cuda")  # never "auto"
    assert dict(spec.weights) == {"quality": 0.4, "edit": 0.4, "consistency": 0.2}
    assert spec.metric_dtype == "float32" and spec.prompt_split == "train"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.size = 48  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.weights["edit"] = 1.0  # type: ignore[index]
    # A changed copy is validated like a new spec.
    assert spec.replace(horizon=5).horizon == 5 and spec.horizon == 12
    with pytest.raises(ValueError, match="horizon=0"):
        spec.replace(horizon=0)
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['horizn'\]"):
        spec.replace(horizn=5)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"task": "paint"}, ValueError, "task='paint' is not one of"),
        ({"size": 16}, ValueError, "size=16 must be an int >= 36"),
        ({"size": 40.0}, ValueError, "size=40.0 must be an int"),
        ({"horizon": 0}, ValueError, "horizon=0 must be an int >= 1"),
        ({"action": "tuple"}, ValueError, "action='tuple' is not one of"),
        ({"action_options": {"bins": 5}}, ValueError, "bins"),
        ({"action_options": "bins=5"}, TypeError, "action_options must be a mapping"),
        ({"obs": "rgb"}, ValueError, "obs='rgb' is not one of"),
        ({"weights": {"quality": 1.0}}, ValueError, "weights must name exactly"),
        ({"weights": {"quality": 0.9, "edit": 0.9, "consistency": 0.0}}, ValueError, "sum"),
        ({"normalization": "minmax"}, ValueError, "normalization='minmax' is not one of"),
        ({"shaping": "quality"}, TypeError, "shaping must be a PotentialShaping"),
        ({"perceptual_backend": "vgg"}, ValueError, "perceptual_backend='vgg' is not one of"),
        ({"metric_dtype": "int8"}, ValueError, "metric_dtype='int8' is not one of"),
        ({"prompt_split": "test"}, ValueError, "prompt_split='test' is not one of"),
        ({"edit_fraction": 1.5}, ValueError, r"edit_fraction=1.5 must be a number in \[0, 1\]"),
        ({"edit_fraction": True}, ValueError, "edit_fraction=True"),
        ({"reference": "shown"}, ValueError, "reference='shown' is not one of"),
        ({"render_mode": "human"}, ValueError, "render_mode='human'"),
    ],
)
def test_bad_settings_are_refused_once_with_the_value_and_what_is_accepted(
    changes: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        UniGenSpec(**{"size": SIZE, **changes})


def test_keyword_api_builds_the_same_spec() -> None:
    spec = UniGenSpec.from_kwargs(
        "edit", "multidiscrete", "dict", 0.5, 0.5, 0.0, size=SIZE, action_options={"bins": 5}
    )
    assert spec == UniGenSpec(
        task="edit",
        action="multidiscrete",
        obs="dict",
        weights={"quality": 0.5, "edit": 0.5, "consistency": 0.0},
        size=SIZE,
        action_options={"bins": 5},
    )
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['colour'\]; accepted: .*size"):
        UniGenSpec.from_kwargs(colour="red")
    # Plain values for reports; a spec made from them is equal.
    plain = spec.to_dict()
    assert set(plain) == set(SETTING_NAMES) and plain["weights"]["edit"] == 0.5
    assert UniGenSpec(**plain) == spec


def test_from_config_training_and_evaluation_variants() -> None:
    config = load_config(
        None,
        [
            "reward.weights={quality: 0.6, edit: 0.2, consistency: 0.2}",
            "reward.normalization=running",
            "reward.shaping.enabled=true",
            "evaluation.weights={quality: 0.2, edit: 0.6, consistency: 0.2}",
            "evaluation.prompt_split=heldout",
            f"env.size={SIZE}",
        ],
    )
    shaping = make_shaping(config, 0.99)
    train = UniGenSpec.from_config(config, shaping=shaping)
    assert train.weights["quality"] == 0.6 and train.normalization == "running"
    assert train.shaping is shaping and train.prompt_split == config.env.prompt_split
    evaluation = UniGenSpec.from_config(config, evaluation=True, shaping=shaping)
    # One yardstick for every run: evaluation weights, bounded, unshaped, held-out prompts.
    assert evaluation.weights["edit"] == 0.6 and evaluation.normalization == "bounded"
    assert evaluation.shaping is None and evaluation.prompt_split == "heldout"
    assert (evaluation.size, evaluation.task, evaluation.action) == (
        train.size,
        train.task,
        train.action,
    )


# --------------------------------------------------------------------------- the root


def test_one_stack_order_and_every_stack_exposes_its_spec() -> None:
    spec = UniGenSpec(task="edit", size=SIZE, action="discrete")
    env = make_unigen_env(spec, seed=0)
    # raw -> action codec -> observation -> reward unification
    assert isinstance(env, UnifiedRewardWrapper)
    assert isinstance(env.env, ImageObsWrapper)
    assert isinstance(env.env.env, HybridToDiscreteWrapper)
    assert isinstance(env.unwrapped, UniGenEnv)
    assert spec_of(env) is spec
    # MaskablePPO's lookup by name reaches the action wrapper's masks (its layout).
    assert env.get_wrapper_attr("action_masks")().shape == (env.action_space.n,)
    assert make_unigen_env(spec=spec).get_wrapper_attr("spec_unigen") is spec
    keywords = make_unigen_env("edit", "discrete", size=SIZE)
    assert spec_of(keywords) == spec
    with pytest.raises(TypeError, match="either a UniGenSpec or the settings"):
        make_unigen_env(spec, size=48)
    registered = gym.make("UniGen/Edit-v0", size=SIZE)
    assert spec_of(registered).task == "edit" and spec_of(registered).size == SIZE
    with pytest.raises(ValueError, match="carries no UniGenSpec"):
        spec_of(gym.make("CartPole-v1"))


def _imports(path: Path) -> set[str]:
    """Every module a source file imports, at any depth (lazy imports in functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_lower_layers_never_import_the_upper_ones() -> None:
    # Every module imports (no cycle hides behind a lazy import).
    modules = [
        info.name
        for info in pkgutil.walk_packages(unigen_sb3.__path__, prefix="unigen_sb3.")
        if ".__main__" not in info.name
    ]
    for name in modules:
        importlib.import_module(name)
    upper = (
        "unigen_sb3.wrappers",
        "unigen_sb3.callbacks",
        "unigen_sb3.experiments",
        "unigen_sb3.make",
        "unigen_sb3.spec",
        "unigen_sb3.evaluation",
        "unigen_sb3.policies",
        "unigen_sb3.cli",
    )
    lower = [p for layer in ("envs", "rewards", "data") for p in (PACKAGE / layer).rglob("*.py")]
    assert len(lower) > 20
    offending = {
        str(path.relative_to(PACKAGE)): sorted(
            n for n in _imports(path) if n == "unigen_sb3" or n.startswith(upper)
        )
        for path in lower
    }
    assert {k: v for k, v in offending.items() if v} == {}


# --------------------------------------------------------------------------- one backend


def test_a_configured_backend_reaches_training_evaluation_and_the_eval_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A non-default backend: lpips, with a local AlexNet trunk file (random values: no
    # network here) where the backend looks for it.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    trunk = default_lpips_backbone_path()
    trunk.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), trunk)
    loads: list[str] = []

    class CountingDistance(PerceptualDistance):
        def __init__(self, backend: str = "auto", **kwargs: Any) -> None:
            loads.append(backend)
            super().__init__(backend, **kwargs)

    monkeypatch.setattr(env_module, "PerceptualDistance", CountingDistance)
    env_module._perceptual.cache_clear()
    env_module._reward_computer.cache_clear()
    try:
        config = load_config(
            None,
            [
                "env.perceptual_backend=lpips",
                f"env.size={SIZE}",
                "env.horizon=3",
                "env.task=edit",
                "env.device=cpu",
                "training.n_envs=2",
                "training.device=cpu",
                "evaluation.n_episodes=2",
            ],
        )
        venv = make_train_vec_env(config)
        assert spec_of(venv).perceptual_backend == "lpips"
        assert venv.get_attr("unwrapped", [0])[0].rewards.backend == "lpips"
        model = PPO("CnnPolicy", venv, n_steps=8, batch_size=8, seed=0, device="cpu")
        model.set_logger(configure(None, []))
        callback = UniGenEvalCallback(eval_freq=1, n_episodes=2)
        callback.init_callback(model)
        assert callback.evaluate()["backend"] == "lpips"
        assert evaluate_model(model, config)["backend"] == "lpips"
        # "auto" is resolved once, to the same backend: no second network.
        auto = UniGenSpec(perceptual_backend="auto", size=SIZE, device="cpu")
        assert auto.perceptual_backend == "lpips"
        assert evaluate_unigen(NoOpPolicy(), auto, 2, 0)["backend"] == "lpips"
        assert make_unigen_env(auto).unwrapped.rewards.backend == "lpips"  # type: ignore[attr-defined]
        assert loads == ["lpips"]  # one network per process for one backend
        venv.close()
    finally:
        env_module._perceptual.cache_clear()
        env_module._reward_computer.cache_clear()


def test_shaping_and_weights_travel_in_the_spec() -> None:
    shaping = PotentialShaping(0.99, potential="quality")
    env = make_unigen_env(
        "generate", w_quality=1.0, w_edit=0.0, w_consistency=0.0, shaping=shaping, size=SIZE
    )
    spec = spec_of(env)
    assert spec.shaping is shaping and spec.weights["quality"] == 1.0
    assert env.unwrapped.rewards.backend == spec.perceptual_backend  # type: ignore[attr-defined]
