"""``UniGenEnv``: one agent, generation and editing, hybrid actions, a vector reward.

Spaces
------
- action: ``Dict{"op": Discrete(6), "params": Box(-1, 1, (8,), float32)}``; ops and the
  parameter table are in :mod:`unigen_sb3.envs.canvas` (``docs/canvas_ops.md``).
- observation: ``Dict`` with

  ==============  ============================  =============================================
  key             space                         content
  ==============  ============================  =============================================
  ``canvas``      uint8 (3, H, W)               the current canvas
  ``target``      uint8 (3, H, W)               generation: the reference image; editing:
                                                the ground-truth edited image (start image
                                                with the requested attributes rendered
                                                inside the mask, unchanged elsewhere)
  ``mask``        uint8 (1, H, W), 0 or 255     where change is asked for (all 255 in
                                                generation)
  ``attributes``  float32 (12,) in [-1, 1]      prompt encoding, see ``ATTRIBUTE_NAMES``
  ``recent``      float32 (4,) in [0, 1]        see ``RECENT_NAMES``
  ==============  ============================  =============================================

- reward: float32 vector ``[quality, edit, consistency]``, each in ``[0, 1]``
  (``reward_space``, MO-Gymnasium's contract), paid when the episode ends (see
  :mod:`unigen_sb3.envs.core` for the schedule and why). Sub-metrics are in
  ``info["sub_metrics"]``, the text prompt in ``info["prompt"]``.

Episodes end with ``terminated`` on the ``stop`` op and ``truncated`` at ``horizon`` steps.

Action checking: a NaN or inf anywhere, a wrong shape, or an op that is not an integer in
``[0, 5]`` raises :class:`ValueError` naming the field, and the env state is left unchanged.
Parameters outside ``[-1, 1]`` are clipped to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, SupportsFloat, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from unigen_sb3.envs.bank import TaskBank, check_task_bank_features, check_task_bank_size
from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OPS
from unigen_sb3.envs.core import RECENT_NAMES, UniGenCore
from unigen_sb3.envs.tasks import (
    ATTRIBUTE_NAMES,
    REFERENCE_MODES,
    TASK_KINDS,
    Task,
    TaskSampler,
    reference_images,
)
from unigen_sb3.rewards.components import COMPONENT_RANGES, RewardComputer
from unigen_sb3.rewards.mixed_precision import MixedPrecisionPerceptual, metric_torch_dtype
from unigen_sb3.rewards.names import COMPONENT_NAMES
from unigen_sb3.rewards.perceptual import (
    PERCEPTUAL_BACKENDS,
    PerceptualDistance,
    RealismScorer,
    default_lpips_backbone_path,
)
from unigen_sb3.utils import is_int, real_array, resolve_device

DEFAULT_SIZE = 64
DEFAULT_HORIZON = 12
_MIN_SIZE = 36  # NatureCNN's smallest input


def resolve_backend(backend: str) -> str:
    """The perceptual backend ``backend`` names here: ``"auto"`` becomes ``"lpips"`` when
    torchvision's AlexNet file is on this machine, else ``"stlpips"`` (as
    :class:`~unigen_sb3.rewards.perceptual.PerceptualDistance` decides it).

    :raises ValueError: for a name not in ``PERCEPTUAL_BACKENDS``.
    """
    if backend not in PERCEPTUAL_BACKENDS:
        raise ValueError(
            f"perceptual_backend={backend!r} is not one of {tuple(PERCEPTUAL_BACKENDS)}"
        )
    if backend != "auto":
        return backend
    return "lpips" if default_lpips_backbone_path().is_file() else "stlpips"


@lru_cache(maxsize=4)
def _perceptual(backend: str, device: str) -> PerceptualDistance:
    return PerceptualDistance(backend, device=device)


@lru_cache(maxsize=8)
def _reward_computer(backend: str, device: str, size: int) -> RewardComputer:
    perceptual = _perceptual(backend, device)
    refs = reference_images(size).to(perceptual.device)
    realism = RealismScorer(perceptual.embed(refs))
    return RewardComputer(perceptual, realism)


def shared_reward_computer(
    backend: str, device: str | torch.device, size: int, metric_dtype: str | None = None
) -> RewardComputer:
    """One reward computer per (backend, device, size), shared by every env in the process.

    The backend and the device are resolved first (``"auto"`` included), so one network is
    loaded per process for one backend whatever name it was asked by. Building the network
    and the realism reference takes about a second; sharing them keeps many envs (and SB3's
    ``make_vec_env``) cheap. With ``metric_dtype`` ``"bfloat16"`` or ``"float16"`` the
    network forward is autocast
    (:class:`~unigen_sb3.rewards.mixed_precision.MixedPrecisionPerceptual`) around the same
    shared network and realism fit.

    :param backend: one of ``PERCEPTUAL_BACKENDS``.
    :param device: ``"auto"`` or a torch device.
    :param size: canvas side.
    :param metric_dtype: one of :data:`~unigen_sb3.rewards.mixed_precision.METRIC_DTYPES`
        (``None``: float32).
    """
    shared = _reward_computer(resolve_backend(backend), str(resolve_device(device)), int(size))
    dtype = metric_torch_dtype(metric_dtype)
    if dtype is None:
        return shared
    mixed = MixedPrecisionPerceptual(shared.perceptual, dtype)
    # The realism reference was fitted on float32 embeddings; it is reused as is.
    return RewardComputer(
        cast(PerceptualDistance, mixed),
        shared.realism,
        color_tol=shared.color_tol,
        change_threshold=shared.change_threshold,
    )


def observation_space(size: int, reference: str = "hidden") -> spaces.Dict:
    """The Dict observation space for a canvas of ``size`` x ``size``.

    :param size: canvas side.
    :param reference: ``"hidden"`` (no target image) or ``"observed"`` (a ``target`` key).
    """
    image = spaces.Box(0, 255, (3, size, size), np.uint8)
    keys: dict[str, spaces.Space[Any]] = {"canvas": image}
    if reference == "observed":
        keys["target"] = image
    keys["mask"] = spaces.Box(0, 255, (1, size, size), np.uint8)
    keys["attributes"] = spaces.Box(-1.0, 1.0, (len(ATTRIBUTE_NAMES),), np.float32)
    keys["recent"] = spaces.Box(0.0, 1.0, (len(RECENT_NAMES),), np.float32)
    return spaces.Dict(keys)


def action_space() -> spaces.Dict:
    """The hybrid action space ``Dict{op: Discrete(K), params: Box(-1, 1, (P,))}``."""
    return spaces.Dict(
        {
            "op": spaces.Discrete(NUM_OPS),
            "params": spaces.Box(-1.0, 1.0, (NUM_PARAMS,), np.float32),
        }
    )


def reward_space() -> spaces.Box:
    """The vector reward's space (MO-Gymnasium's ``reward_space``)."""
    low = np.array([r[0] for r in COMPONENT_RANGES.values()], dtype=np.float32)
    high = np.array([r[1] for r in COMPONENT_RANGES.values()], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def _check_op_values(op_arr: np.ndarray, n: int) -> np.ndarray:
    """Validate a batch of ops ``(n,)``; return them as int64 (see :func:`check_hybrid_actions`)."""
    where = "action['op']" if n == 1 else "action['op'][{i}]"
    kind = op_arr.dtype.kind
    if kind == "O":
        # Mixed Python objects: check element by element with the scalar rules.
        for i, v in enumerate(op_arr.tolist()):
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise ValueError(f"{where.format(i=i)} must be an integer, got {v!r}")
        op_arr = op_arr.astype(np.float64)
        kind = "f"
    if kind == "b" or kind not in "iuf":
        bad = op_arr.reshape(-1)[0].item() if op_arr.size else op_arr.dtype
        raise ValueError(f"{where.format(i=0)} must be an integer, got {bad!r} ({op_arr.dtype})")
    if kind == "f":
        bad_idx = np.flatnonzero(~np.isfinite(op_arr) | (op_arr != np.round(op_arr)))
        if bad_idx.size:
            i = int(bad_idx[0])
            raise ValueError(
                f"{where.format(i=i)} must be an integer in [0, {NUM_OPS - 1}], got {op_arr[i]}"
            )
    out_idx = np.flatnonzero((op_arr < 0) | (op_arr >= NUM_OPS))
    if out_idx.size:
        i = int(out_idx[0])
        raise ValueError(
            f"{where.format(i=i)}={op_arr[i]:g} is out of range [0, {NUM_OPS - 1}] (ops: {OPS})"
        )
    return op_arr.astype(np.int64)


def check_hybrid_actions(action: Any, n_envs: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of raw actions; return ``(ops (N,) int64, params (N,P) float32)``.

    ``action`` is either a dict of batches ``{"op": (N,), "params": (N, P)}`` or a sequence
    of ``N`` single actions ``{"op": int, "params": (P,)}``. Params outside ``[-1, 1]`` are
    clipped to it. :func:`check_hybrid_action` (one env) is this check with ``N = 1``.

    :param action: the actions.
    :param n_envs: ``N``, the number of envs stepped.
    :raises ValueError: naming the field (and env index) for a missing key, a wrong shape, a
        non-integer, bool or out-of-range op, bool or complex params, or NaN/inf (a finite
        value beyond float32's range is clipped like any other).
    """
    if isinstance(action, list | tuple) and all(isinstance(a, dict) for a in action):
        if len(action) != n_envs:
            raise ValueError(f"got {len(action)} actions for {n_envs} envs")
        missing = [i for i, a in enumerate(action) if "op" not in a or "params" not in a]
        if missing:
            raise ValueError(
                f"actions {missing} lack the key 'op' or 'params'; each action must be a dict "
                "{'op': int, 'params': array}"
            )
        for i, a in enumerate(action):
            if np.asarray(a["op"]).size != 1:
                raise ValueError(
                    f"action['op'][{i}] must be a single integer, got shape "
                    f"{np.asarray(a['op']).shape}"
                )
        ops = [np.asarray(a["op"]).reshape(()).item() for a in action]
        params_rows = [
            real_array(a["params"], f"action[{i}]['params']") for i, a in enumerate(action)
        ]
        shapes = {p.shape for p in params_rows}
        if shapes != {(NUM_PARAMS,)}:
            raise ValueError(
                f"each action['params'] must have shape ({NUM_PARAMS},), "
                f"got shapes {sorted(shapes)}"
            )
        action = {"op": np.asarray(ops, dtype=object), "params": np.stack(params_rows)}
    if not isinstance(action, dict) or "op" not in action or "params" not in action:
        raise ValueError(
            f"action must be a dict with keys 'op' and 'params' (or a list of {n_envs} such "
            f"dicts), got {action!r}"
        )
    op_in = action["op"]
    # A list may mix bools with ints, which numpy would read as 0 / 1: check each element.
    op_arr = np.asarray(op_in, dtype=object if isinstance(op_in, list | tuple) else None)
    if op_arr.shape != (n_envs,):
        raise ValueError(f"action['op'] must have shape ({n_envs},), got shape {op_arr.shape}")
    ops_checked = _check_op_values(op_arr, n_envs)
    params = real_array(action["params"], "action['params']")
    if params.shape != (n_envs, NUM_PARAMS):
        raise ValueError(
            f"action['params'] must have shape ({n_envs}, {NUM_PARAMS}), got {params.shape}"
        )
    bad = ~np.isfinite(params)
    if bad.any():
        rows, cols = np.nonzero(bad)
        where = (
            [int(c) for c in cols]
            if n_envs == 1
            else list(zip(rows.tolist(), cols.tolist(), strict=True))
        )
        raise ValueError(f"action['params'] has NaN or inf at indices {where}: {params.tolist()}")
    # Clipped in float64: a finite 1e39 is clipped to 1, not overflowed to inf by float32.
    return ops_checked, np.clip(params, -1.0, 1.0).astype(np.float32)


