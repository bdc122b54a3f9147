"""Warm start: behaviour cloning of Oracle demonstrations, then a critic warm-up, before RL.

``training.warm_start`` (config) turns it on for PPO and A2C. A fresh ``train`` run then:

1. collects ``demos`` Oracle episodes in the run's training stack
   (:func:`~unigen_sb3.experiments.demos.collect_demos`; episode ``j`` draws its task from
   seed :func:`demo_seed` ``+ j``, on the training prompt split, so never the evaluation's
   held-out prompts), in a temporary folder;
2. fits the policy's action distribution to them
   (:func:`~unigen_sb3.experiments.bc.fit_policy`, early stopping on held-out demo
   episodes), the model's own network, built and seeded as ``train`` builds it;
3. trains the value head alone for ``critic_warmup`` timesteps (:func:`warm_up_critic`):
   the algorithm's own rollouts and loss, with an optimizer that holds only
   ``policy.value_net``, so the cloned actor is unchanged. Without it the first policy
   updates follow an untrained critic's advantages, which undo the cloning (measured:
   docs/evidence.md);
4. then the algorithm trains every parameter for the rest of ``total_timesteps`` (the
   warm-up's timesteps count in it; the demonstrations do not, and ``warm_start.json`` in
   the run directory says how many there were).

The cloned weights depend only on the stack, the algorithm, the seed, the cloning settings
and the torch threads, never on the reward; :func:`cloned_policy_key` names them, and a
``cache`` folder (``ablate`` passes ``OUT/warm_start_cache``) lets the variants of one seed
share one cloning: the cached state dict is the bytes the cloning would produce again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from unigen_sb3 import __version__
from unigen_sb3.configs.schema import ExperimentConfig, config_to_dict
from unigen_sb3.utils import atomic_write_bytes, atomic_write_text

__all__ = [
    "DEMO_SEED_STRIDE",
    "WARM_START_REPORT",
    "clone_demonstrations",
    "cloned_policy_key",
    "demo_seed",
    "warm_up_critic",
]

#: Demonstration episode ``j`` of a run with master seed ``s`` draws its task from seed
#: ``(s + 1) * DEMO_SEED_STRIDE + j``: disjoint from another seed's demonstrations for up to
#: this many episodes, and from the evaluation seeds (``s + 10000``, ``10000``).
DEMO_SEED_STRIDE = 100_000
#: The warm start's account in the run directory.
WARM_START_REPORT = "warm_start.json"
_POLICY_FILE = "policy.pt"
_INFO_FILE = "clone.json"


def demo_seed(config: ExperimentConfig) -> int:
    """The base seed of a run's demonstration episodes (see :data:`DEMO_SEED_STRIDE`)."""
    return ((config.seed + 1) * DEMO_SEED_STRIDE) % (2**32 - DEMO_SEED_STRIDE)


