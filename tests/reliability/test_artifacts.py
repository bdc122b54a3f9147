"""Recorded SHA-256 of every artifact: changed files are refused, --resume falls back to an
intact checkpoint, a hand-edited run config is refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from cli_support import StartCount
from rel_support import _Touch, doctor_zip, fast_config
from stable_baselines3.common.save_util import load_from_zip_file

from unigen_sb3.cli import EXIT_CONFIG_ERROR, main
from unigen_sb3.configs.schema import ConfigError
from unigen_sb3.experiments import RunDir, train
from unigen_sb3.experiments.rundir import ArtifactError, sha256_file


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run: checkpoints at 16 and 32, model.zip, eval.json."""
    out = tmp_path_factory.mktemp("artifacts") / "run"
    train(fast_config(), out)
    return out


def _copy(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_every_artifact_is_recorded(trained: Path) -> None:
    run = RunDir(trained)
    hashes = run.read_meta()["sha256"]
    assert set(hashes) == {
        "config.yaml",
        "model.zip",
        "checkpoints/model_16_steps.zip",
        "checkpoints/model_32_steps.zip",
    }
    for rel, digest in hashes.items():
        assert sha256_file(trained / rel) == digest


def test_a_doctored_model_zip_is_refused_before_its_code_runs(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy(trained, tmp_path / "run")
    marker = tmp_path / "pwned"
    doctor_zip(run / "model.zip", marker)
    assert main(["eval", str(run)]) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "changed after the run wrote it" in err and "--trust-artifacts" in err
    assert main(["eval", str(run / "model.zip")]) == EXIT_CONFIG_ERROR
    assert not marker.exists()
    # The payload is real: SB3's loader runs it.
    load_from_zip_file(run / "model.zip", device="cpu")
    assert marker.exists()


def test_a_model_without_a_record_needs_the_trust_flag(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "elsewhere" / "model.zip"
    bare.parent.mkdir()
    bare.write_bytes((trained / "model.zip").read_bytes())
    assert main(["eval", str(bare), "--config", str(trained / "config.yaml")]) == 2
    assert "no SHA-256 to check" in capsys.readouterr().err
    code = main(
        [
            "eval",
            str(bare),
            "--config",
            str(trained / "config.yaml"),
            "--trust-artifacts",
            "--set",
            "evaluation.n_episodes=2",
        ]
    )
    assert code == 0 and (bare.parent / "eval.json").exists()


def test_resume_falls_back_past_a_truncated_checkpoint(trained: Path, tmp_path: Path) -> None:
    run_path = _copy(trained, tmp_path / "run")
    latest = run_path / "checkpoints" / "model_32_steps.zip"
    latest.write_bytes(latest.read_bytes()[:100])
    starts = StartCount()
    with pytest.warns(UserWarning, match="skips checkpoint model_32_steps.zip"):
        result = train(
            fast_config("training.total_timesteps=48"),
            run_path,
            resume=True,
            evaluate=False,
            extra_callbacks=[starts],
        )
    assert starts.start == 16 and result.num_timesteps >= 48


def test_no_intact_checkpoint_is_refused_and_the_run_stays_completed(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_path = _copy(trained, tmp_path / "run")
    for ckpt in (run_path / "checkpoints").glob("*.zip"):
        ckpt.write_bytes(b"truncated")
    cfg = run_path / "config.yaml"
    args = ["train", str(cfg), "--out", str(run_path), "--resume"]
    assert main([*args, "--set", "training.total_timesteps=48"]) == EXIT_CONFIG_ERROR
    assert "no checkpoint" in capsys.readouterr().err
    assert RunDir(run_path).read_meta()["status"] == "completed"


def test_a_hand_edited_run_config_is_refused_on_resume(trained: Path, tmp_path: Path) -> None:
    run_path = _copy(trained, tmp_path / "run")
    cfg = run_path / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seed: 0", "seed: 5"))
    with pytest.raises(ConfigError, match="edited after the run wrote it"):
        train(fast_config("seed=5"), run_path, resume=True)
    assert RunDir(run_path).read_meta()["status"] == "completed"


def test_a_doctored_replay_buffer_is_refused_on_resume(tmp_path: Path) -> None:
    cfg = fast_config(
        "algorithm.name=DQN",
        "algorithm.kwargs={buffer_size: 64, learning_starts: 8, batch_size: 8}",
        "training.save_replay_buffer=true",
        "reward.shaping.enabled=false",
    )
    out = tmp_path / "dqn"
    train(cfg, out, evaluate=False)
    marker = tmp_path / "pwned"
    buffers = list((out / "checkpoints").glob("replay_buffer_*.pkl"))
    assert buffers
    for buffer in buffers:
        buffer.write_bytes(pickle.dumps(_Touch(marker)))
    with pytest.raises(ArtifactError, match=r"no checkpoint .* is intact"):
        train(cfg, out, resume=True)
    assert not marker.exists()
