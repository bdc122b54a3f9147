"""``unigen-sb3``: train, evaluate, ablate, sweep and report from YAML configs.

A config is a YAML file or the name of a shipped one (``unigen-sb3 configs`` lists them; a
file of that name in the working directory wins). Every command takes ``--out DIR``;
``train``, ``eval``, ``ablate`` and ``sweep`` also take repeatable ``--set dotted.key=value``
config overrides and ``--threads N`` (``report`` reads finished runs)::

    unigen-sb3 train quickstart --out runs/qs --set seed=7
    unigen-sb3 eval runs/qs --set evaluation.n_episodes=32
    unigen-sb3 ablate ablation --out runs/ablation
    unigen-sb3 ablate ablation --out runs/ablation --executor processes --max-parallel 2
    unigen-sb3 ablate ablation --out /shared/ablation --executor ray --address auto
    unigen-sb3 sweep sweep --out runs/sweep --n-jobs 2
    unigen-sb3 report runs/ablation runs/qs --out runs/report
    unigen-sb3 configs copy quickstart my_quickstart.yaml
    unigen-sb3 demos quickstart --episodes 512 --out demos/quickstart
    unigen-sb3 bc demos/quickstart --out runs/bc

Exit codes: 0 done, 1 runs of ``ablate`` failed (the others finished; the same command
again retries the failed ones), 2 a config or usage error (nothing was trained or written),
128 + the signal on an interrupt: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP (the run directory is
valid: continue with ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unigen_sb3.pretrained import PRETRAINED

__all__ = ["build_parser", "main"]

EXIT_RUNS_FAILED = 1  # ablate: runs failed, the others finished
EXIT_CONFIG_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C; SIGTERM / SIGHUP exit 128 + their number (143 / 129)

_CONFIG_HELP = "experiment YAML, or a shipped config's name (unigen-sb3 configs)"
#: ``ablate --executor`` choices (:data:`unigen_sb3.experiments.executors.EXECUTORS`; written
#: out here so that ``--help`` does not import the experiments package).
EXECUTOR_CHOICES = ("local", "processes", "ray")


def _common(parser: argparse.ArgumentParser, out_help: str, *, overrides: bool = True) -> None:
    parser.add_argument("--out", type=Path, default=None, help=out_help)
    if not overrides:
        return
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config entry (dotted key, YAML value); repeatable",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="torch CPU threads (= --set training.torch_threads=N; default: torch's own, one "
        "per core; 1 is faster on a busy machine)",
    )


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides, then ``--threads`` as ``training.torch_threads``."""
    extra = [] if args.threads is None else [f"training.torch_threads={args.threads}"]
    return [*args.overrides, *extra]


def _version() -> str:
    from unigen_sb3 import __version__

    return __version__