def check_hybrid_action(action: Any) -> tuple[int, np.ndarray]:
    """Validate one raw action; return ``(op, params clipped to [-1, 1])``.

    :raises ValueError: naming the field for a missing key, a wrong shape, a non-integer or
        out-of-range op, or NaN/inf.
    """
    if not isinstance(action, dict) or "op" not in action or "params" not in action:
        raise ValueError(f"action must be a dict with keys 'op' and 'params', got {action!r}")
    op_in = action["op"]
    op_arr = np.asarray(op_in, dtype=object if isinstance(op_in, list | tuple) else None)
    if op_arr.size != 1:
        raise ValueError(f"action['op'] must be a single integer, got shape {op_arr.shape}")
    params = real_array(action["params"], "action['params']")
    if params.shape != (NUM_PARAMS,):
        raise ValueError(f"action['params'] must have shape ({NUM_PARAMS},), got {params.shape}")
    ops, clipped = check_hybrid_actions({"op": op_arr.reshape(1), "params": params[None]}, 1)
    return int(ops[0]), clipped[0]


def step_components_of(dense_components: object) -> tuple[str, ...]:
    """The components an env computes on every step, from its ``dense_components`` argument.

    ``False`` (the default): none; the reward's components are computed for an episode's
    final canvas only (the paid reward), and ``info["state_components"]`` is NaN on the other
    steps. ``True``: all three every step (the network runs on every changed canvas). A
    sequence of component names: those every step (what shaping on a component needs; one
    that holds ``"quality"`` computes all three).

    :raises ValueError: for anything else (the value and what is accepted are named).
    """
    accepted = f"True, False or a sequence of component names from {list(COMPONENT_NAMES)}"
    if isinstance(dense_components, (bool, np.bool_)):
        return COMPONENT_NAMES if dense_components else ()
    if isinstance(dense_components, str) or not isinstance(dense_components, (list, tuple)):
        raise ValueError(f"dense_components={dense_components!r}: expected {accepted}")
    bad = [c for c in dense_components if not isinstance(c, str) or c not in COMPONENT_NAMES]
    if bad:
        raise ValueError(
            f"dense_components={dense_components!r}: unknown components {bad}; expected {accepted}"
        )
    return tuple(c for c in COMPONENT_NAMES if c in dense_components)


