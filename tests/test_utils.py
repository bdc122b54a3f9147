"""unigen_sb3.utils: the atomic writers' file permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from unigen_sb3.utils import atomic_write_bytes, atomic_write_text

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

WRITERS: dict[str, Callable[[Path], None]] = {
    "bytes": lambda p: atomic_write_bytes(p, b"PK\x03\x04"),
    "text": lambda p: atomic_write_text(p, "seed: 0\n"),
}


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test, and put the old one back after it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("writer", WRITERS, ids=list(WRITERS))
@pytest.mark.parametrize(
    ("mask", "expected"),
    [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
    ids=["umask022", "umask077", "umask002"],
)
def test_atomic_write_gives_a_new_file_the_umask_mode(
    writer: str, mask: int, expected: int, tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(mask)
    target = tmp_path / "eval.json"
    WRITERS[writer](target)
    assert _mode(target) == expected  # what open() would give, not mkstemp's 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]  # no temporary left


@pytest.mark.parametrize("writer", WRITERS, ids=list(WRITERS))
def test_atomic_write_keeps_an_existing_files_mode(
    writer: str, tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    target = tmp_path / "meta.json"
    target.write_text("old")
    target.chmod(0o640)
    WRITERS[writer](target)
    assert _mode(target) == 0o640 and target.read_bytes() != b"old"
