"""Shipped checkpoints: ``load_pretrained``, ``evaluate_pretrained`` and ``eval --pretrained``.

The shipped ``eval.json`` must come back byte for byte on a CPU, and a changed model file
must be refused before SB3 unpickles it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO

import unigen_sb3
from unigen_sb3.cli import main
from unigen_sb3.experiments.rundir import ArtifactError, sha256_file
from unigen_sb3.experiments.runner import _flatten
from unigen_sb3.make import make_unigen_vec_env
from unigen_sb3.pretrained import (
    PRETRAINED,
    load_pretrained,
    pretrained_config,
    pretrained_dir,
)
from unigen_sb3.spec import UniGenSpec


def test_every_shipped_file_is_there_and_the_model_has_its_recorded_digest() -> None:
    assert "unified" in PRETRAINED
    for name, agent in PRETRAINED.items():
        folder = pretrained_dir(name)
        assert re.fullmatch(r"[0-9a-f]{64}", agent.sha256)
        assert sha256_file(folder / "model.zip") == agent.sha256
        assert (folder / "card.md").is_file()
        # The model file is small enough to ship: the optimizer's moments were left out.
        assert (folder / "model.zip").stat().st_size < 4_000_000


def test_eval_pretrained_reproduces_the_shipped_eval_json(tmp_path: Path) -> None:
    import torch as th

    shipped = (pretrained_dir("unified") / "eval.json").read_bytes()
    if th.backends.cpu.get_cpu_capability() == PRETRAINED["unified"].cpu_capability:
        assert main(["eval", "--pretrained", "unified", "--out", str(tmp_path)]) == 0
        assert (tmp_path / "eval.json").read_bytes() == shipped
    else:  # other kernels: the same numbers up to float32 rounding, and a warning says so
        with pytest.warns(UserWarning, match="may differ"):
            assert main(["eval", "--pretrained", "unified", "--out", str(tmp_path)]) == 0
        ours = _flatten(json.loads((tmp_path / "eval.json").read_text()))
        theirs = _flatten(json.loads(shipped))
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            if isinstance(value, float):
                assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
            else:
                assert ours[key] == value, key


def test_the_card_quotes_the_shipped_scores() -> None:
    results = json.loads((pretrained_dir("unified") / "eval.json").read_text())
    card = (pretrained_dir("unified") / "card.md").read_text()
    assert f"{results['metrics']['reward_total']['mean']:.3f}" in card
    assert PRETRAINED["unified"].sha256 in card


def test_load_pretrained_acts_on_its_own_env_stack() -> None:
    model = unigen_sb3.load_pretrained("unified")
    assert isinstance(model, PPO)
    spec = UniGenSpec.from_config(pretrained_config("unified"), evaluation=True)
    env = make_unigen_vec_env(n_envs=2, seed=3, spec=spec)
    try:
        obs = env.reset()
        first, _ = model.predict(obs, deterministic=True)
        again, _ = load_pretrained("unified").predict(obs, deterministic=True)
        assert env.action_space.contains(first[0])
        np.testing.assert_array_equal(first, again)
    finally:
        env.close()


def test_a_changed_model_file_is_refused_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PRETRAINED,
        "unified",
        unigen_sb3.pretrained.PretrainedAgent("unified", "0" * 64, "x", "AVX2"),
    )

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(PPO, "load", never)
    with pytest.raises(ArtifactError, match="not the one unigen-sb3 shipped"):
        load_pretrained("unified")


def test_unknown_names_and_misused_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=r"no pretrained agent 'nope'; shipped: \['unified'\]"):
        load_pretrained("nope")
    with pytest.raises(ValueError, match=r"no pretrained agent 'nope'"):
        unigen_sb3.evaluate_pretrained("nope", out=tmp_path)
    assert not (tmp_path / "eval.json").exists()
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["eval", "--pretrained", "nope"])
    capsys.readouterr()
    assert main(["eval", str(tmp_path), "--pretrained", "unified"]) == 2
    assert "leave out TARGET" in capsys.readouterr().err
    assert main(["eval", "--pretrained", "unified", "--set", "seed=1"]) == 2
    assert "leave out --set" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert "give a TARGET" in capsys.readouterr().err


def test_package_script_keeps_the_policy_and_drops_the_optimizer_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    import torch as th
    from cli_support import REPO, TINY, sets

    from unigen_sb3.configs import load_config

    th.set_num_threads(1)
    run = tmp_path / "run"
    assert main(["train", "quickstart", "--out", str(run), "--no-eval", *sets(TINY)]) == 0
    spec = importlib.util.spec_from_file_location(
        "package_pretrained", REPO / "scripts" / "package_pretrained.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script, "PACKAGE", tmp_path / "pretrained")
    assert script.main([str(run), "--name", "tiny"]) == 0
    packaged = tmp_path / "pretrained" / "tiny"
    original, shipped = PPO.load(run / "model.zip"), PPO.load(packaged / "model.zip")
    for (key, a), (key2, b) in zip(
        original.policy.state_dict().items(), shipped.policy.state_dict().items(), strict=True
    ):
        assert key == key2 and th.equal(a, b), key
    assert shipped.policy.optimizer.state_dict()["state"] == {}
    assert original.policy.optimizer.state_dict()["state"] != {}
    assert (packaged / "model.zip").stat().st_size < (run / "model.zip").stat().st_size
    assert load_config(packaged / "config.yaml").training.torch_threads == 1
    # A model that does not match its run's recorded SHA-256 is not packaged.
    (run / "model.zip").write_bytes(b"changed")
    with pytest.raises(ArtifactError):
        script.main([str(run), "--name", "tiny"])


def test_another_cpu_capability_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import unigen_sb3.experiments.runner as runner

    agent = dataclasses.replace(PRETRAINED["unified"], cpu_capability="SOME_OTHER_ISA")
    monkeypatch.setitem(PRETRAINED, "unified", agent)
    monkeypatch.setattr(runner, "evaluate_model", lambda model, config, path: {"ran": True})
    with pytest.warns(UserWarning, match="capability is .*written on SOME_OTHER_ISA"):
        results, _ = unigen_sb3.evaluate_pretrained("unified", out=tmp_path)
    assert results == {"ran": True}
