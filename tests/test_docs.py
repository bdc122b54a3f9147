"""Every code block of README.md and docs/ runs (see ``docs_blocks.py`` for the rules).

Budgets, so that the whole file stays near a minute on 2 CPUs: ``model.learn`` stops after
:data:`DOC_TIMESTEPS` timesteps (whatever the block asks), ``evaluate_unigen`` scores at most
:data:`DOC_EPISODES` episodes, and ``unigen-sb3`` training commands get the ``--set``
overrides of :data:`CLI_BUDGET` (``UniGenEvalCallback`` evaluations are capped too). What a
block computes is not checked here, only that it runs as written; the features themselves
are tested where they live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import sets
from docs_blocks import Block, all_blocks, shell_commands
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

DOC_TIMESTEPS = 64
DOC_EPISODES = 4
CLI_BUDGET = [
    "training.total_timesteps=64",
    "training.n_envs=2",
    "evaluation.n_episodes=2",
    "ablation.n_seeds=1",
    "ablation.weight_grid=[]",
    "sweep.n_trials=1",
]
#: Blocks marked not to run; each says why. Keep this short.
MAX_SKIPPED = 8

BLOCKS = all_blocks()
RUN = [b for b in BLOCKS if b.kind not in ("prose",) and b.skip is None]


class _StopAfter(BaseCallback):
    """Stop ``learn`` after ``n`` timesteps of this call (mid-rollout too)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self._start = 0

    def _on_training_start(self) -> None:
        self._start = self.num_timesteps

    def _on_step(self) -> bool:
        return self.num_timesteps - self._start < self.n


def _tiny_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import unigen_sb3
    import unigen_sb3.evaluation as evaluation

    for cls in (OnPolicyAlgorithm, OffPolicyAlgorithm):
        original = cls.learn

        def learn(
            self: Any, total_timesteps: int, callback: Any = None, *a: Any, _o=original, **kw: Any
        ) -> Any:
            if callback is None:
                callbacks = []
            elif isinstance(callback, list):
                callbacks = list(callback)
            elif isinstance(callback, BaseCallback):
                callbacks = [callback]
            else:
                callbacks = [ConvertCallback(callback)]
            stop = CallbackList([*callbacks, _StopAfter(DOC_TIMESTEPS)])
            return _o(self, min(int(total_timesteps), DOC_TIMESTEPS), stop, *a, **kw)

        monkeypatch.setattr(cls, "learn", learn)

    original_eval = evaluation.evaluate_unigen

    def evaluate_unigen(*args: Any, **kwargs: Any) -> Any:
        args_list = list(args)
        if len(args_list) >= 3:
            args_list[2] = min(int(args_list[2]), DOC_EPISODES)
        if "n_episodes" in kwargs:
            kwargs["n_episodes"] = min(int(kwargs["n_episodes"]), DOC_EPISODES)
        return original_eval(*args_list, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_unigen", evaluate_unigen)
    monkeypatch.setattr(unigen_sb3, "evaluate_unigen", evaluate_unigen)

    from unigen_sb3.callbacks.evaluation import UniGenEvalCallback

    original_init = UniGenEvalCallback.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.n_episodes = min(self.n_episodes, DOC_EPISODES)

    monkeypatch.setattr(UniGenEvalCallback, "__init__", init)


def _run_shell(block: Block) -> None:
    from unigen_sb3.cli import main

    for words in shell_commands(block.code):
        assert words[0] == "unigen-sb3", (
            f"{block.id}: `{' '.join(words)}` is not a unigen-sb3 command; run it here or mark "
            "the block <!-- docs-test: skip: REASON -->"
        )
        argv = words[1:]
        # `eval --pretrained` takes no overrides (it reproduces the shipped eval.json); the
        # episode cap below still applies to it.
        if argv and argv[0] in ("train", "eval", "ablate", "sweep") and "--pretrained" not in argv:
            argv += sets(CLI_BUDGET)
        try:
            code = main(argv)
        except SystemExit as exc:  # --version, --help
            code = int(exc.code or 0)
        assert code == 0, f"{block.id}: `{' '.join(words)}` exited {code}"


def _run_yaml(block: Block) -> None:
    from unigen_sb3.configs import load_config
    from unigen_sb3.experiments.runner import check_experiment

    check_experiment(load_config(yaml.safe_load(block.code)))


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_doc_block_runs(
    block: Block,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    _tiny_budget(monkeypatch)
    if block.kind == "python":
        exec(compile(block.code, block.id, "exec"), {"__name__": "__docs__"})
    elif block.kind == "yaml":
        _run_yaml(block)
    elif block.kind == "shell":
        _run_shell(block)
    else:
        pytest.fail(f"{block.id}: no rule to run a ```{block.lang} block (see docs_blocks.py)")


def test_blocks_that_do_not_run_are_few_and_say_why() -> None:
    skipped = [b for b in BLOCKS if b.skip is not None]
    listing = "\n".join(f"{b.id} ({b.lang}): {b.skip}" for b in skipped)
    print(f"\n{len(skipped)} doc blocks not run:\n{listing}")
    assert all(len(b.skip or "") >= 10 for b in skipped), listing
    assert len(skipped) <= MAX_SKIPPED, listing
    assert RUN, "no doc block found to run"


def test_runner_extracts_blocks_commands_and_markers(tmp_path: Path) -> None:
    from docs_blocks import blocks

    doc = tmp_path / "x.md"
    doc.write_text(
        "text\n```python\nx = 1\n```\n<!-- docs-test: skip: needs network -->\n```bash\n"
        "pip install a \\\n  b  # comment\n```\n```\nR = a + b\n```\n",
        "utf-8",
    )
    found = blocks(doc, root=tmp_path)
    assert [(b.line, b.lang, b.kind, b.skip) for b in found] == [
        (2, "python", "python", None),
        (6, "bash", "shell", "needs network"),
        (10, "", "prose", None),
    ]
    assert shell_commands(found[1].code) == [["pip", "install", "a", "b"]]
