"""Warm start (behaviour cloning + critic warm-up), early stopping on validation tasks, and the
ablation's named variants: what the evidence suite (configs/evidence/) trains with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_support import QUICKSTART, TINY

from unigen_sb3.callbacks.evaluation import UniGenEvalCallback
from unigen_sb3.configs import load_config
from unigen_sb3.configs.loader import save_config
from unigen_sb3.configs.schema import ConfigError, config_to_dict
from unigen_sb3.experiments.ablation import (
    _variant_config,
    ablation_variants,
    variant_overrides,
)
from unigen_sb3.experiments.executors import RunTask, run_task
from unigen_sb3.experiments.rundir import RunDir
from unigen_sb3.experiments.runner import (
    VALIDATION_SEED_OFFSET,
    _package_callbacks,
    build_model,
    check_experiment,
    eval_seed,
    make_train_vec_env,
    train,
)
from unigen_sb3.experiments.warm_start import (
    WARM_START_REPORT,
    clone_demonstrations,
    cloned_policy_key,
    demo_seed,
    warm_up_critic,
)

WARM = [
    *TINY,
    "training.checkpoint_freq=0",
    "training.torch_threads=1",
    "training.warm_start.demos=6",
    "training.warm_start.bc_epochs=2",
]


def _model(overrides: list[str]) -> Any:
    config = load_config(QUICKSTART, overrides)
    env = make_train_vec_env(config)
    return config, build_model(config, env), env


def _state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def test_cloning_changes_the_policy_and_the_cache_gives_the_same_bytes(tmp_path: Path) -> None:
    config, fresh, env = _model(WARM)
    before = _state(fresh)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    info = clone_demonstrations(fresh, config, tmp_path / "a", cache=tmp_path / "cache")
    assert info["cached"] is False and info["demos"] == 6 and info["demo_seed"] == demo_seed(config)
    cloned = _state(fresh)
    assert any(not torch.equal(before[k], cloned[k]) for k in before), "cloning changed nothing"
    env.close()
    # Another reward, same stack and seed: the same cloning, read from the cache...
    other = [*WARM, "reward.weights={quality: 0.2, edit: 0.6, consistency: 0.2}"]
    config_b, model_b, env_b = _model(other)
    assert cloned_policy_key(config_b, 1) == cloned_policy_key(config, 1)
    assert clone_demonstrations(model_b, config_b, tmp_path / "b", cache=tmp_path / "cache")[
        "cached"
    ]
    env_b.close()
    # ... whose bytes are what cloning again without the cache gives.
    config_c, model_c, env_c = _model(other)
    assert not clone_demonstrations(model_c, config_c, tmp_path / "c", cache=None)["cached"]
    env_c.close()
    for key in cloned:
        assert torch.equal(_state(model_b)[key], cloned[key]), key
        assert torch.equal(_state(model_c)[key], cloned[key]), key
    report = json.loads((tmp_path / "b" / WARM_START_REPORT).read_text())
    assert report["cached"] is True and report["best_epoch"] >= 1
    # Another seed is another cloning, on other demonstration tasks.
    seed_1 = load_config(QUICKSTART, [*WARM, "seed=1"])
    assert cloned_policy_key(seed_1, 1) != cloned_policy_key(config, 1)
    assert demo_seed(seed_1) != demo_seed(config)


def test_critic_warm_up_trains_the_value_head_only() -> None:
    _config, model, env = _model(WARM)
    before = _state(model)
    optimizer = model.policy.optimizer
    warm_up_critic(model, 64, 1e-3)
    after = _state(model)
    value_keys = {k for k in before if k.startswith("value_net.")}
    assert value_keys
    for key in before:
        if key in value_keys:
            continue
        assert torch.equal(before[key], after[key]), f"{key} changed during the critic warm-up"
    assert any(not torch.equal(before[k], after[k]) for k in value_keys)
    assert model.num_timesteps == 64
    assert model.policy.optimizer is optimizer  # the full optimizer is back
    env.close()


def test_train_with_warm_start_counts_the_warm_up_and_writes_its_report(tmp_path: Path) -> None:
    config = load_config(
        QUICKSTART, [*WARM, "training.warm_start.critic_warmup=32", "training.total_timesteps=96"]
    )
    result = train(config, tmp_path / "run")
    assert result.num_timesteps == 96
    report = json.loads((tmp_path / "run" / WARM_START_REPORT).read_text())
    assert report["demos"] == 6 and report["cached"] is False
    assert (tmp_path / "run" / "eval.json").is_file()


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        (
            [
                "algorithm.name=SAC",
                "algorithm.kwargs={}",
                "env.action=box",
                "training.warm_start.demos=4",
            ],
            "training.warm_start.demos",
            "PPO or A2C",
        ),
        (["training.warm_start.critic_warmup=64"], "training.warm_start.critic_warmup", "demos"),
        (["callbacks.early_stop_patience=2"], "callbacks.early_stop_patience", "callbacks.eval"),
    ],
)
def test_warm_start_and_early_stopping_settings_that_cannot_work_are_refused(
    overrides: list[str], path: str, words: str
) -> None:
    config = load_config(QUICKSTART, [*TINY, *overrides])
    with pytest.raises(ConfigError) as info:
        check_experiment(config)
    assert info.value.path == path
    assert words in info.value.message


def test_early_stopping_keeps_the_best_policy_and_evaluates_on_validation_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = [
        *TINY,
        "training.total_timesteps=256",
        "training.checkpoint_freq=0",
        "callbacks.eval=true",
        "callbacks.eval_freq=32",
        "callbacks.eval_episodes=2",
        "callbacks.early_stop_patience=2",
    ]
    config = load_config(QUICKSTART, overrides)
    callbacks = _package_callbacks(config, RunDir(tmp_path / "probe"))
    (evaluator,) = [c for c in callbacks if isinstance(c, UniGenEvalCallback)]
    assert evaluator.seed == eval_seed(config) + VALIDATION_SEED_OFFSET
    plain = load_config(QUICKSTART, [*overrides[:-1]])
    (plain_evaluator,) = [
        c
        for c in _package_callbacks(plain, RunDir(tmp_path / "probe2"))
        if isinstance(c, UniGenEvalCallback)
    ]
    assert plain_evaluator.seed == eval_seed(plain)

    # Scores: the starting policy is best, the next two are worse -> stop after them.
    scores = iter([0.9, 0.1, 0.2, 0.3, 0.4, 0.5])
    seeds: list[int] = []

    def fake_evaluate(model: Any, env: Any, n: int, seed: int, **kwargs: Any) -> dict[str, Any]:
        seeds.append(seed)
        return {"schema": 1, "metrics": {"reward_total": {"mean": next(scores), "std": 0.0}}}

    monkeypatch.setattr("unigen_sb3.callbacks.evaluation.evaluate_unigen", fake_evaluate)
    monkeypatch.setattr("unigen_sb3.callbacks.evaluation.log_report", lambda *a, **k: None)
    result = train(config, tmp_path / "run", evaluate=False)
    history = json.loads((tmp_path / "run" / "eval_history.json").read_text())
    assert [h[1] for h in history["history"]] == [0.9, 0.1, 0.2]
    assert history["best"] == {"timesteps": 0, "reward_total": 0.9}
    assert history["stopped_early"] is True
    assert result.num_timesteps == 64 < config.training.total_timesteps
    assert set(seeds) == {eval_seed(config) + VALIDATION_SEED_OFFSET}
    # The saved policy is the starting one (the best evaluation), not the trained one.
    env = make_train_vec_env(config)
    initial = build_model(config, env).policy.state_dict()
    env.close()
    saved = type(result.model).load(tmp_path / "run" / "model.zip").policy.state_dict()
    for key, value in initial.items():
        assert torch.equal(saved[key], value), key


def test_early_stop_patience_is_checked_by_the_callback() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="early_stop_patience"):
            UniGenEvalCallback({"task": "edit"}, early_stop_patience=bad)  # type: ignore[arg-type]


# --- named ablation variants -------------------------------------------------------------


def _ablation(*variants: str) -> Any:
    return load_config(
        QUICKSTART,
        [
            *TINY,
            "ablation.drop=[]",
            "ablation.n_seeds=1",
            f"ablation.variants={{{', '.join(variants)}}}",
        ],
    )


def test_named_variants_set_their_keys_and_keep_the_base_weights_unless_told() -> None:
    config = _ablation(
        "no_shaping: {reward.shaping.enabled: false}",
        "edit_only: {reward.weights: {quality: 0.0, edit: 1.0, consistency: 0.0}, "
        "reward.shaping.potential: edit}",
    )
    variants = dict(ablation_variants(config))
    assert list(variants) == ["full", "no_shaping", "edit_only"]
    assert variants["no_shaping"] == variants["full"]
    assert variants["edit_only"] == {"quality": 0.0, "edit": 1.0, "consistency": 0.0}
    overrides = variant_overrides(config)
    assert overrides["full"] == {}
    base = config_to_dict(config)
    base_weights = config.reward.effective_weights()
    run = _variant_config(
        base, variants["edit_only"], base_weights, 3, overrides["edit_only"], "edit_only"
    )
    assert run.seed == 3
    assert run.reward.shaping.potential == "edit"
    assert run.reward.weights == {"quality": 0.0, "edit": 1.0, "consistency": 0.0}
    assert run.evaluation.weights == base_weights  # scored on the base weights
    plain = _variant_config(base, variants["no_shaping"], base_weights, 3, {}, "full")
    assert plain.reward.shaping.enabled is True


@pytest.mark.parametrize(
    ("variant", "path", "words"),
    [
        (
            "x: {reward.shaping.enabld: false}",
            "ablation.variants.x.reward.shaping.enabld",
            "enabled",
        ),
        ("x: {reward.normalization: none}", "ablation.variants.x", "normalization"),
        ("x: {seed: 3}", "ablation.variants.x.seed", "cannot set"),
        ("x: {evaluation.n_episodes: 3}", "ablation.variants.x.evaluation.n_episodes", "same"),
        ("full: {reward.shaping.enabled: false}", "ablation.variants.full", "taken"),
        ("'a b': {reward.shaping.enabled: false}", "ablation.variants.a b", "folder name"),
        ("x: {}", "ablation.variants.x", "sets no key"),
    ],
)
def test_bad_named_variants_are_refused_with_the_key(variant: str, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        ablation_variants(_ablation(variant))
    assert info.value.path == path
    assert words in info.value.message


def test_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    """An ablation re-run finds config.yaml but no checkpoint (stopped while cloning or
    building the env): nothing to resume, so the run starts over and completes."""
    config = load_config(QUICKSTART, [*TINY, "training.checkpoint_freq=0"])
    run = tmp_path / "run"
    run.mkdir()
    save_config(config, run / "config.yaml")
    RunDir(run).mark()
    outcome = run_task(RunTask("x", str(run), config_to_dict(config)))
    assert outcome.status == "completed", outcome.error
    assert (run / "eval.json").is_file()


def test_the_evidence_configs_plan_and_construct() -> None:
    repo = Path(__file__).resolve().parents[2]
    names = sorted(p.stem for p in (repo / "configs" / "evidence").glob("*.yaml"))
    assert names == ["edit", "generate", "sac_unified", "unified"]
    for name in names:
        config = load_config(repo / "configs" / "evidence" / f"{name}.yaml")
        check_experiment(config)
        assert config.ablation.n_seeds >= 5
        assert config.evaluation.seed is not None  # every seed is scored on the same tasks
        assert config.callbacks.early_stop_patience is not None
    unified = load_config(repo / "configs" / "evidence" / "unified.yaml")
    assert [n for n, _ in ablation_variants(unified)] == [
        "full",
        "no_edit",
        "no_consistency",
        "w_q0.6_e0.2_c0.2",
        "w_q0.2_e0.6_c0.2",
        "w_q0.3_e0.3_c0.4",
        "no_normalization",
        "no_shaping",
        "quality_only",
        "edit_only",
    ]
