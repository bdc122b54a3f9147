"""Train and evaluate one experiment from its config, into a run directory.

Example:
    >>> from unigen_sb3.configs import load_config
    >>> cfg = load_config("quickstart", ["training.total_timesteps=256"])
    >>> result = train(cfg, "runs/quickstart")           # doctest: +SKIP
    >>> result.eval["metrics"]["reward_total"]["mean"]   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from unigen_sb3.callbacks.evaluation import UniGenEvalCallback
from unigen_sb3.callbacks.hybrid_entropy import HybridEntropyCallback
from unigen_sb3.callbacks.progress import ProgressLogCallback
from unigen_sb3.configs.loader import load_config, load_yaml, save_config
from unigen_sb3.configs.schema import ConfigError, ExperimentConfig, config_to_dict
from unigen_sb3.experiments.algorithms import (
    HYBRID_POLICY,
    algorithm_gamma,
    check_algorithm,
    get_algorithm_class,
    is_off_policy,
)
from unigen_sb3.experiments.allocator import tune_host_allocator
from unigen_sb3.experiments.rundir import (
    MARKER_NAME,
    ArtifactError,
    RunDir,
    is_run_dir,
    sha256_file,
)
from unigen_sb3.experiments.seeding import seed_everything
from unigen_sb3.make import build_vec_env, stack_spaces
from unigen_sb3.rewards.shaping import PotentialShaping, check_shaping_gamma
from unigen_sb3.spec import UniGenSpec

__all__ = [
    "EVAL_SEED_OFFSET",
    "CheckpointCallback",
    "TrainResult",
    "apply_torch_threads",
    "build_model",
    "check_construction",
    "check_experiment",
    "eval_seed",
    "evaluate_model",
    "evaluate_run",
    "make_shaping",
    "make_train_vec_env",
    "remove_run_dir",
    "train",
]

#: ``evaluation.seed: null`` means ``seed + EVAL_SEED_OFFSET``: evaluation tasks then never
#: replay the first training tasks of env worker 0..EVAL_SEED_OFFSET-1.
EVAL_SEED_OFFSET = 10_000

#: What an :class:`ArtifactError` adds: how to load the file anyway, and why not to.
TRUST_HINT = (
    "pass --trust-artifacts (trust_artifacts=True) to load it anyway, only if you trust "
    "whoever could write this folder: loading an SB3 zip or replay buffer runs the pickled "
    "code it holds"
)

#: The periodic evaluation's latest report plus its learning curve ``history``.
EVAL_HISTORY_NAME = "eval_history.json"

_WANDB_MISSING = "W&B tracking needs wandb: pip install 'unigen-sb3[wandb]'"

# Keys a resumed run may change (everything else must match the run's config.yaml).
_RESUMABLE_CHANGES = (
    "training.total_timesteps",
    "training.progress_bar",
    "training.checkpoint_freq",
    "training.torch_threads",
)


@dataclass
class TrainResult:
    """What :func:`train` produced.

    :param run_dir: the run directory.
    :param model: the trained model.
    :param num_timesteps: timesteps trained in total (across resumes).
    :param eval: the evaluation results (``eval.json``), or None when interrupted.
    :param interrupted: True when training stopped on Ctrl-C.
    """

    run_dir: RunDir
    model: BaseAlgorithm
    num_timesteps: int
    eval: dict[str, Any] | None = None
    interrupted: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


class CheckpointCallback(BaseCallback):
    """Save an atomic checkpoint every ``save_freq`` timesteps (all envs counted).

    :param run_dir: where ``checkpoints/`` lives.
    :param save_freq: timesteps between checkpoints, >= 1.
    :param replay_buffer: also save the replay buffer (off-policy algorithms).
    """

    def __init__(self, run_dir: RunDir, save_freq: int, *, replay_buffer: bool = False) -> None:
        super().__init__()
        if save_freq < 1:
            raise ValueError(f"save_freq={save_freq!r} must be >= 1")
        self.run_dir = run_dir
        self.save_freq = int(save_freq)
        self.replay_buffer = replay_buffer
        self._next = 0

    def _on_training_start(self) -> None:
        # Resumed runs continue the schedule from the restored timestep count.
        self._next = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.run_dir.save_checkpoint(self.model, replay_buffer=self.replay_buffer)
            self._next = (self.num_timesteps // self.save_freq + 1) * self.save_freq
        return True


def make_shaping(config: ExperimentConfig, gamma: float | None) -> PotentialShaping | None:
    """:return: the configured shaping (its ``gamma: null`` = the algorithm's), or None."""
    shaping = config.reward.shaping
    if not shaping.enabled:
        return None
    use_gamma = shaping.gamma if shaping.gamma is not None else gamma
    if use_gamma is None:
        raise ConfigError(
            "reward.shaping.gamma",
            f"{config.algorithm.name} has no discount to take; set reward.shaping.gamma",
        )
    return PotentialShaping(use_gamma, potential=shaping.potential, scale=shaping.scale)


def check_experiment(
    config: ExperimentConfig, *, construct: bool = True
) -> tuple[type[BaseAlgorithm], str | type[BasePolicy]]:
    """Every check that can fail before training starts (algorithm, kwargs, shaping gamma,
    W&B installed when ``wandb.enabled``), and, with ``construct``, the algorithm built with
    its policy and kwargs on a stand-in env of the training stack's spaces
    (:func:`check_construction`).

    :param config: the validated config.
    :param construct: also build the algorithm (:func:`build_model` skips it: it builds the
        real one next).
    :return: ``(algorithm class, policy)``: a policy alias, or the hybrid policy's class.
    :raises ConfigError: naming the dotted key of the problem.
    """
    algo = config.algorithm
    cls, policy = check_algorithm(
        algo.name, algo.policy, algo.kwargs, config.env.action, config.env.obs
    )
    gamma = algorithm_gamma(cls, algo.kwargs)
    shaping = make_shaping(config, gamma)
    if shaping is not None and gamma is not None:
        try:
            check_shaping_gamma(gamma, shaping)
        except ValueError:
            raise ConfigError(
                "reward.shaping.gamma",
                f"{shaping.gamma} differs from the algorithm's gamma={gamma}; potential-based "
                "shaping keeps the optimal policy only when they are equal: set "
                f"reward.shaping.gamma to {gamma}, or to null (take the algorithm's)",
            ) from None
    _check_spec(config)
    _check_warm_start(config, cls)
    if construct:
        check_construction(config, cls, policy)
    if config.wandb.enabled:
        _import_wandb()
    return cls, policy


def _check_warm_start(config: ExperimentConfig, cls: type[BaseAlgorithm]) -> None:
    """Behaviour cloning needs an on-policy actor-critic; early stopping needs the evaluation."""
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    warm = config.training.warm_start
    if warm.demos > 0 and not issubclass(cls, OnPolicyAlgorithm):
        raise ConfigError(
            "training.warm_start.demos",
            f"{warm.demos} asks for behaviour cloning before RL, which fits an on-policy "
            f"actor-critic's action distribution and value head; {config.algorithm.name} is "
            "not one (use PPO or A2C, or set training.warm_start.demos: 0)",
        )
    if warm.demos == 0 and warm.critic_warmup > 0:
        raise ConfigError(
            "training.warm_start.critic_warmup",
            f"{warm.critic_warmup} warms up the value head of a cloned policy, but "
            "training.warm_start.demos is 0 (no cloning); set demos > 0 or critic_warmup: 0",
        )
    if config.callbacks.early_stop_patience is not None and not config.callbacks.eval:
        raise ConfigError(
            "callbacks.early_stop_patience",
            f"{config.callbacks.early_stop_patience} stops on the periodic evaluation, which "
            "is off; set callbacks.eval: true, or early_stop_patience: null",
        )


class _StandInEnv(gym.Env[Any, Any]):
    """An env with given spaces and nothing behind them: what an algorithm is built on in
    :func:`check_construction` (never stepped)."""

    def __init__(self, observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> None:
        self.observation_space = observation_space
        self.action_space = action_space

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), 0.0, False, True, {}


def check_construction(
    config: ExperimentConfig, cls: type[BaseAlgorithm], policy: str | type[BasePolicy]
) -> None:
    """Build ``cls(policy, env, **algorithm.kwargs)`` on ``training.n_envs`` stand-in envs
    with the training stack's observation and action spaces (:func:`~unigen_sb3.make.
    stack_spaces`; no real env is built), on the CPU and, for an off-policy algorithm, with
    ``buffer_size=1`` (the configured one is checked by
    :func:`~unigen_sb3.experiments.algorithms.check_algorithm`), so any value the
    constructor refuses (``policy_kwargs: {net_arch: 5}``, an unknown policy kwarg, a bad
    ``train_freq``...) is a ConfigError before a run directory is written. Its warnings are
    silenced (the real build shows them); torch's random state and thread count are left as
    they were.

    :param config: the config (its other checks passed).
    :param cls: the algorithm class.
    :param policy: the policy alias or class.
    :raises ConfigError: at ``algorithm.kwargs``, with the constructor's error.
    """
    import torch

    obs_space, action_space = stack_spaces(UniGenSpec.from_config(config))
    kwargs = copy.deepcopy(config.algorithm.kwargs)
    if is_off_policy(cls):
        kwargs["buffer_size"] = 1  # nothing the size of the real buffer is allocated
    env = DummyVecEnv([lambda: _StandInEnv(obs_space, action_space)] * config.training.n_envs)
    threads = torch.get_num_threads()
    try:
        # One thread: the orthogonal weight init (a QR per layer) takes ~0.1 s so, and
        # seconds with more threads than free cores (measured on a busy 2-core machine).
        torch.set_num_threads(1)
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")
            cls(policy, env, device="cpu", verbose=0, **kwargs)
    except Exception as exc:
        text = " ".join(str(exc).split()) or "(no message)"
        raise ConfigError(
            "algorithm.kwargs",
            f"{cls.__name__} refuses these kwargs: {type(exc).__name__}: {text}",
        ) from exc
    finally:
        torch.set_num_threads(threads)
        env.close()


def _check_spec(config: ExperimentConfig) -> None:
    """Build the training and evaluation specs (validation only, nothing is allocated), so an
    env setting the env would refuse (a bad ``env.action_options``...) is a ConfigError."""
    for evaluation in (False, True):
        try:
            UniGenSpec.from_config(config, evaluation=evaluation)
        except (TypeError, ValueError) as exc:
            text = " ".join(str(exc).split())
            options = config.env.action_options and any(
                str(k) in text for k in config.env.action_options
            )
            raise ConfigError("env.action_options" if options else "env", text) from None


def _import_wandb() -> Any:
    """:return: the ``wandb`` module. :raises ConfigError: if it cannot be imported."""
    try:
        import wandb
    except ImportError as exc:
        raise ConfigError("wandb.enabled", f"{_WANDB_MISSING} ({exc})") from exc
    return wandb


def make_train_vec_env(
    config: ExperimentConfig, shaping: PotentialShaping | None = None, *, seed: int | None = None
) -> VecEnv:
    """Build the training VecEnv from the config's training spec: worker ``i`` is seeded
    with ``seed + i``.

    :param config: the config.
    :param shaping: the reward shaping (None = none).
    :param seed: overrides ``config.seed``.
    :return: the VecEnv (``dummy``/``subproc`` wrap each env in a Monitor).
    """
    return build_vec_env(
        UniGenSpec.from_config(config, shaping=shaping),
        config.training.n_envs,
        config.seed if seed is None else seed,
        vec_env_kind=config.training.vec_env_kind,
    )


def build_model(
    config: ExperimentConfig, env: VecEnv, *, tensorboard_log: str | None = None
) -> BaseAlgorithm:
    """Construct the configured algorithm on ``env``, seeded with the master seed.

    :param config: the config.
    :param env: the training VecEnv.
    :param tensorboard_log: TensorBoard folder (None = no TensorBoard).
    :return: the model.
    """
    cls, policy = check_experiment(config, construct=False)  # built right here
    return cls(
        policy,
        env,
        seed=config.seed,
        device=config.training.device,
        tensorboard_log=tensorboard_log,
        verbose=0,
        **copy.deepcopy(config.algorithm.kwargs),
    )


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict) or not data:
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _config_changes(
    saved: dict[str, Any], new: dict[str, Any], ignored: Callable[[str], bool]
) -> tuple[list[str], str]:
    """The dotted keys whose values differ between two config dicts (but not the
    ``ignored`` ones), sorted, and the first five as ``"key: old -> new"`` text."""
    a, b = _flatten(saved), _flatten(new)
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not ignored(k))
    details = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in changed[:5])
    if len(changed) > 5:
        details += f" (and {len(changed) - 5} more)"
    return changed, details


