"""A native hybrid-action actor-critic policy on the flat ``box`` encoding.

The UniGen action is ``Dict{op: Discrete(K), params: Box(-1, 1, (P,))}``; the ``box``
encoding (:class:`~unigen_sb3.wrappers.actions.BoxCodec`) flattens it into
``Box(-1, 1, (K + P,))``: K op scores (op = argmax) followed by the P parameters. SB3's
``CnnPolicy`` treats those K + P numbers as one diagonal Gaussian, so the op is chosen by
the argmax of K noisy scores and every parameter is explored whether the op reads it or not.
:class:`HybridActorCriticPolicy` keeps the same flat space (so PPO, A2C, VecEnvs, callbacks
and the CLI work unchanged) but acts with the hybrid distribution itself
(:class:`HybridDistribution`):

- op ``k ~ Categorical(softmax(logits))`` over the K ops;
- params ``~ Normal(mean[k], exp(log_std[k]))``: a ``(K, P)`` mean head (the chosen op's row
  is used, so each op has its own parameter means) and a learned ``(K, P)`` log-std;
- the emitted flat action is the op one-hot mapped to ``{-1, +1}`` followed by the P params;
- ``log p(a) = log p(k) + sum_{j in reads(k)} log N(a_j; mean[k, j], std[k, j])``: only the
  parameters the op reads (``OP_PARAMS`` of :mod:`unigen_sb3.envs.canvas`) count, so the
  ones it ignores get no credit and no blame;
- ``H = H(op) + sum_k p(k) sum_{j in reads(k)} H(Normal(std[k, j]))``, exact (not sampled).

Masks follow sb3-contrib's ``MaskableActorCriticPolicy`` protocol: ``forward``,
``evaluate_actions``, ``get_distribution`` and ``predict`` take ``action_masks`` in the
``box`` wrapper's layout, the ``(K,)`` / ``(N, K)`` op-validity mask
(:meth:`BoxCodec.action_masks <unigen_sb3.wrappers.actions.BoxCodec.action_masks>`); a
masked op gets probability 0. SB3's PPO and A2C pass no masks (and MaskablePPO refuses Box
action spaces), so during their training every op stays possible; see ``docs/hybrid_policy.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from unigen_sb3.envs import canvas

__all__ = [
    "HybridActorCriticPolicy",
    "HybridCnnPolicy",
    "HybridDistribution",
    "HybridMultiInputPolicy",
    "op_param_table",
]

SelfHybridDistribution = TypeVar("SelfHybridDistribution", bound="HybridDistribution")

MaybeMasks = th.Tensor | np.ndarray | None

_MASKED_LOGIT = -1e8  # as sb3-contrib's MaskableCategorical: exp() of it is exactly 0 in float32
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def op_param_table(
    op_params: Mapping[str, Sequence[str]] | None = None,
    param_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Which parameters each op reads, as a ``(K, P)`` bool table.

    :param op_params: op name -> the names of the parameters it reads, in op-id order;
        ``None``: :data:`unigen_sb3.envs.canvas.OP_PARAMS`, read now (not at import).
    :param param_names: the parameter names in parameter order; ``None``:
        :data:`unigen_sb3.envs.canvas.PARAM_NAMES`.
    :return: ``table[k, j]`` is True when op ``k`` reads parameter ``j``.
    :raises ValueError: for an empty table or a parameter name that is not in ``param_names``.

    Example:
        >>> op_param_table({"stop": (), "paint": ("x", "colour")}, ("x", "y", "colour")).tolist()
        [[False, False, False], [True, False, True]]
    """
    if op_params is None:
        op_params = canvas.OP_PARAMS
    if param_names is None:
        param_names = canvas.PARAM_NAMES
    if not isinstance(op_params, Mapping) or len(op_params) == 0:
        raise ValueError(f"op_params must be a non-empty mapping op -> params, got {op_params!r}")
    names = tuple(param_names)
    table = np.zeros((len(op_params), len(names)), dtype=bool)
    for k, (op, reads) in enumerate(op_params.items()):
        if isinstance(reads, str):
            raise ValueError(f"op_params[{op!r}] must be a sequence of names, got {reads!r}")
        for name in reads:
            if name not in names:
                raise ValueError(
                    f"op_params[{op!r}] names the unknown parameter {name!r}; accepted: {names}"
                )
            table[k, names.index(name)] = True
    return table