def _trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-artifacts",
        action="store_true",
        help="load a model, checkpoint or replay buffer whose SHA-256 was not recorded by its "
        "run or does not match: loading an SB3 zip runs the pickled code it holds, so only "
        "for files from someone you trust",
    )


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    """An argparse type: a NumPy seed, an integer in ``[0, 2**32 - 1]``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32 - 1], got {value}")
    return value


def _fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def _storage(text: str) -> str:
    """An argparse type: a storage :func:`~unigen_sb3.experiments.sweep.check_storage` accepts."""
    from unigen_sb3.experiments.sweep import check_storage

    try:
        check_storage(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """:return: the ``unigen-sb3`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="unigen-sb3", description="Config-driven UniGen experiments with Stable-Baselines3."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train, checkpoint, then run the evaluation suite")
    p.add_argument("config", type=Path, help=_CONFIG_HELP)
    _common(p, "run directory (default: runs/<config name>)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    again.add_argument(
        "--overwrite", action="store_true", help="replace a previous run in --out (not --resume)"
    )
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    _trust(p)

    p = sub.add_parser("eval", help="evaluate a run directory, a model .zip or a shipped agent")
    p.add_argument("target", type=Path, nargs="?", help="run directory or model .zip")
    p.add_argument(
        "--pretrained",
        choices=sorted(PRETRAINED),
        default=None,
        metavar="NAME",
        help="evaluate a checkpoint shipped with the package instead of TARGET, on the CPU, "
        f"with its own config: it reproduces the eval.json it ships with ({sorted(PRETRAINED)})",
    )
    _common(
        p,
        "folder for eval.json (default: the run directory; runs/pretrained_NAME for --pretrained)",
    )
    p.add_argument(
        "--config", type=Path, default=None, help="config (file or shipped name) for a .zip"
    )
    _trust(p)

    p = sub.add_parser("ablate", help="drop R_edit / R_consistency, a weight grid, N seeds")
    p.add_argument("config", type=Path, help=_CONFIG_HELP + " (its ablation: section)")
    _common(p, "ablation folder (default: runs/<config name>_ablation)")
    p.add_argument(
        "--executor",
        choices=EXECUTOR_CHOICES,
        default="local",
        help="where the (variant, seed) runs execute: local (one after another, here; the "
        "default), processes (a pool on this machine), ray (Ray tasks; pip install "
        "'unigen-sb3[ray]')",
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="--executor ray: the cluster to join ('auto': the one `ray start` runs here, or "
        "HOST:PORT of its head); default: start a local Ray instance",
    )
    p.add_argument(
        "--max-parallel",
        type=_positive_int,
        default=None,
        metavar="N",
        help="runs at once (processes: default CPUs / ablation.num_cpus; ray: default as many "
        "as the cluster schedules)",
    )

    p = sub.add_parser("sweep", help="Optuna search over weights and hyperparameters")
    p.add_argument("config", type=Path, help=_CONFIG_HELP + " (its sweep: section)")
    _common(p, "sweep folder (default: runs/<config name>_sweep)")
    p.add_argument(
        "--storage",
        type=_storage,
        default=None,
        help="Optuna storage shared by workers: an RDB URL (sqlite:///..., postgresql://...) "
        "or journal:PATH (default: a journal file in --out)",
    )
    p.add_argument(
        "--n-jobs", type=_positive_int, default=1, help="worker processes on this machine (>= 1)"
    )
    p.add_argument(
        "--worker-index",
        type=int,
        default=0,
        help="index of this worker when starting several by hand (seeds its sampler)",
    )

    p = sub.add_parser(
        "demos", help="collect Oracle demonstrations in a config's stack (versioned .npz)"
    )
    p.add_argument("config", type=Path, help=_CONFIG_HELP + " (its training stack)")
    _common(p, "demos folder (default: demos/<config name>)")
    p.add_argument(
        "--episodes", type=_positive_int, default=256, help="episodes to record (default 256)"
    )
    p.add_argument(
        "--seed", type=_seed, default=0, help="episode j draws its task from seed + j (default 0)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace demos already in --out")

    p = sub.add_parser(
        "bc", help="behaviour cloning: train the config's policy on demos into a run directory"
    )
    p.add_argument("demos", type=Path, help="a demos folder written by `unigen-sb3 demos`")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config (file or shipped name; default: the one the demos were collected with)",
    )
    _common(p, "run directory (default: runs/bc_<demos folder name>)")
    p.add_argument("--epochs", type=_positive_int, default=30, help="epochs at most (default 30)")
    p.add_argument(
        "--patience",
        type=_positive_int,
        default=3,
        help="epochs without a held-out improvement before stopping (default 3)",
    )
    p.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.2,
        help="share of demo episodes held out for early stopping (default 0.2)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")

    p = sub.add_parser(
        "report",
        help="markdown and plots from runs, ablations and sweeps; the results page "
        "(results.md) from one evidence folder",
    )
    p.add_argument(
        "runs",
        type=Path,
        nargs="+",
        help="run, ablation or sweep folders, or one evidence folder (holding evidence.json)",
    )
    _common(p, "report folder (default: the first folder given)", overrides=False)

    p = sub.add_parser("configs", help="list the shipped configs, or copy one out for editing")
    what = p.add_subparsers(dest="configs_command")
    what.add_parser("list", help="one line per shipped config (the default)")
    c = what.add_parser("copy", help="write a shipped config to a file for editing")
    c.add_argument("name", help="a shipped config's name (see `unigen-sb3 configs`)")
    c.add_argument(
        "dest", type=Path, nargs="?", default=None, help="file or folder (default: ./NAME.yaml)"
    )
    c.add_argument("--force", action="store_true", help="replace an existing file")
    return parser


def _default_out(config: Path, suffix: str = "") -> Path:
    return Path("runs") / f"{config.stem}{suffix}"


def _bar(total: int, desc: str) -> Any:
    """A tqdm bar on a terminal, None elsewhere (no progress noise in logs)."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="run")


def _summary(results: dict[str, Any] | None) -> str:
    if not results:
        return ""
    total = results.get("metrics", {}).get("reward_total", {})
    return f"R_total {total.get('mean', float('nan')):.4f} ± {total.get('std', float('nan')):.4f}"


def _cmd_train(args: argparse.Namespace) -> int:
    from unigen_sb3.configs.loader import load_config
    from unigen_sb3.experiments.runner import train

    config = load_config(args.config, _overrides(args))
    out = args.out or _default_out(args.config)
    result = train(
        config,
        out,
        resume=args.resume,
        overwrite=args.overwrite,
        evaluate=not args.no_eval,
        trust_artifacts=args.trust_artifacts,
    )
    if result.interrupted:
        # The run's own config.yaml holds its --set overrides: resume from it, not args.config.
        saved = shlex.quote(str(result.run_dir.config_path))
        print(
            f"interrupted at {result.num_timesteps} timesteps; model and checkpoint saved in "
            f"{out}; continue with: unigen-sb3 train {saved} --out {shlex.quote(str(out))} "
            "--resume",
            file=sys.stderr,
        )
        from unigen_sb3.experiments import signals

        return signals.exit_code()
    print(f"{out}: {result.num_timesteps} timesteps. {_summary(result.eval)}")
    return 0


def _usage_error(command: str, message: str) -> int:
    """Print ``unigen-sb3 COMMAND: error: MESSAGE`` to stderr; return the exit code 2."""
    print(f"unigen-sb3 {command}: error: {message}", file=sys.stderr)
    return EXIT_CONFIG_ERROR


def _cmd_eval(args: argparse.Namespace) -> int:
    from unigen_sb3.experiments.runner import evaluate_run

    if args.pretrained is not None:
        from unigen_sb3.pretrained import evaluate_pretrained

        given = [
            flag
            for flag, value in (
                ("TARGET", args.target),
                ("--config", args.config),
                ("--set", args.overrides),
                ("--threads", args.threads),
                ("--trust-artifacts", args.trust_artifacts),
            )
            if value
        ]
        if given:
            return _usage_error(
                "eval",
                f"--pretrained {args.pretrained} evaluates the checkpoint with its own config; "
                f"leave out {', '.join(given)}",
            )
        out = args.out or Path("runs") / f"pretrained_{args.pretrained}"
        results, path = evaluate_pretrained(args.pretrained, out=out)
        print(f"{path}: {_summary(results)}")
        return 0
    if args.target is None:
        return _usage_error(
            "eval", "give a TARGET (a run directory or a model .zip) or --pretrained"
        )
    results, path = evaluate_run(
        args.target,
        out=args.out,
        config_path=args.config,
        overrides=_overrides(args),
        trust_artifacts=args.trust_artifacts,
    )
    print(f"{path}: {_summary(results)}")
    return 0


def _cmd_ablate(args: argparse.Namespace) -> int:
    from unigen_sb3.configs.loader import load_config
    from unigen_sb3.experiments.ablation import ablation_variants, run_ablation
    from unigen_sb3.experiments.executors import RunOutcome, check_executor

    check_executor(args.executor, args.address, args.max_parallel)  # before the config
    config = load_config(args.config, _overrides(args))
    out = args.out or _default_out(args.config, "_ablation")
    n_runs = len(ablation_variants(config)) * config.ablation.n_seeds
    bar = _bar(n_runs, "ablation")
    ended = [0]

    def progress(label: str) -> None:  # a run starts (is handed to a worker)
        if bar is not None:
            bar.set_postfix_str(label)
        else:
            print(f"ablation: started {label}", flush=True)

    def on_result(outcome: RunOutcome) -> None:  # a run ended (or was finished earlier)
        ended[0] += 1
        if outcome.status == "failed":
            print(f"ablation: {outcome.label} FAILED: {outcome.error}", file=sys.stderr, flush=True)
        if bar is not None:
            bar.update(1)
        else:
            what = "finished earlier, kept" if outcome.reused else outcome.status
            print(f"ablation: {ended[0]}/{n_runs} {outcome.label}: {what}", flush=True)

    try:
        summary = run_ablation(
            config,
            out,
            executor=args.executor,
            address=args.address,
            max_parallel=args.max_parallel,
            progress=progress,
            on_result=on_result,
        )
    finally:
        if bar is not None:
            bar.close()
    for name, v in summary["variants"].items():
        m = v["metrics"].get("reward_total", {})
        print(f"{name}: R_total {m.get('mean', float('nan')):.4f} ± {m.get('std', 0.0):.4f}")
    print(f"{Path(out) / 'ablation.json'}")
    return 0


def _print_failures(exc: Any) -> None:
    """Each failed ablation run's traceback, then the one-paragraph summary."""
    for outcome in exc.failures:
        if outcome.traceback:
            print(f"--- {outcome.label} ({outcome.run_dir}) ---", file=sys.stderr)
            print(outcome.traceback.rstrip(), file=sys.stderr)
    print(f"unigen-sb3 ablate: error: {exc}", file=sys.stderr)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from unigen_sb3.configs.loader import load_config
    from unigen_sb3.experiments.sweep import run_sweep

    config = load_config(args.config, _overrides(args))
    out = args.out or _default_out(args.config, "_sweep")
    bar = _bar(config.sweep.n_trials, "sweep")
    finished = [0]

    def progress(number: int) -> None:  # after each trial this process finishes
        finished[0] += 1
        if bar is not None:
            bar.update(1)
        else:
            print(
                f"sweep: trial #{number} finished ({finished[0]} in this process; "
                f"{config.sweep.n_trials} in the study's budget)",
                flush=True,
            )

    try:
        summary = run_sweep(
            config,
            out,
            storage=args.storage,
            n_jobs=args.n_jobs,
            worker_index=args.worker_index,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    best = summary.get("best") or {}
    print(
        f"{summary['n_complete']} complete trials; best #{best.get('number')}: "
        f"{summary['metric']} = {best.get('value')} with {json.dumps(best.get('params'))}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from unigen_sb3.experiments.report import MATPLOTLIB_MISSING, plotting_available, write_report
    from unigen_sb3.experiments.results import MANIFEST_NAME, read_manifest

    if not plotting_available():
        print(f"unigen-sb3 report: warning: {MATPLOTLIB_MISSING}", file=sys.stderr)
    if len(args.runs) == 1 and (args.runs[0] / MANIFEST_NAME).is_file():
        try:  # an evidence folder: write_report writes its results page; check it first
            read_manifest(args.runs[0] / MANIFEST_NAME)
        except ValueError as exc:
            return _usage_error("report", str(exc))
    path = write_report(args.runs, args.out or args.runs[0])
    print(path)
    return 0


def _cmd_demos(args: argparse.Namespace) -> int:
    import time

    from unigen_sb3.configs.loader import load_config
    from unigen_sb3.experiments.demos import collect_demos
    from unigen_sb3.experiments.runner import apply_torch_threads

    config = load_config(args.config, _overrides(args))
    apply_torch_threads(config)
    out = args.out or Path("demos") / args.config.stem
    started = time.perf_counter()
    demos = collect_demos(
        config, out, n_episodes=args.episodes, seed=args.seed, overwrite=args.overwrite
    )
    m = demos.manifest
    print(
        f"{out}: {m['n_episodes']} episodes, {m['n_steps']} steps ({m['n_nearest']} Oracle "
        f"actions replaced by the nearest {m['action_encoding']!r} action), mean R_total "
        f"{m['mean_return']:.4f}, sha256 {m['sha256'][:12]}..., "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


def _cmd_bc(args: argparse.Namespace) -> int:
    from unigen_sb3.configs.loader import load_config
    from unigen_sb3.configs.schema import ConfigError
    from unigen_sb3.experiments.bc import train_bc
    from unigen_sb3.experiments.demos import load_demos

    try:
        demos = load_demos(args.demos)
        source: Any = args.config if args.config is not None else demos.manifest["config"]
        config = load_config(source, _overrides(args))
        out = args.out or Path("runs") / f"bc_{demos.path.name}"
        result = train_bc(
            demos,
            config,
            out,
            val_fraction=args.val_fraction,
            max_epochs=args.epochs,
            patience=args.patience,
            overwrite=args.overwrite,
            evaluate=not args.no_eval,
        )
    except ValueError as exc:  # demos of another version or stack, a changed demos file
        if isinstance(exc, ConfigError):
            raise
        print(f"unigen-sb3 bc: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    accuracy = "n/a" if result.val_accuracy is None else f"{result.val_accuracy:.3f}"
    print(
        f"{out}: cloned {result.train_samples} steps of {result.train_episodes} episodes "
        f"(held out: {result.val_samples} steps of {result.val_episodes}); best epoch "
        f"{result.best_epoch} of {result.epochs}, held-out accuracy {accuracy}, "
        f"{result.seconds:.1f} s. {_summary(result.eval)}"
    )
    return 0


def _cmd_configs(args: argparse.Namespace) -> int:
    from unigen_sb3.configs.shipped import copy_shipped_config, shipped_configs

    if args.configs_command == "copy":
        path = copy_shipped_config(args.name, args.dest, overwrite=args.force)
        print(f"wrote {path}; run it with: unigen-sb3 train {shlex.quote(str(path))}")
        return 0
    configs = shipped_configs()
    width = max(map(len, configs))
    for name, line in configs.items():
        print(f"{name:<{width}}  {line}")
    return 0


_COMMANDS = {
    "train": _cmd_train,
    "eval": _cmd_eval,
    "ablate": _cmd_ablate,
    "sweep": _cmd_sweep,
    "report": _cmd_report,
    "configs": _cmd_configs,
    "demos": _cmd_demos,
    "bc": _cmd_bc,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``unigen-sb3``; return the exit code.

    :param argv: arguments without the program name (default: ``sys.argv[1:]``).
    :return: 0 on success, 1 when runs of ``ablate`` failed, 2 for a config/usage error,
        128 + the signal when interrupted
        (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP); ``--version`` and ``--help`` exit through
        ``SystemExit(0)``, as argparse does.
    """
    from unigen_sb3.configs.schema import ConfigError
    from unigen_sb3.experiments import signals
    from unigen_sb3.experiments.ablation import AblationError
    from unigen_sb3.experiments.executors import ExecutorError
    from unigen_sb3.experiments.rundir import RunDirError

    args = build_parser().parse_args(argv)
    signals.install()
    try:
        return _COMMANDS[args.command](args)
    except AblationError as exc:
        _print_failures(exc)
        return EXIT_RUNS_FAILED
    except (ConfigError, ExecutorError, RunDirError, FileNotFoundError, FileExistsError) as exc:
        return _usage_error(args.command, str(exc))
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # A read-only --out, a folder where a file belongs...: the user's to fix.
        return _usage_error(args.command, str(exc))
    except KeyboardInterrupt:
        print(f"unigen-sb3 {args.command}: interrupted", file=sys.stderr)
        return signals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
