"""Config-driven experiments: seeding, run directories, train/eval, ablations, sweeps, reports."""

from unigen_sb3.experiments.algorithms import get_algorithm_class
from unigen_sb3.experiments.rundir import RunDir
from unigen_sb3.experiments.runner import TrainResult, evaluate_model, evaluate_run, train
from unigen_sb3.experiments.seeding import seed_everything

__all__ = [
    "RunDir",
    "TrainResult",
    "evaluate_model",
    "evaluate_run",
    "get_algorithm_class",
    "seed_everything",
    "train",
]