def _mask_rows(
    masks: th.Tensor | np.ndarray, batch: int, num_ops: int, device: th.device
) -> th.Tensor:
    """Op masks as a ``(batch, K)`` bool tensor (one row is broadcast to every row)."""
    mask = th.as_tensor(masks, device=device).reshape(-1)
    if mask.numel() % num_ops != 0:
        raise ValueError(
            f"action_masks has {mask.numel()} entries; expected the box layout, "
            f"(K,) or (N, K) op validity with K={num_ops}"
        )
    rows = mask.reshape(-1, num_ops)
    if rows.dtype != th.bool:
        if not th.all((rows == 0) | (rows == 1)):
            raise ValueError(
                f"action_masks must be bool or 0/1, got values {th.unique(rows).tolist()}"
            )
        rows = rows.bool()
    if rows.shape[0] == 1 and batch != 1:
        rows = rows.expand(batch, num_ops)
    if rows.shape[0] != batch:
        raise ValueError(
            f"action_masks has {rows.shape[0]} rows of {num_ops} ops for {batch} observations"
        )
    empty = ~rows.any(dim=1)
    if bool(empty.any()):
        i = int(th.nonzero(empty)[0, 0])
        raise ValueError(f"action_masks[{i}] masks every op; at least one op must stay valid")
    return rows


