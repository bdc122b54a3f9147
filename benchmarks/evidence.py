"""The evidence suite: every config of ``configs/evidence/`` over its seeds, with baselines.

``make evidence`` runs this; ``make evidence-quick`` (``--quick``) runs the same plan at smoke
size in a few minutes (a pipeline check, never evidence). Then
``unigen-sb3 report runs/evidence --out docs`` writes ``docs/results.md``.

For each suite ``configs/evidence/NAME.yaml`` (``unified``, ``edit``, ``generate``,
``sac_unified``), in that order, into ``OUT/NAME/``:

1. ``unigen-sb3 ablate`` of the config (its variants times ``ablation.n_seeds`` seeds, two
   runs at once by default): run folders ``OUT/NAME/<variant>/seed_<s>/`` and
   ``OUT/NAME/ablation.json``;
2. ``baselines.json``: Random, NoOp, Blind (the best prompt-blind open-loop sequence) and
   the Oracle, evaluated on the same held-out tasks as every run of the suite (the configs
   fix ``evaluation.seed``);
3. ``before_after.png``: start | agent | target of the first seed's main run, with prompts;
4. for a warm-started suite, ``clone_eval.json`` in each main run: the cloned policy (the
   policy PPO started from, read from the suite's cloning cache) evaluated on the same test
   tasks, so the page can say what RL added to it on the tasks that report the agent.

``OUT/evidence.json`` lists the suites for the report. Re-running the same command finishes
what is missing: finished runs, baselines and pictures are kept, interrupted runs resume.

Usage::

    python benchmarks/evidence.py [--out runs/evidence] [--max-parallel 2] [--only unified]
    python benchmarks/evidence.py --quick --out /tmp/evidence_quick
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from unigen_sb3.configs import load_config
from unigen_sb3.configs.schema import ExperimentConfig
from unigen_sb3.evaluation.baselines import BASELINE_LABELS
from unigen_sb3.experiments.ablation import WARM_START_CACHE, run_ablation
from unigen_sb3.utils import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs" / "evidence"
#: Suite name -> (role, main variant). Order is run order: the headline agents first.
SUITES: dict[str, tuple[str, str]] = {
    "unified": ("agent+ablation", "full"),
    "edit": ("agent", "full"),
    "generate": ("agent", "full"),
    "sac_unified": ("agent", "full"),
}
#: ``--quick``: the same plan at smoke size (2 seeds, a few hundred timesteps, 8 demos).
QUICK_SETTINGS = [
    "ablation.n_seeds=2",
    "evaluation.n_episodes=4",
    "callbacks.eval_episodes=2",
]
QUICK_ON_POLICY = [
    "training.total_timesteps=1024",
    "training.warm_start.demos=8",
    "training.warm_start.bc_epochs=2",
    "training.warm_start.critic_warmup=512",
    "callbacks.eval_freq=64",
]
QUICK_SAC = [
    "training.total_timesteps=256",
    "algorithm.kwargs.learning_starts=64",
    "algorithm.kwargs.buffer_size=256",
    "callbacks.eval_freq=128",
]
#: The keys of ``baselines.json``.
BASELINE_NAMES = tuple(BASELINE_LABELS)
#: The cloned policy's evaluation on the test tasks, in each warm-started main run.
CLONE_EVAL = "clone_eval.json"


def _progress(name: str, label: str) -> None:
    print(f"[evidence] {name}: {label}", flush=True)


def suite_config(name: str, quick: bool) -> ExperimentConfig:
    """The config of suite ``name``, with the ``--quick`` settings when asked."""
    overrides: list[str] = []
    if quick:
        overrides = [*QUICK_SETTINGS, *(QUICK_SAC if name.startswith("sac") else QUICK_ON_POLICY)]
    return load_config(CONFIG_DIR / f"{name}.yaml", overrides)


def budget_text(config: ExperimentConfig) -> str:
    """One line: what one run of the suite trains with."""
    t = config.training
    warm = t.warm_start
    parts = [f"{t.total_timesteps} timesteps per run"]
    if warm.demos:
        parts.append(
            f"behaviour cloning of {warm.demos} Oracle episodes first, then "
            f"{warm.critic_warmup} timesteps of critic warm-up (counted in the timesteps)"
        )
    if config.callbacks.early_stop_patience is not None:
        parts.append(
            f"early stopping after {config.callbacks.early_stop_patience} validation "
            f"evaluations without a new best ({config.callbacks.eval_episodes} validation tasks)"
        )
    parts.append(f"{t.torch_threads or 'all'} torch thread(s), {t.n_envs} env(s)")
    parts.append(f"{config.ablation.n_seeds} seeds, {config.evaluation.n_episodes} test tasks")
    return "; ".join(parts)


def write_baselines(config: ExperimentConfig, path: Path) -> None:
    """Random, NoOp, Blind and Oracle on the suite's evaluation tasks, as ``eval.json``s."""
    from unigen_sb3.evaluation import evaluate_unigen
    from unigen_sb3.evaluation.baselines import baseline_policies
    from unigen_sb3.experiments.runner import apply_torch_threads, eval_seed
    from unigen_sb3.spec import UniGenSpec

    apply_torch_threads(config)
    spec = UniGenSpec.from_config(config, evaluation=True)
    n, seed = config.evaluation.n_episodes, eval_seed(config)
    split = config.evaluation.prompt_split
    policies = baseline_policies(spec, n, seed, prompt_split=split)
    reports = {
        name: evaluate_unigen(policy, spec, n, seed, prompt_split=split)
        for name, policy in policies.items()
    }
    atomic_write_text(path, json.dumps(reports, indent=2, sort_keys=True) + "\n")