def check_env_args(
    task: str, size: int, horizon: int, render_mode: str | None, reference: str = "hidden"
) -> None:
    """The constructor checks shared by :class:`UniGenEnv` and the batched VecEnv.

    :raises ValueError: naming the argument, the value seen and what is accepted.
    """
    if reference not in REFERENCE_MODES:
        raise ValueError(f"reference={reference!r} is not one of {REFERENCE_MODES}")
    if task not in TASK_KINDS:
        raise ValueError(f"task={task!r} is not one of {TASK_KINDS}")
    if not is_int(size) or size < _MIN_SIZE:
        raise ValueError(f"size={size!r} must be an int >= {_MIN_SIZE} (NatureCNN's minimum)")
    if not is_int(horizon) or horizon < 1:
        raise ValueError(f"horizon={horizon!r} must be an int >= 1")
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode={render_mode!r}; accepted: None, 'rgb_array'")


def render_panels(core: UniGenCore, indices: Sequence[int] | None = None) -> list[np.ndarray]:
    """``canvas | target | mask`` of episodes ``indices`` (default all), uint8 (H, 3W, 3) each.

    A picture for people: it shows the target whatever the agent observes.
    """
    ids = list(range(core.n)) if indices is None else list(indices)
    sel = torch.as_tensor(ids, dtype=torch.int64, device=core.device)
    mask = core.mask[sel].expand(-1, 3, -1, -1)
    panel = torch.cat([core.canvas[sel], core.target[sel], mask], dim=3)
    u8 = (panel * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return [np.ascontiguousarray(p) for p in u8.cpu().numpy()]


class UniGenEnv(gym.Env[dict[str, np.ndarray], dict[str, Any]]):
    """Paint toward a reference (generation) or edit a masked region (editing).

    :param task: ``"generate"``, ``"edit"`` or ``"unified"`` (mixture, see ``edit_fraction``).
    :param size: canvas side in pixels (at least 36, NatureCNN's minimum).
    :param horizon: steps before truncation.
    :param device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    :param perceptual_backend: ``"auto"``, ``"stlpips"`` or ``"lpips"`` (see
        :class:`~unigen_sb3.rewards.perceptual.PerceptualDistance`).
    :param edit_fraction: probability of an editing task when ``task="unified"``.
    :param prompt_split: ``"train"`` (default), ``"heldout"`` or ``None`` (all prompts).
    :param reference: ``"hidden"`` (default: the agent sees the prompt encoding, never the
        target image) or ``"observed"`` (the observation also holds ``target``: the
        reconstruction task "paint the shown reference", with baselines of its own).
    :param seed: seeds the task sequence at construction, so episodes are reproducible even
        when the first ``reset`` passes no seed (as SB3 does).
    :param metric_dtype: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``: autocast
        dtype of the perceptual network's forward (see
        :class:`~unigen_sb3.rewards.mixed_precision.MixedPrecisionPerceptual`).
    :param dense_components: which reward components to compute on every step (see
        :func:`step_components_of`): ``False`` (default) computes them for the final canvas
        only, where the reward is paid, so the perceptual network runs about twice per
        episode; ``True`` or a list of names computes those every step too, for
        ``info["state_components"]`` (shaping, per-step logging). Paid rewards are the same
        bit for bit either way.
    :param task_bank_size: ``None`` (default): draw a task at every reset. An int ``B``: a
        seeded reset (and the first one) draws the next ``B`` tasks at once and keeps them
        on ``device`` (:class:`~unigen_sb3.envs.bank.TaskBank`); the following resets index
        them, repeating after ``B`` episodes (the first ``B`` are those played without a bank).
    :param task_bank_features: with a task bank, keep what the metric network gives for
        each banked task (its target's features, a shapes scene start's, the start's
        distance and the target's realism) from its first episode, so that a replayed task's
        episode runs the network on its final canvas only
        (:class:`~unigen_sb3.envs.bank.TargetFeatureCache`; same rewards bit for bit; 618 KiB
        per banked task at 64x64 with the default network, twice that for a task that
        starts from a shapes scene). Default ``False``.
    :param render_mode: ``"rgb_array"`` or ``None``.

    Example:
        >>> env = UniGenEnv(task="edit", seed=0)
        >>> obs, info = env.reset()
        >>> obs["canvas"].shape, info["task"]
        ((3, 64, 64), 'edit')
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self,
        task: str = "unified",
        *,
        size: int = DEFAULT_SIZE,
        horizon: int = DEFAULT_HORIZON,
        device: str | torch.device = "auto",
        perceptual_backend: str = "auto",
        edit_fraction: float = 0.5,
        prompt_split: str | None = "train",
        reference: str = "hidden",
        seed: int | None = None,
        metric_dtype: str | None = None,
        dense_components: bool | Sequence[str] = False,
        task_bank_size: int | None = None,
        task_bank_features: bool = False,
        render_mode: str | None = None,
    ) -> None:
        check_env_args(task, size, horizon, render_mode, reference)
        step_components = step_components_of(dense_components)
        self.task_bank_size = check_task_bank_size(task_bank_size)
        self.task_bank_features = check_task_bank_features(task_bank_features, task_bank_size)
        self.bank: TaskBank | None = None
        size, horizon = int(size), int(horizon)
        self.dense_components = dense_components
        self.task = task
        self.size = size
        self.horizon = horizon
        self.device = resolve_device(device)
        self.render_mode = render_mode
        self.reference = reference
        self.sampler = TaskSampler(
            task, size=size, edit_fraction=edit_fraction, prompt_split=prompt_split
        )
        self.metric_dtype = "float32" if metric_dtype is None else metric_dtype
        self.rewards = shared_reward_computer(
            perceptual_backend, self.device, size, self.metric_dtype
        )
        self.core = UniGenCore(
            1,
            size=size,
            horizon=horizon,
            device=self.device,
            rewards=self.rewards,
            observe_target=reference == "observed",
            step_components=step_components,
        )
        self.observation_space = observation_space(size, reference)  # type: ignore[assignment]
        self.action_space = action_space()
        self.reward_space = reward_space()
        self.reward_dim = 3
        self._needs_reset = True
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)

    @property
    def current_task(self) -> Task | None:
        """The running episode's task (privileged information: never observed by the agent)."""
        return self.core.tasks[0]

    def _obs(self) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.core.observations().items()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode with a task drawn from this env's RNG."""
        super().reset(seed=seed)
        if self.task_bank_size is None:
            task = self.sampler.sample(self.np_random, render=False)
            info = self.core.reset([0], [task])[0]
        else:
            if self.bank is None or seed is not None:
                self.bank = TaskBank(
                    self.sampler,
                    [self.np_random],
                    self.task_bank_size,
                    self.device,
                    keep_target_features=self.task_bank_features,
                )
                self.core.target_cache = self.bank.target_features
            tasks, images, rows = self.bank.next([0])
            info = self.core.reset([0], tasks, images, bank_rows=rows)[0]
        self._needs_reset = False
        return self._obs(), info

    def step(
        self, action: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one hybrid action; see the module docstring for checks and the reward."""
        if self._needs_reset:
            raise RuntimeError("step() called before reset() or after the episode ended")
        op, params = check_hybrid_action(action)
        res = self.core.step(np.array([op]), params[None])
        terminated, truncated = bool(res.terminated[0]), bool(res.truncated[0])
        self._needs_reset = terminated or truncated
        # MO-Gymnasium contract: the reward is a numpy vector (SB3 needs the unifier wrapper).
        return self._obs(), res.reward[0], terminated, truncated, res.infos[0]

    def action_masks(self) -> np.ndarray:
        """Op validity for the current task, (K,) bool (``attribute`` is invalid in generation)."""
        return self.core.op_masks()[0]

    def render(self) -> np.ndarray | None:
        """``canvas | target | mask`` side by side, uint8 (H, 3W, 3)."""
        if self.render_mode != "rgb_array":
            return None
        return render_panels(self.core)[0]