def _check_resume_config(saved: dict[str, Any], new: dict[str, Any]) -> None:
    changed, details = _config_changes(saved, new, lambda key: key in _RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(
            changed[0],
            f"--resume needs the run's own config; these keys differ from its config.yaml: "
            f"{details} (only {list(_RESUMABLE_CHANGES)} may change)",
        )


def _progress_bar(config: ExperimentConfig) -> bool:
    # SB3's bar needs tqdm and rich; it is noise in logs, so only on a terminal.
    return (
        config.training.progress_bar
        and sys.stderr.isatty()
        and importlib.util.find_spec("tqdm") is not None
        and importlib.util.find_spec("rich") is not None
    )


def apply_torch_threads(config: ExperimentConfig) -> int:
    """``torch.set_num_threads`` from ``training.torch_threads``; ``null`` keeps torch's own
    setting (one thread per core), the fastest measured on an idle 2-core machine. On a busy
    machine one thread avoids a collapse (docs/notes/torch_threads.md).

    :return: the number of threads in effect.
    """
    import torch

    if config.training.torch_threads is not None:
        torch.set_num_threads(config.training.torch_threads)
    return torch.get_num_threads()


def _find_callback(name: str) -> Any:
    """The package callback ``name``, from ``unigen_sb3.callbacks`` or one of its modules."""
    import pkgutil

    from unigen_sb3 import callbacks as pkg

    found = getattr(pkg, name, None)
    if found is not None:
        return found
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        if (found := getattr(module, name, None)) is not None:
            return found
    return None


def _package_callbacks(config: ExperimentConfig, run_dir: RunDir) -> list[Any]:
    cb = config.callbacks
    out: list[Any] = []
    if not (cb.reward_components or cb.image_log or cb.eval):
        return out

    def need(name: str, key: str) -> Any:
        obj = _find_callback(name)
        if obj is None:
            raise ConfigError(
                f"callbacks.{key}", f"unigen_sb3.callbacks.{name} is not available; set it false"
            )
        return obj

    if cb.reward_components:
        out.append(need("RewardComponentCallback", "reward_components")())
    if cb.image_log:
        out.append(need("ImageLogCallback", "image_log")(cb.image_log_freq))
    if cb.eval:
        stopping = cb.early_stop_patience is not None
        out.append(
            need("UniGenEvalCallback", "eval")(
                UniGenSpec.from_config(config, evaluation=True),
                eval_freq=cb.eval_freq,
                n_episodes=cb.eval_episodes,
                # Selecting on the final evaluation's tasks would report a selected score.
                seed=validation_seed(config) if stopping else eval_seed(config),
                json_path=run_dir.path / EVAL_HISTORY_NAME,
                prompt_split=config.evaluation.prompt_split,
                deterministic=config.evaluation.deterministic,
                early_stop_patience=cb.early_stop_patience,
            )
        )
    return out


#: The validation tasks of early stopping: the evaluation seed plus this (see
#: :func:`validation_seed`).
VALIDATION_SEED_OFFSET = 1_000_000


def validation_seed(config: ExperimentConfig) -> int:
    """The task seed of the periodic evaluation when it stops training early
    (``callbacks.early_stop_patience``): :func:`eval_seed` + :data:`VALIDATION_SEED_OFFSET`,
    so the policy kept is chosen on other tasks (same held-out prompt split) than the final
    evaluation scores."""
    return (eval_seed(config) + VALIDATION_SEED_OFFSET) % 2**32


def eval_seed(config: ExperimentConfig) -> int:
    """The evaluation seed: ``evaluation.seed``, else ``seed + EVAL_SEED_OFFSET``."""
    if config.evaluation.seed is not None:
        return config.evaluation.seed
    return (config.seed + EVAL_SEED_OFFSET) % 2**32


def evaluate_model(
    model: BaseAlgorithm,
    config: ExperimentConfig,
    *,
    n_episodes: int | None = None,
    seed: int | None = None,
    path: str | Path | None = None,
) -> dict[str, Any]:
    """Run the evaluation suite (:func:`unigen_sb3.evaluation.evaluate_unigen`).

    :param model: the trained model.
    :param config: the config (evaluation env, episodes, seed, weights).
    :param n_episodes: overrides ``evaluation.n_episodes``.
    :param seed: overrides the evaluation seed.
    :param path: where ``eval.json`` is written (atomically), or None.
    :return: the results dict (``eval.json``'s schema).
    """
    from unigen_sb3.evaluation import evaluate_unigen

    results: dict[str, Any] = evaluate_unigen(
        model,
        UniGenSpec.from_config(config, evaluation=True),
        config.evaluation.n_episodes if n_episodes is None else n_episodes,
        eval_seed(config) if seed is None else seed,
        prompt_split=config.evaluation.prompt_split,
        deterministic=config.evaluation.deterministic,
        json_path=path,
    )
    return results


def _start_wandb(config: ExperimentConfig, run_dir: RunDir) -> Any:
    if not config.wandb.enabled:
        return None
    wandb = _import_wandb()
    os.environ["WANDB_MODE"] = config.wandb.mode
    return wandb.init(
        project=config.wandb.project,
        name=run_dir.path.name,
        dir=str(run_dir.path),
        config=config_to_dict(config),
        sync_tensorboard=True,
        mode=config.wandb.mode,
    )


def train(
    config: ExperimentConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    evaluate: bool = True,
    extra_callbacks: Sequence[BaseCallback] = (),
    trust_artifacts: bool = False,
    warm_start_cache: str | Path | None = None,
) -> TrainResult:
    """Train ``config`` into run directory ``out``, checkpoint, then run the evaluation suite.

    ``meta.json``'s ``status`` goes ``running`` -> ``trained`` (``model.zip`` and a checkpoint
    saved) -> ``completed`` (``eval.json`` written). Ctrl-C (``KeyboardInterrupt``) saves
    ``model.zip`` and a checkpoint, marks the run ``interrupted`` and returns with
    ``interrupted=True`` (Ctrl-C before learning started, e.g. while the env is built, also
    marks it ``interrupted`` and propagates). Any other exception marks the run ``failed``,
    records ``error`` (``"<type>: <message>"``; null otherwise), saves no model and propagates;
    :func:`evaluate_run` refuses such a run. ``resume=True`` continues an interrupted or
    failed run from its newest intact checkpoint (SHA-256 as recorded; a truncated or changed
    one is skipped with a warning) and keeps counting timesteps; a ``config.yaml`` edited after
    the run wrote it is refused.

    :param config: the validated config.
    :param out: the run directory.
    :param resume: continue the run in ``out`` (its config must match, except
        ``training.total_timesteps``, ``training.progress_bar``,
        ``training.checkpoint_freq`` and ``training.torch_threads``).
    :param overwrite: delete a previous run in ``out`` first (``make run`` re-runs this way);
        only a folder :func:`~unigen_sb3.experiments.rundir.is_run_dir` recognizes is deleted.
    :param evaluate: run the evaluation suite after training (writes ``eval.json``).
    :param extra_callbacks: more SB3 callbacks.
    :param trust_artifacts: on resume, also load checkpoints and buffers whose SHA-256 was not
        recorded or does not match (they run their pickled code).
    :param warm_start_cache: a folder where runs share their behaviour cloning
        (``training.warm_start``; see :mod:`unigen_sb3.experiments.warm_start`).
    :return: the :class:`TrainResult`.
    :raises ConfigError: for a config problem, before any training.
    :raises FileExistsError: for ``overwrite`` of a folder that is not a run directory.
    :raises ArtifactError: on resume, when no checkpoint is intact.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    cls, _policy = check_experiment(config)
    # Before anything is written: a bad UNIGEN_SB3_MALLOC fails here.
    allocator = tune_host_allocator()
    if overwrite:
        remove_run_dir(Path(out))
    run_dir = RunDir(out)
    candidates: list[tuple[Path, int, Path | None]] = []
    if resume:
        if not run_dir.config_path.exists():
            raise FileNotFoundError(f"--resume: {run_dir.config_path} does not exist")
        _check_config_unchanged(run_dir)
        _check_resume_config(load_yaml(run_dir.config_path), config_to_dict(config))
        candidates = _resume_candidates(run_dir, trust_artifacts)
    elif run_dir.model_path.exists() or run_dir.latest_checkpoint() is not None:
        raise FileExistsError(
            f"{run_dir.path} already holds a run; pass --resume to continue it, --overwrite to "
            "replace it, or choose another --out"
        )
    gamma = algorithm_gamma(cls, config.algorithm.kwargs)
    shaping = make_shaping(config, gamma)
    callbacks: list[BaseCallback] = _package_callbacks(config, run_dir)
    if config.algorithm.policy == HYBRID_POLICY:
        # SB3 logs one entropy; the hybrid policy's op and parameter terms are logged apart.
        callbacks.append(HybridEntropyCallback())
    run_dir.mark()
    save_config(config, run_dir.config_path)
    run_dir.record(run_dir.config_path)
    run_dir.start_meta(config.seed, host_allocator=allocator.as_dict())
    env: VecEnv | None = None
    model: BaseAlgorithm | None = None
    wandb_run: Any = None
    interrupted = False
    try:
        apply_torch_threads(config)
        seed_everything(config.seed, strict=config.strict_determinism)
        env = make_train_vec_env(config, shaping)
        tb = str(run_dir.tb_dir) if config.training.tensorboard else None
        if candidates:
            model = _load_checkpoint(cls, candidates, env, config.training.device, tb)
        else:
            model = build_model(config, env, tensorboard_log=tb)
        # The built model's own gamma, refused before learning.
        check_shaping_gamma(model, shaping)

        if config.training.checkpoint_freq > 0:
            callbacks.append(
                CheckpointCallback(
                    run_dir,
                    config.training.checkpoint_freq,
                    replay_buffer=config.training.save_replay_buffer,
                )
            )
        bar = _progress_bar(config)
        if config.training.progress_bar and not bar:
            callbacks.append(ProgressLogCallback(prefix=str(out)))  # logs, CI, no rich: lines
        callbacks.extend(extra_callbacks)
        wandb_run = _start_wandb(config, run_dir)
        learn_start = time.perf_counter()
        warm = config.training.warm_start
        warmed = False
        try:
            if not candidates and warm.demos > 0:
                from unigen_sb3.experiments.warm_start import (
                    clone_demonstrations,
                    warm_up_critic,
                )

                clone_demonstrations(model, config, run_dir.path, cache=warm_start_cache)
                steps = min(warm.critic_warmup, config.training.total_timesteps)
                if steps > 0:
                    # The periodic evaluation starts with the actor: it is unchanged here.
                    plain = [c for c in callbacks if not isinstance(c, UniGenEvalCallback)]
                    warm_up_critic(
                        model,
                        steps,
                        warm.critic_learning_rate,
                        callback=CallbackList(plain),
                        log_interval=config.training.log_interval,
                    )
                    warmed = True
            remaining = max(config.training.total_timesteps - model.num_timesteps, 0)
            if remaining > 0:
                model.learn(
                    remaining,
                    callback=CallbackList(callbacks),
                    log_interval=config.training.log_interval,
                    tb_log_name="train",
                    reset_num_timesteps=not (candidates or warmed),
                    progress_bar=bar,
                )
        except KeyboardInterrupt:
            interrupted = True
        # Also on Ctrl-C: the run dir stays valid and resumable.
        run_dir.save_checkpoint(model, replay_buffer=config.training.save_replay_buffer)
        run_dir.save_model(model)
        # Before env.close(), so that an error while closing cannot leave "running" behind.
        run_dir.write_meta(
            status="interrupted" if interrupted else "trained",
            num_timesteps=int(model.num_timesteps),
            # Wall time of this command's model.learn() (a resumed run: its part only).
            train_seconds=round(time.perf_counter() - learn_start, 3),
        )
    except BaseException as exc:
        counted: dict[str, Any] = {}
        if model is not None:
            counted["num_timesteps"] = int(model.num_timesteps)
        if isinstance(exc, KeyboardInterrupt):
            # Ctrl-C outside learn() (env, model or W&B being set up, or while saving).
            run_dir.write_meta(status="interrupted", **counted)
        else:
            # A crashed run must never look trained: "failed", and no model.zip from it.
            run_dir.write_meta(status="failed", error=f"{type(exc).__name__}: {exc}", **counted)
        if wandb_run is not None:
            wandb_run.finish(exit_code=1)
        raise
    finally:
        if env is not None:
            env.close()
    result = TrainResult(run_dir, model, int(model.num_timesteps), interrupted=interrupted)
    try:
        if not interrupted and evaluate:
            result.eval = evaluate_model(model, config, path=run_dir.eval_path)
            run_dir.write_meta(status="completed")
    finally:
        if wandb_run is not None:
            wandb_run.finish()
    return result


def remove_run_dir(out: Path) -> None:
    """Delete the run directory ``out`` for ``--overwrite``; refuse anything else.

    Deleted: a folder holding the run marker (:data:`~unigen_sb3.experiments.rundir.
    MARKER_NAME`), or one written before the marker existed that holds a ``config.yaml`` and
    nothing but a run's files. A missing or empty folder is left as it is.

    :raises FileExistsError: for a symbolic link, a file, or a folder that holds anything
        else, naming what is there.
    """
    if out.is_symlink():
        raise FileExistsError(
            f"--overwrite: {out} is a symbolic link; refusing to delete through it: pass the "
            "folder it points to, or choose another --out"
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"--overwrite: {out} is a file, not a run directory; refusing")
    if not any(out.iterdir()):
        return
    ok, foreign = is_run_dir(out)
    if not ok:
        shown = ", ".join(foreign[:5]) + (
            f" (and {len(foreign) - 5} more)" if len(foreign) > 5 else ""
        )
        raise FileExistsError(
            f"--overwrite: {out} is not a unigen-sb3 run directory (no {MARKER_NAME} marker"
            + (f"; it holds {shown}" if foreign else "; it has no config.yaml")
            + "); refusing to delete it: choose another --out, or remove it yourself"
        )
    shutil.rmtree(out)


def _check_config_unchanged(run_dir: RunDir) -> None:
    """Refuse a run ``config.yaml`` whose bytes differ from what the run recorded writing."""
    expected = run_dir.recorded(run_dir.config_path)
    if expected is not None and sha256_file(run_dir.config_path) != expected:
        raise ConfigError(
            "",
            f"{run_dir.config_path} was edited after the run wrote it, so the run would "
            "continue under a config that did not train it; restore it, or start a new run "
            "(another --out) with the changed config",
        )


def _resume_candidates(run_dir: RunDir, trust: bool) -> list[tuple[Path, int, Path | None]]:
    """Checkpoints to resume from, newest first: those whose zip (and replay buffer) match
    their recorded SHA-256, or with ``trust`` every one. A skipped one is warned about.

    :raises ArtifactError: if checkpoints exist but none can be used.
    """
    found = run_dir.checkpoints()
    out: list[tuple[Path, int, Path | None]] = []
    problems = []
    for path, steps in found:
        buffer = run_dir.replay_buffer_for(steps)
        try:
            for item in (path, buffer):
                if item is not None:
                    run_dir.verify(item)
        except ArtifactError as exc:
            if not trust:
                problems.append(str(exc))
                warnings.warn(f"--resume skips checkpoint {path.name}: {exc}", stacklevel=3)
                continue
        out.append((path, steps, buffer))
    if found and not out:
        raise ArtifactError(
            f"--resume: no checkpoint of {run_dir.path} is intact: {'; '.join(problems[:3])}; "
            + TRUST_HINT
        )
    return out


def _load_checkpoint(
    cls: type[BaseAlgorithm],
    candidates: list[tuple[Path, int, Path | None]],
    env: VecEnv,
    device: str,
    tb: str | None,
) -> BaseAlgorithm:
    """Load the first candidate that loads; a broken one is warned about and skipped."""
    for i, (path, _steps, buffer) in enumerate(candidates):
        try:
            model = cls.load(path, env=env, device=device, tensorboard_log=tb)
            if buffer is not None and is_off_policy(cls):
                model.load_replay_buffer(buffer)  # type: ignore[attr-defined]
            return model
        except Exception as exc:
            if i == len(candidates) - 1:
                raise
            warnings.warn(
                f"--resume skips checkpoint {path.name}, which does not load: "
                f"{type(exc).__name__}: {exc}",
                stacklevel=3,
            )
    raise AssertionError("unreachable: candidates is not empty")


def _verify_model(model_path: Path, trust: bool) -> None:
    """Check a model zip against the SHA-256 its run recorded (the run directory it sits in,
    or the one above ``checkpoints/``); without a record or on a mismatch, refuse unless
    ``trust``."""
    folder = model_path.parent
    if folder.name == "checkpoints" and (folder.parent / "meta.json").exists():
        folder = folder.parent
    try:
        if not (folder / "meta.json").exists():
            raise ArtifactError(f"{model_path}: not in a run directory, so no SHA-256 to check")
        RunDir(folder).verify(model_path)
    except ArtifactError as exc:
        if not trust:
            raise ArtifactError(f"{exc}; {TRUST_HINT}") from None
        warnings.warn(f"loading an unverified model (--trust-artifacts): {exc}", stacklevel=3)


def evaluate_run(
    target: str | Path,
    *,
    out: str | Path | None = None,
    config_path: str | Path | None = None,
    overrides: Iterable[str] = (),
    trust_artifacts: bool = False,
) -> tuple[dict[str, Any], Path]:
    """Evaluate a run directory (its ``model.zip`` and ``config.yaml``) or a model file.

    A run directory whose ``meta.json`` status is ``failed`` is refused (its training
    crashed; see :func:`train`). The model must match the SHA-256 its run recorded: a model
    without a record (a bare zip, a run written before digests were recorded) or a changed
    one is refused unless ``trust_artifacts``, since loading an SB3 zip runs its pickled code.

    :param target: a run directory, or a ``.zip`` model (its config comes from
        ``config_path``, else the ``config.yaml`` beside it, else the defaults).
    :param out: folder for ``eval.json`` (default: the run directory / the model's folder).
    :param config_path: config to use instead of the run's.
    :param overrides: ``--set`` overrides (e.g. ``evaluation.n_episodes=4``).
    :param trust_artifacts: load a model whose SHA-256 is not recorded or does not match.
    :return: ``(results, path of eval.json)``.
    :raises FileNotFoundError: for a missing target, a run directory without a model, or a
        failed run.
    :raises ArtifactError: for an unverified model without ``trust_artifacts``.
    """
    target = Path(target)
    if target.is_dir():
        meta = RunDir(target).read_meta()
        if meta.get("status") == "failed":
            raise FileNotFoundError(
                f"{target} holds no trained model: its training failed "
                f"({meta.get('error')}); continue it with `unigen-sb3 train "
                f"{target / 'config.yaml'} --out {target} --resume`, or evaluate one of its "
                "checkpoints/*.zip explicitly"
            )
        model_path = target / "model.zip"
        if not model_path.exists():
            latest = RunDir(target).latest_checkpoint()
            if latest is None:
                raise FileNotFoundError(f"{target} holds neither model.zip nor a checkpoint")
            model_path = latest[0]
        folder = target
    elif target.is_file():
        model_path, folder = target, target.parent
    else:
        raise FileNotFoundError(f"{target} is neither a run directory nor a model file")
    if config_path is None and (folder / "config.yaml").exists():
        config_path = folder / "config.yaml"
    config = load_config(config_path, overrides)
    get_algorithm_class(config.algorithm.name)  # an unknown algorithm fails before the check
    _verify_model(model_path, trust_artifacts)
    return evaluate_checkpoint(model_path, config, Path(out) if out is not None else folder)


def evaluate_checkpoint(
    model_path: Path, config: ExperimentConfig, dest: Path
) -> tuple[dict[str, Any], Path]:
    """Evaluate a verified model file under ``config`` into ``dest/eval.json``.

    The steps every evaluation of a saved model takes, in this order (the evaluation's
    numbers depend on it): torch threads from the config, seeding, loading the model on
    ``training.device``, :func:`evaluate_model`. The caller checks the file first (loading an
    SB3 zip runs its pickled code).

    :return: ``(results, path of eval.json)``.
    """
    cls = get_algorithm_class(config.algorithm.name)
    apply_torch_threads(config)
    seed_everything(config.seed, strict=config.strict_determinism)
    model = cls.load(model_path, device=config.training.device)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "eval.json"
    return evaluate_model(model, config, path=path), path
