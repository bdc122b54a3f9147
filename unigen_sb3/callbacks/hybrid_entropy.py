"""``HybridEntropyCallback``: the op and parameter entropies of a hybrid policy, logged apart.

SB3's PPO and A2C log one entropy, ``train/entropy_loss`` (minus the mean entropy over the
training batches). With :class:`~unigen_sb3.policies.HybridActorCriticPolicy` that entropy
is ``H(op) + E_op[H(params the op reads)]``; this callback logs the two terms:

=======================  ====================================================================
key                      value
=======================  ====================================================================
``train/op_entropy``     mean entropy of the op choice over the last ``train()``'s batches
``train/param_entropy``  mean expected entropy of the read parameters, same batches
=======================  ====================================================================

They are averaged exactly as ``train/entropy_loss`` is, so
``op_entropy + param_entropy == -entropy_loss`` for the same update. SB3 calls ``train()``
after dumping the logs of an iteration, so, like SB3's own ``train/*`` keys, they appear at
the next dump (the last update of a run is not dumped).

The policy is found by method name: anything with ``pop_entropy_stats() -> dict | None``.
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["HybridEntropyCallback"]

_METHOD = "pop_entropy_stats"


class HybridEntropyCallback(BaseCallback):
    """Log ``train/op_entropy`` and ``train/param_entropy`` of a hybrid policy.

    :param verbose: SB3 verbosity.
    :raises TypeError: at the start of training, if the model's policy has no
        ``pop_entropy_stats()`` (it is not a hybrid policy).

    Example:
        >>> from stable_baselines3 import PPO  # doctest: +SKIP
        >>> from unigen_sb3.policies import HybridCnnPolicy  # doctest: +SKIP
        >>> model = PPO(HybridCnnPolicy, make_unigen_env(), tensorboard_log="tb")  # doctest: +SKIP
        >>> model.learn(4096, callback=HybridEntropyCallback())  # doctest: +SKIP
    """

    def _init_callback(self) -> None:
        policy = self.model.policy
        if not callable(getattr(policy, _METHOD, None)):
            raise TypeError(
                f"HybridEntropyCallback needs a policy with {_METHOD}() (a hybrid policy such "
                f"as unigen_sb3.policies.HybridCnnPolicy), got {type(policy).__name__}"
            )
        # Entropies of evaluate_actions calls made before training are not training batches.
        getattr(policy, _METHOD)()

    def _on_rollout_start(self) -> None:
        # A rollout starts right after the previous train(): its batches are complete.
        stats = getattr(self.model.policy, _METHOD)()
        if stats:
            for key, value in stats.items():
                self.logger.record(f"train/{key}", value)

    def _on_step(self) -> bool:
        return True
