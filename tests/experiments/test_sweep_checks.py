"""Sweep checks that run before any storage or trial exists: metric, search space, storage."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from cli_support import TINY

from unigen_sb3.configs import load_config
from unigen_sb3.configs.schema import ConfigError
from unigen_sb3.configs.shipped import shipped_config_path
from unigen_sb3.envs.policies import NoOpPolicy
from unigen_sb3.evaluation import evaluate_unigen
from unigen_sb3.experiments.sweep import check_storage, check_sweep, run_sweep

SWEEP = shipped_config_path("sweep")


def test_every_metric_of_a_real_report_is_accepted_and_only_those() -> None:
    report = evaluate_unigen(NoOpPolicy(), {"task": "unified", "size": 36, "horizon": 2}, 2, 0)
    names = [*report["metrics"], *report["set_metrics"]]
    assert {"frechet_distance", "kid_mean", "kid_std"} <= set(names)
    for name in names:
        check_sweep(load_config(SWEEP, [f"sweep.metric={name}"]))
    with pytest.raises(ConfigError, match=r"sweep\.metric: unknown metric 'nonsense'") as err:
        check_sweep(load_config(SWEEP, ["sweep.metric=nonsense"]))
    for name in names:
        assert repr(name) in str(err.value)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("{n_step: {type: int, low: 1, high: 4}}", "with n_step=1: PPO has no parameter 'n_step'"),
        ("{seed: {type: categorical, choices: [1, 2]}}", "with seed=1: is set by unigen-sb3"),
    ],
)
def test_a_bad_search_space_key_is_named_under_sweep_search_space(
    tmp_path: Path, space: str, message: str
) -> None:
    config = load_config(SWEEP, [*TINY, f"sweep.search_space={space}"])
    key = space[1:].split(":", 1)[0]
    out = tmp_path / "sweep"
    with pytest.raises(ConfigError) as err:
        run_sweep(config, out)
    assert err.value.path == f"sweep.search_space.{key}" and message in err.value.message
    assert "algorithm.kwargs" not in str(err.value)
    assert not out.exists()  # no journal, no lock file, no trial


def test_a_shaping_conflict_of_one_choice_names_the_search_space_key() -> None:
    config = load_config(
        SWEEP,
        [
            "reward.shaping.enabled=true",
            "reward.shaping.gamma=0.99",  # PPO's default: the base config passes
            "sweep.search_space={gamma: {type: categorical, choices: [0.99, 0.9]}}",
        ],
    )
    with pytest.raises(ConfigError) as err:
        check_sweep(config)
    assert err.value.path == "sweep.search_space.gamma"
    assert err.value.message.startswith("with gamma=0.9: reward.shaping.gamma: ")


@pytest.mark.parametrize(
    "storage", ["journal:runs/x.journal", "sqlite:///x.db", "postgresql://user@host/db"]
)
def test_documented_storage_forms_are_accepted(storage: str) -> None:
    if storage.startswith("postgresql"):
        pytest.importorskip("psycopg")  # the postgres extra
    check_storage(storage)
    check_storage(None)


@pytest.mark.parametrize(
    ("storage", "driver", "hint"),
    [
        ("postgresql://user@host/db", "psycopg", "pip install 'unigen-sb3[postgres]'"),
        ("mysql://u@h/db", "MySQLdb", "install the Python driver SQLAlchemy uses for 'mysql'"),
    ],
)
def test_a_database_url_without_its_driver_is_refused_saying_what_to_install(
    storage: str, driver: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the check, ``--storage postgresql://...`` passed and the sweep failed later,
    on connecting, with SQLAlchemy's ``No module named 'psycopg'``."""
    monkeypatch.setitem(sys.modules, driver, None)  # `import <driver>` raises ImportError
    with pytest.raises(ValueError) as err:
        check_storage(storage)
    assert str(err.value).startswith(f"{storage!r}: the database driver is not installed")
    assert hint in str(err.value)


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("bogus://x", "no installed database backend for 'bogus'"),
        ("runs/study.db", "neither a journal: file nor a URL"),
        ("journal:", "names no journal file"),
        ("sqlite://", "in-memory database"),
    ],
)
def test_bad_storage_is_refused_before_anything_is_written(
    tmp_path: Path, storage: str, message: str
) -> None:
    with pytest.raises(ValueError) as err:
        check_storage(storage)
    assert message in str(err.value) and str(err.value).startswith(repr(storage))
    out = tmp_path / "sweep"
    with pytest.raises(ValueError, match=re.escape(message)):
        run_sweep(load_config(SWEEP, TINY), out, storage=storage)
    assert not out.exists()


def test_a_sqlite_storage_inside_the_new_sweep_folder_is_accepted(tmp_path: Path) -> None:
    # The --storage check runs when the command line is read, before --out exists; a SQLite
    # file inside --out must pass it, and the folder is created when the storage opens.
    pytest.importorskip("optuna")
    from unigen_sb3.experiments.sweep import make_storage

    out = tmp_path / "new_sweep"
    storage = f"sqlite:///{out / 'optuna.db'}"
    check_storage(storage)
    make_storage(storage, out)
    assert (out / "optuna.db").is_file()