def write_picture(config: ExperimentConfig, run_dir: Path, path: Path) -> None:
    """``before_after.png`` of a finished run: 4 held-out tasks, both kinds, with prompts."""
    from PIL import Image

    from unigen_sb3.evaluation.baselines import before_after_image
    from unigen_sb3.experiments.algorithms import get_algorithm_class
    from unigen_sb3.experiments.runner import apply_torch_threads, eval_seed
    from unigen_sb3.spec import UniGenSpec

    apply_torch_threads(config)
    model = get_algorithm_class(config.algorithm.name).load(run_dir / "model.zip", device="cpu")
    spec = UniGenSpec.from_config(config, evaluation=True)
    image = before_after_image(
        model,
        spec,
        4,
        eval_seed(config),
        prompt_split=config.evaluation.prompt_split,
        model_name=f"{config.algorithm.name} ({run_dir.parent.name}, {run_dir.name})",
    )
    Image.fromarray(image).save(path)


def write_clone_evals(folder: Path, main_variant: str) -> None:
    """``clone_eval.json`` of every warm-started main run that lacks one (see step 4)."""
    import torch

    from unigen_sb3.experiments.algorithms import get_algorithm_class
    from unigen_sb3.experiments.runner import apply_torch_threads, evaluate_model

    for run in sorted((folder / main_variant).glob("seed_*")):
        report = run / "warm_start.json"
        if (run / CLONE_EVAL).exists() or not report.is_file() or not (run / "eval.json").exists():
            continue
        key = json.loads(report.read_text("utf-8"))["key"]
        weights = folder / WARM_START_CACHE / key / "policy.pt"
        if not weights.is_file():
            print(f"[evidence] {run}: the cloned policy {weights} is gone; no {CLONE_EVAL}")
            continue
        config = load_config(run / "config.yaml")
        apply_torch_threads(config)
        model = get_algorithm_class(config.algorithm.name).load(run / "model.zip", device="cpu")
        model.policy.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        evaluate_model(model, config, path=run / CLONE_EVAL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "evidence")
    parser.add_argument("--quick", action="store_true", help="smoke size: minutes, not evidence")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(SUITES), default=None, help="run these suites only"
    )
    parser.add_argument("--executor", choices=("local", "processes", "ray"), default="processes")
    parser.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help="runs at once (processes: default 2; ray: as many as the cluster schedules)",
    )
    args = parser.parse_args(argv)
    if args.max_parallel is not None and args.max_parallel < 1:
        parser.error(f"--max-parallel {args.max_parallel} must be >= 1")
    if args.max_parallel is None and args.executor == "processes":
        args.max_parallel = 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "evidence.json"
    manifest: dict[str, Any] = {"schema": 1, "quick": args.quick, "suites": []}
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text("utf-8"))
        if bool(old.get("quick")) != args.quick:
            parser.error(
                f"{out} holds a {'quick' if old.get('quick') else 'full'} evidence run; "
                "use another --out for the other kind"
            )
        manifest = old
    command = "python benchmarks/evidence.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    manifest["command"] = "make evidence-quick" if args.quick else "make evidence"
    manifest["last_command"] = command.strip()
    seconds: dict[str, float] = dict(manifest.get("seconds", {}))
    names = args.only or list(SUITES)
    for name in names:
        role, main_variant = SUITES[name]
        config = suite_config(name, args.quick)
        folder = out / name
        started = time.perf_counter()
        print(f"[evidence] {name}: {budget_text(config)}", flush=True)
        run_ablation(
            config,
            folder,
            executor=args.executor,
            max_parallel=args.max_parallel,
            progress=functools.partial(_progress, name),
        )
        if not (folder / "baselines.json").exists():
            print(f"[evidence] {name}: baselines", flush=True)
            write_baselines(config, folder / "baselines.json")
        first = folder / main_variant / f"seed_{config.seed}"
        if not (folder / "before_after.png").exists():
            write_picture(load_config(first / "config.yaml"), first, folder / "before_after.png")
        if config.training.warm_start.demos > 0:
            write_clone_evals(folder, main_variant)
        seconds[name] = round(seconds.get(name, 0.0) + time.perf_counter() - started, 1)
        entry = {
            "name": name,
            "role": role,
            "main_variant": main_variant,
            "task": config.env.task,
            "algorithm": config.algorithm.name,
            "config": str((CONFIG_DIR / f"{name}.yaml").relative_to(ROOT)),
            "description": _description(CONFIG_DIR / f"{name}.yaml"),
            "budget": budget_text(config),
        }
        manifest["suites"] = [s for s in manifest["suites"] if s["name"] != name] + [entry]
        manifest["suites"].sort(key=lambda s: list(SUITES).index(s["name"]))
        manifest["seconds"] = seconds
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"[evidence] done: {manifest_path}; next: unigen-sb3 report {out} --out docs")
    return 0


def _description(path: Path) -> str:
    """The config file's first comment sentence (up to its first period), without ``#``."""
    words: list[str] = []
    for line in path.read_text("utf-8").splitlines():
        if not line.startswith("#"):
            break
        words.append(line.lstrip("# ").strip())
        text = " ".join(words)
        if ". " in text or text.endswith("."):
            return text.split(". ")[0].rstrip(".") + "."
    return " ".join(words)


if __name__ == "__main__":
    raise SystemExit(main())