class HybridDistribution(Distribution):
    """Categorical op x per-op diagonal Gaussian parameters, on the flat ``box`` layout.

    A flat action is ``(K + P,)``: the op is the argmax of the first K entries (as
    :class:`~unigen_sb3.wrappers.actions.BoxCodec` decodes it), the params are the last P.

    :param reads: ``(K, P)`` bool, which parameters each op reads (:func:`op_param_table`).
    """

    def __init__(self, reads: th.Tensor | np.ndarray) -> None:
        super().__init__()
        table = th.as_tensor(reads, dtype=th.bool)
        if table.ndim != 2 or table.shape[0] < 1:
            raise ValueError(
                f"reads must be a (K, P) bool table with K >= 1, got {tuple(table.shape)}"
            )
        self.reads = table
        self.num_ops, self.num_params = int(table.shape[0]), int(table.shape[1])
        self.op_logits: th.Tensor
        self.param_means: th.Tensor
        self.log_std: th.Tensor
        self.op_mask: th.Tensor | None = None

    def proba_distribution_net(  # type: ignore[override]
        self, latent_dim: int, log_std_init: float = 0.0
    ) -> tuple[nn.Module, nn.Module, nn.Parameter]:
        """The op-logit head ``(K,)``, the parameter-mean head ``(K * P,)`` and the ``(K, P)``
        log-std parameter.

        :param latent_dim: size of the policy latent.
        :param log_std_init: initial log-std of every (op, parameter).
        """
        op_net = nn.Linear(latent_dim, self.num_ops)
        mean_net = nn.Linear(latent_dim, self.num_ops * self.num_params)
        log_std = nn.Parameter(
            th.full((self.num_ops, self.num_params), float(log_std_init)), requires_grad=True
        )
        return op_net, mean_net, log_std

    def proba_distribution(
        self: SelfHybridDistribution,
        op_logits: th.Tensor,
        param_means: th.Tensor,
        log_std: th.Tensor,
    ) -> SelfHybridDistribution:
        """Set the distribution's parameters (clears any mask).

        :param op_logits: ``(B, K)`` op logits.
        :param param_means: ``(B, K, P)`` (or ``(B, K * P)``) parameter means per op.
        :param log_std: ``(K, P)`` log-std per (op, parameter).
        """
        batch = op_logits.shape[0]
        self.op_logits = op_logits
        self.param_means = param_means.reshape(batch, self.num_ops, self.num_params)
        self.log_std = log_std
        self.op_mask = None
        self.reads = self.reads.to(op_logits.device)  # a no-op once it is there
        return self

    def apply_masking(self, masks: MaybeMasks) -> None:
        """Give the ops ``masks`` marks False probability 0 (``None`` removes the mask).

        :param masks: ``(K,)`` or ``(B, K)`` op validity (bool or 0/1), the ``box`` layout.
        :raises ValueError: for a wrong size or a row that masks every op.
        """
        if masks is None:
            self.op_mask = None
            return
        self.op_mask = _mask_rows(
            masks, self.op_logits.shape[0], self.num_ops, self.op_logits.device
        )

    # ------------------------------------------------------------------ pieces
    def _logits(self) -> th.Tensor:
        if self.op_mask is None:
            return self.op_logits
        return th.where(self.op_mask, self.op_logits, th.full_like(self.op_logits, _MASKED_LOGIT))

    def op_log_probs(self) -> th.Tensor:
        """``(B, K)`` log-probabilities of the ops (masked ops about ``-1e8``)."""
        return th.log_softmax(self._logits(), dim=-1)

    def op_probs(self) -> th.Tensor:
        """``(B, K)`` probabilities of the ops (masked ops exactly 0)."""
        return th.softmax(self._logits(), dim=-1)

    def split(self, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Flat actions ``(B, K + P)`` -> ops ``(B,)`` (argmax of the op scores) and params
        ``(B, P)``."""
        flat = actions.reshape(-1, self.num_ops + self.num_params)
        return flat[:, : self.num_ops].argmax(dim=-1), flat[:, self.num_ops :]

    def join(self, ops: th.Tensor, params: th.Tensor) -> th.Tensor:
        """Ops ``(B,)`` and params ``(B, P)`` -> flat actions, the op as +1 among -1."""
        one_hot = nn.functional.one_hot(ops, self.num_ops).to(params.dtype)
        return th.cat([2.0 * one_hot - 1.0, params], dim=-1)

    def _rows(self, ops: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Means ``(B, P)``, log-stds ``(B, P)`` and reads ``(B, P)`` of each row's op."""
        means = self.param_means[th.arange(ops.shape[0], device=ops.device), ops]
        return means, self.log_std[ops], self.reads[ops]

    def param_log_prob(self, ops: th.Tensor, params: th.Tensor) -> th.Tensor:
        """``(B,)`` Gaussian log-density of the parameters each op reads (others ignored)."""
        means, log_std, reads = self._rows(ops)
        z = (params - means) * th.exp(-log_std)
        log_pdf = -0.5 * z.pow(2) - log_std - _HALF_LOG_2PI
        return th.where(reads, log_pdf, th.zeros_like(log_pdf)).sum(dim=-1)

    def op_entropy(self) -> th.Tensor:
        """``(B,)`` entropy of the op choice (masked ops contribute 0)."""
        log_p = self.op_log_probs()
        p_log_p = log_p.exp() * log_p
        return -th.where(p_log_p.isfinite(), p_log_p, th.zeros_like(p_log_p)).sum(dim=-1)

    def param_entropy(self) -> th.Tensor:
        """``(B,)`` ``sum_k p(k) * H(params op k reads)``: the expected parameter entropy."""
        per_entry = self.log_std + 0.5 + _HALF_LOG_2PI
        per_op = th.where(self.reads, per_entry, th.zeros_like(per_entry)).sum(dim=-1)
        return self.op_probs() @ per_op

    # ------------------------------------------------------------------ Distribution API
    def log_prob(self, actions: th.Tensor) -> th.Tensor:
        """``(B,)`` ``log p(op) + log N(read params)`` of flat actions (op = argmax)."""
        ops, params = self.split(actions)
        op_lp = self.op_log_probs().gather(1, ops[:, None])[:, 0]
        return op_lp + self.param_log_prob(ops, params)

    def entropy(self) -> th.Tensor:
        """``(B,)`` exact entropy ``H(op) + sum_k p(k) H(params of k)``."""
        return self.op_entropy() + self.param_entropy()

    def sample(self) -> th.Tensor:
        """Flat actions: an op from the categorical, then all P params from its Gaussian
        (the parameters it does not read are sampled too; the env ignores them)."""
        ops = th.distributions.Categorical(logits=self._logits()).sample()
        means, log_std, _ = self._rows(ops)
        return self.join(ops, means + th.exp(log_std) * th.randn_like(means))

    def mode(self) -> th.Tensor:
        """Flat actions: the most likely op and its mean parameters."""
        ops = self._logits().argmax(dim=-1)
        means, _, _ = self._rows(ops)
        return self.join(ops, means)

    def actions_from_params(
        self,
        op_logits: th.Tensor,
        param_means: th.Tensor,
        log_std: th.Tensor,
        deterministic: bool = False,
    ) -> th.Tensor:
        """Set the parameters and return actions (see :meth:`proba_distribution`)."""
        self.proba_distribution(op_logits, param_means, log_std)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(
        self, op_logits: th.Tensor, param_means: th.Tensor, log_std: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """Sampled actions and their log-probabilities."""
        actions = self.actions_from_params(op_logits, param_means, log_std)
        return actions, self.log_prob(actions)


class HybridActorCriticPolicy(ActorCriticPolicy):
    """Actor-critic policy with a categorical op and per-op Gaussian parameters.

    For SB3's PPO and A2C on the ``box`` action encoding (``Box(-1, 1, (K + P,))``); the
    parameters are SB3's :class:`~stable_baselines3.common.policies.ActorCriticPolicy`'s, plus
    ``op_params``. See the module docstring for the distribution and the masks.

    :param observation_space: the observation space.
    :param action_space: ``Box(-1, 1, (K + P,))`` with K = ``len(op_params)`` and P =
        ``len(PARAM_NAMES)``.
    :param lr_schedule: learning-rate schedule.
    :param net_arch: the policy and value networks (as SB3's).
    :param activation_fn: activation function.
    :param ortho_init: orthogonal initialization (the op and mean heads get gain 0.01).
    :param use_sde: must be False (gSDE has no hybrid form).
    :param log_std_init: initial log-std of every (op, parameter).
    :param full_std: gSDE only; ignored.
    :param use_expln: gSDE only; ignored.
    :param squash_output: must be False.
    :param features_extractor_class: features extractor.
    :param features_extractor_kwargs: its keyword arguments.
    :param share_features_extractor: share the extractor between actor and critic.
    :param normalize_images: divide images by 255.
    :param optimizer_class: optimizer.
    :param optimizer_kwargs: optimizer keyword arguments (besides the learning rate).
    :param op_params: op name -> parameter names it reads, in op-id order; ``None``: the
        canvas's :data:`~unigen_sb3.envs.canvas.OP_PARAMS` when the policy is built. The
        resolved table is saved with the model, so a loaded model keeps the distribution it
        was trained with.
    :raises ValueError: for another action space, ``use_sde`` or ``squash_output``.

    Example:
        >>> from stable_baselines3 import PPO
        >>> from unigen_sb3 import make_unigen_env
        >>> from unigen_sb3.policies import HybridCnnPolicy
        >>> model = PPO(HybridCnnPolicy, make_unigen_env(size=36), n_steps=8, batch_size=8)
        >>> model.policy.param_log_std.shape
        torch.Size([6, 8])
    """

    action_dist: HybridDistribution

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        op_params: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if use_sde or squash_output:
            raise ValueError(
                f"{type(self).__name__} has no gSDE form: got use_sde={use_sde}, "
                f"squash_output={squash_output}; both must be False"
            )
        resolved = canvas.OP_PARAMS if op_params is None else op_params
        reads = op_param_table(resolved)
        # Stored resolved (plain lists) so that save/load rebuilds the same distribution.
        self.op_params = {str(op): list(names) for op, names in resolved.items()}
        num_ops, num_params = reads.shape
        expected = (num_ops + num_params,)
        if not isinstance(action_space, spaces.Box) or action_space.shape != expected:
            raise ValueError(
                f"{type(self).__name__} needs the flat `box` action space Box(-1, 1, {expected}) "
                f"({num_ops} op scores + {num_params} params, make_unigen_env(action='box')), "
                f"got {action_space!r}"
            )
        self._reads = reads
        self._entropy_sums: th.Tensor | None = None
        self._entropy_calls = 0
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            ortho_init,
            use_sde,
            log_std_init,
            full_std,
            use_expln,
            squash_output,
            features_extractor_class,
            features_extractor_kwargs,
            share_features_extractor,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )

    @property
    def num_ops(self) -> int:
        """K, the number of ops."""
        return int(self._reads.shape[0])

    @property
    def num_params(self) -> int:
        """P, the number of parameters."""
        return int(self._reads.shape[1])

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(op_params=self.op_params)
        return data

    def _build(self, lr_schedule: Schedule) -> None:
        """Create the networks (hybrid heads instead of SB3's action net) and the optimizer."""
        self._build_mlp_extractor()
        self.action_dist = HybridDistribution(self._reads)
        self.op_net, self.param_mean_net, self.param_log_std = (
            self.action_dist.proba_distribution_net(
                self.mlp_extractor.latent_dim_pi, log_std_init=self.log_std_init
            )
        )
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            module_gains: dict[nn.Module, float] = {
                self.mlp_extractor: np.sqrt(2),
                self.op_net: 0.01,
                self.param_mean_net: 0.01,
                self.value_net: 1.0,
            }
            if self.share_features_extractor:
                module_gains[self.features_extractor] = np.sqrt(2)
            else:
                module_gains[self.pi_features_extractor] = np.sqrt(2)
                module_gains[self.vf_features_extractor] = np.sqrt(2)
            for module, gain in module_gains.items():
                module.apply(partial(self.init_weights, gain=gain))
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_action_dist_from_latent(
        self, latent_pi: th.Tensor, action_masks: MaybeMasks = None
    ) -> HybridDistribution:
        dist = self.action_dist.proba_distribution(
            self.op_net(latent_pi), self.param_mean_net(latent_pi), self.param_log_std
        )
        dist.apply_masking(action_masks)
        return dist

    def _latents(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        features = self.extract_features(obs)
        if self.share_features_extractor:
            return self.mlp_extractor(features)
        pi_features, vf_features = features
        return (
            self.mlp_extractor.forward_actor(pi_features),
            self.mlp_extractor.forward_critic(vf_features),
        )

    def forward(
        self, obs: PyTorchObs, deterministic: bool = False, action_masks: MaybeMasks = None
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Actions, values and log-probabilities (as SB3's, with optional op masks).

        :param obs: observations.
        :param deterministic: most likely op and its mean parameters instead of a sample.
        :param action_masks: ``(K,)`` / ``(B, K)`` op validity, or None (every op possible).
        :return: flat actions ``(B, K + P)`` (unclipped), values ``(B, 1)``, log-probs ``(B,)``.
        """
        latent_pi, latent_vf = self._latents(obs)
        values = self.value_net(latent_vf)
        dist = self._get_action_dist_from_latent(latent_pi, action_masks)
        actions = dist.get_actions(deterministic=deterministic)
        return actions, values, dist.log_prob(actions)

    def evaluate_actions(
        self, obs: PyTorchObs, actions: th.Tensor, action_masks: MaybeMasks = None
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Values, log-probabilities and exact entropies of flat actions.

        The op is the argmax of the first K entries, the params the last P (as the env
        decodes them). In training mode (PPO's and A2C's ``train()``) the mean op and
        parameter entropies are also accumulated for :meth:`pop_entropy_stats`.

        :param obs: observations.
        :param actions: ``(B, K + P)`` flat actions as stored in the rollout buffer.
        :param action_masks: ``(K,)`` / ``(B, K)`` op validity, or None.
        :return: values ``(B, 1)``, log-probs ``(B,)``, entropies ``(B,)``.
        """
        latent_pi, latent_vf = self._latents(obs)
        dist = self._get_action_dist_from_latent(latent_pi, action_masks)
        log_prob = dist.log_prob(actions)
        op_entropy, param_entropy = dist.op_entropy(), dist.param_entropy()
        if self.training and th.is_grad_enabled():
            means = th.stack([op_entropy.mean(), param_entropy.mean()]).detach()
            self._entropy_sums = means if self._entropy_sums is None else self._entropy_sums + means
            self._entropy_calls += 1
        return self.value_net(latent_vf), log_prob, op_entropy + param_entropy

    def pop_entropy_stats(self) -> dict[str, float] | None:
        """Mean op and parameter entropies of the training batches since the last call.

        SB3's PPO logs only the total (``train/entropy_loss`` = minus their sum, averaged the
        same way); :class:`~unigen_sb3.callbacks.HybridEntropyCallback` logs these two.

        :return: ``{"op_entropy", "param_entropy"}``, or None when no training batch was
            evaluated since the last call.
        """
        if self._entropy_sums is None or self._entropy_calls == 0:
            return None
        op, param = (self._entropy_sums / self._entropy_calls).tolist()
        self._entropy_sums, self._entropy_calls = None, 0
        return {"op_entropy": float(op), "param_entropy": float(param)}

    def get_distribution(
        self, obs: PyTorchObs, action_masks: MaybeMasks = None
    ) -> HybridDistribution:
        """The action distribution for ``obs`` (masked ops get probability 0)."""
        features = super(ActorCriticPolicy, self).extract_features(obs, self.pi_features_extractor)
        latent_pi = self.mlp_extractor.forward_actor(features)
        return self._get_action_dist_from_latent(latent_pi, action_masks)

    def _predict(
        self, observation: PyTorchObs, deterministic: bool = False, action_masks: MaybeMasks = None
    ) -> th.Tensor:
        return self.get_distribution(observation, action_masks).get_actions(deterministic)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Actions for observations, clipped to the Box (as SB3's ``predict``).

        :param observation: one observation or a batch.
        :param state: unused (no recurrence), returned as is.
        :param episode_start: unused.
        :param deterministic: the most likely op and its mean parameters.
        :param action_masks: ``(K,)`` / ``(N, K)`` op validity (e.g. ``env.action_masks()``),
            or None. ``model.predict`` of PPO/A2C cannot pass it: call
            ``model.policy.predict(obs, action_masks=...)``.
        :return: the flat actions and ``state``.
        """
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        with th.no_grad():
            actions = self._predict(obs_tensor, deterministic, action_masks=action_masks)
        out = actions.cpu().numpy().reshape(-1, self.num_ops + self.num_params)
        box = self.action_space
        assert isinstance(box, spaces.Box)  # checked in __init__
        out = np.clip(out, box.low, box.high)
        if not vectorized_env:
            out = out.squeeze(axis=0)
        return out, state


class HybridCnnPolicy(HybridActorCriticPolicy):
    """:class:`HybridActorCriticPolicy` with SB3's ``NatureCNN`` (for ``obs="image"``).

    Same parameters as :class:`HybridActorCriticPolicy`; ``features_extractor_class``
    defaults to :class:`~stable_baselines3.common.torch_layers.NatureCNN`.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        lr_schedule: Schedule,
        *,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )


class HybridMultiInputPolicy(HybridActorCriticPolicy):
    """:class:`HybridActorCriticPolicy` with SB3's ``CombinedExtractor`` (for ``obs="dict"``).

    Same parameters as :class:`HybridActorCriticPolicy`; ``features_extractor_class``
    defaults to :class:`~stable_baselines3.common.torch_layers.CombinedExtractor`.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        lr_schedule: Schedule,
        *,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )
