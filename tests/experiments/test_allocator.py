"""``tune_host_allocator``: glibc keeps freed memory in the process during training."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import QUICKSTART, TINY

from unigen_sb3.configs import load_config
from unigen_sb3.experiments import RunDir, train
from unigen_sb3.experiments import allocator as alloc
from unigen_sb3.experiments.allocator import ALLOCATOR_ENV, GLIBC_SETTINGS, tune_host_allocator

GLIBC = alloc._glibc_version() is not None
needs_glibc = pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")

# Two touched 20 MiB blocks allocated and freed 20 times: with glibc's defaults the freed
# heap top exceeds the trim threshold (twice the block size the first free set) and goes
# back to the OS, so every cycle faults its pages in again.
PROBE = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from unigen_sb3.experiments.allocator import tune_host_allocator

    print(tune_host_allocator().applied, file=sys.stderr)

    def cycle():
        a = np.ones(5 * 2**20, dtype=np.float32)
        b = np.ones(5 * 2**20, dtype=np.float32)
        del a, b

    cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        cycle()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    env[ALLOCATOR_ENV] = mode
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip()), done.stderr.strip()


@needs_glibc
def test_tuned_sets_the_documented_glibc_settings_and_may_run_twice() -> None:
    for _ in range(2):
        result = tune_host_allocator({})
        assert result.applied and result.reason.startswith("glibc")
        assert result.settings == {name: value for name, (_, value) in GLIBC_SETTINGS.items()}
    assert result.as_dict() == {
        "applied": True,
        "reason": result.reason,
        "settings": result.settings,
    }


@needs_glibc
def test_freed_memory_is_not_faulted_in_again_when_tuned() -> None:
    tuned, tuned_applied = _faults("tuned")
    system, system_applied = _faults("system")
    assert (tuned_applied, system_applied) == ("True", "False")
    # 20 cycles of 10,240 pages: glibc's defaults fault thousands of them in again.
    assert system > 2000, f"the probe saw only {system} page faults untuned"
    assert tuned < system / 10, f"tuned {tuned} vs system {system} page faults"


@pytest.mark.parametrize(
    ("environ", "why"),
    [
        ({ALLOCATOR_ENV: "system"}, "UNIGEN_SB3_MALLOC=system"),
        ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "jemalloc"),
        ({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, "tcmalloc"),
        ({"MALLOC_ARENA_MAX": "2"}, "MALLOC_ARENA_MAX"),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_"),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"}, "GLIBC_TUNABLES"),
    ],
)
def test_the_users_choices_are_kept(environ: dict[str, str], why: str) -> None:
    result = tune_host_allocator(environ)
    assert not result.applied and why in result.reason and result.settings == {}


def test_another_c_library_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alloc, "_glibc_version", lambda: None)
    result = tune_host_allocator({})
    assert not result.applied and "not glibc" in result.reason
    monkeypatch.setattr(alloc, "_libc", _broken_env)  # never loaded: nothing to trim
    assert alloc.release_free_heap() is False


def test_an_unknown_mode_is_refused_with_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match=r"UNIGEN_SB3_MALLOC='fast'.*'tuned', 'system'"):
        tune_host_allocator({ALLOCATOR_ENV: "fast"})


def _broken_env(*_args: object, **_kwargs: object) -> None:
    raise OSError("stop after the run directory is written")


def test_train_records_what_was_done_in_meta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("unigen_sb3.experiments.runner.make_train_vec_env", _broken_env)
    monkeypatch.setenv(ALLOCATOR_ENV, "system")
    out = tmp_path / "run"
    with pytest.raises(OSError, match="stop after"):
        train(load_config(QUICKSTART, TINY), out)
    meta = RunDir(out).read_meta()
    assert meta["host_allocator"] == {
        "applied": False,
        "reason": "UNIGEN_SB3_MALLOC=system: the C library's own settings are kept",
        "settings": {},
    }


def test_train_refuses_an_unknown_mode_before_writing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOCATOR_ENV, "fast")
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="UNIGEN_SB3_MALLOC='fast'"):
        train(load_config(QUICKSTART, TINY), out)
    assert not out.exists()