def cloned_policy_key(config: ExperimentConfig, threads: int) -> str:
    """A name for the cloned weights: SHA-256 of everything they depend on.

    That is the master seed and determinism flag, the env (the stack the demonstrations are
    collected in and the policy sees), the algorithm (its policy and kwargs), the training
    env count and device, the cloning settings, ``threads`` and the package and torch
    versions; not the reward, the budget, the critic warm-up or the evaluation.
    """
    data = config_to_dict(config)
    warm = dict(data["training"]["warm_start"])
    for key in ("critic_warmup", "critic_learning_rate"):
        warm.pop(key)
    relevant = {
        "seed": data["seed"],
        "strict_determinism": data["strict_determinism"],
        "env": data["env"],
        "algorithm": data["algorithm"],
        "n_envs": data["training"]["n_envs"],
        "device": data["training"]["device"],
        "warm_start": warm,
        "threads": threads,
        "versions": [__version__, torch.__version__],
    }
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clone_demonstrations(
    model: BaseAlgorithm,
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    *,
    cache: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Steps 1-2 of the module docstring: fit ``model``'s policy to Oracle demonstrations.

    :param model: the run's freshly built model (PPO or A2C).
    :param config: the run's config (``training.warm_start.demos`` > 0).
    :param run_dir: where ``warm_start.json`` is written.
    :param cache: a folder shared by runs whose cloning is the same (see
        :func:`cloned_policy_key`): read when it holds this key, written otherwise.
    :return: what ``warm_start.json`` holds (demos, seed, epochs, held-out loss and accuracy,
        seconds, ``cached``).
    """
    from unigen_sb3.experiments.bc import fit_policy
    from unigen_sb3.experiments.demos import collect_demos

    warm = config.training.warm_start
    if warm.demos < 1:
        raise ValueError(f"training.warm_start.demos={warm.demos} clones nothing; it must be >= 1")
    key = cloned_policy_key(config, torch.get_num_threads())
    entry = None if cache is None else Path(cache) / key
    started = time.perf_counter()
    policy: Any = model.policy
    if entry is not None and (entry / _POLICY_FILE).is_file() and (entry / _INFO_FILE).is_file():
        state = torch.load(entry / _POLICY_FILE, map_location=model.device, weights_only=True)
        policy.load_state_dict(state)
        info = json.loads((entry / _INFO_FILE).read_text("utf-8"))
        info["cached"] = True
    else:
        seed = demo_seed(config)
        with tempfile.TemporaryDirectory(prefix="unigen-demos-") as tmp:
            demo = collect_demos(config, Path(tmp) / "demos", n_episodes=warm.demos, seed=seed)
            collected = time.perf_counter() - started
            fit = fit_policy(
                model,
                demo,
                seed=config.seed,
                max_epochs=warm.bc_epochs,
                patience=warm.bc_patience,
                learning_rate=warm.bc_learning_rate,
            )
            info = {
                "demos": warm.demos,
                "demo_seed": seed,
                "demo_steps": int(demo.actions.shape[0]),
                "demos_sha256": demo.manifest["sha256"],
                "epochs": len(fit.history),
                "best_epoch": fit.best_epoch,
                "val_loss": fit.val_loss,
                "val_accuracy": fit.val_accuracy,
                "history": fit.history,
                "collect_seconds": round(collected, 3),
                "key": key,
            }
        if entry is not None:
            entry.mkdir(parents=True, exist_ok=True)
            # Atomic: a run reading the cache never sees half a file (two runs writing the
            # same key write the same bytes).
            buffer = io.BytesIO()
            torch.save(policy.state_dict(), buffer)
            atomic_write_bytes(entry / _POLICY_FILE, buffer.getvalue())
            atomic_write_text(entry / _INFO_FILE, json.dumps(info, indent=2, sort_keys=True))
        info["cached"] = False
    info["seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_text(
        Path(run_dir) / WARM_START_REPORT, json.dumps(info, indent=2, sort_keys=True) + "\n"
    )
    return info


def warm_up_critic(
    model: BaseAlgorithm,
    timesteps: int,
    learning_rate: float,
    *,
    callback: BaseCallback | None = None,
    log_interval: int = 1,
) -> None:
    """Step 3 of the module docstring: ``timesteps`` of the algorithm updating only the value
    head (Adam at ``learning_rate``); the optimizer and schedule are restored afterwards.

    :param model: an on-policy actor-critic (PPO, A2C) whose policy has ``value_net``.
    :param timesteps: timesteps to learn (counted in ``model.num_timesteps``).
    :param learning_rate: the value head's step size.
    :param callback: passed to ``learn``.
    :param log_interval: passed to ``learn``.
    """
    policy: Any = model.policy
    value_net = getattr(policy, "value_net", None)
    if not isinstance(value_net, torch.nn.Module):
        raise ValueError(
            f"{type(policy).__name__} has no value_net to warm up; the critic warm-up needs an "
            "actor-critic policy (PPO, A2C)"
        )
    full, schedule = policy.optimizer, model.lr_schedule
    policy.optimizer = torch.optim.Adam(value_net.parameters(), lr=learning_rate)
    constant: Callable[[float], float] = lambda _progress: learning_rate  # noqa: E731
    model.lr_schedule = constant
    try:
        model.learn(
            timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name="train",
            reset_num_timesteps=True,
        )
    finally:
        policy.optimizer, model.lr_schedule = full, schedule
