"""Turn a finished run directory into a shipped checkpoint (maintainers' tool).

Usage::

    python scripts/package_pretrained.py RUN_DIR --name unified
    # then: put the printed SHA-256 and this CPU's capability into PRETRAINED
    # (unigen_sb3/pretrained/__init__.py), and
    unigen-sb3 eval --pretrained unified --out unigen_sb3/pretrained/unified

Writes ``unigen_sb3/pretrained/NAME/model.zip`` and ``config.yaml``:

- the model is the run's ``model.zip`` (checked against the SHA-256 its run recorded) with
  the optimizer's state dropped: a fresh optimizer of the same class and settings takes its
  place, so the file holds the policy's weights and a few bytes of optimizer settings (SB3's
  loader wants an optimizer entry). The policy, and so every action, is unchanged.
- the config is the run's, with ``training.torch_threads: 1`` (an evaluation's last digits
  depend on the thread count, and on the CPU's kernels: set ``cpu_capability`` in
  ``PRETRAINED`` to ``torch.backends.cpu.get_cpu_capability()`` of the machine that writes
  ``eval.json``).

``eval.json`` is then written by ``unigen-sb3 eval --pretrained NAME`` itself, the command a
user runs to reproduce it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unigen_sb3.configs import load_config
from unigen_sb3.configs.loader import save_config
from unigen_sb3.experiments.algorithms import get_algorithm_class
from unigen_sb3.experiments.rundir import RunDir, sha256_file

PACKAGE = Path(__file__).resolve().parents[1] / "unigen_sb3" / "pretrained"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", required=True, help="the checkpoint's name (its folder)")
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    model_path = args.run_dir / "model.zip"
    run.verify(model_path)
    config = load_config(args.run_dir / "config.yaml", ["training.torch_threads=1"])
    model = get_algorithm_class(config.algorithm.name).load(model_path, device="cpu")
    optimizer = model.policy.optimizer
    model.policy.optimizer = type(optimizer)(model.policy.parameters(), **optimizer.defaults)
    dest = PACKAGE / args.name
    dest.mkdir(parents=True, exist_ok=True)
    model.save(dest / "model.zip")
    save_config(config, dest / "config.yaml")
    digest = sha256_file(dest / "model.zip")
    size = (dest / "model.zip").stat().st_size
    print(f"wrote {dest / 'model.zip'} ({size / 1e6:.1f} MB) and {dest / 'config.yaml'}")
    print(f'SHA-256 for PRETRAINED["{args.name}"]: {digest}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
