"""Experiment configs shipped inside the package (``unigen_sb3/configs/experiments/``).

``unigen-sb3 train quickstart`` runs the shipped ``quickstart.yaml`` from anywhere, a pip
install included; a path to a file still works and wins over a shipped name.
``unigen-sb3 configs`` lists them, ``unigen-sb3 configs copy NAME [DEST]`` writes one out
for editing. The first comment line of each file is its one-line description.

Example:
    >>> "quickstart" in shipped_configs()
    True
    >>> resolve_config("quickstart").name
    'quickstart.yaml'
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from unigen_sb3.utils import atomic_write_text

__all__ = [
    "copy_shipped_config",
    "resolve_config",
    "shipped_config_path",
    "shipped_configs",
]

_SUFFIX = ".yaml"


def _folder() -> Path:
    return Path(str(resources.files("unigen_sb3.configs").joinpath("experiments")))


def shipped_configs() -> dict[str, str]:
    """:return: shipped config name -> its one-line description, sorted by name."""
    out: dict[str, str] = {}
    for path in sorted(_folder().glob(f"*{_SUFFIX}")):
        first = path.read_text("utf-8").splitlines()[:1]
        out[path.stem] = first[0].lstrip("#").strip() if first else ""
    return out


def shipped_config_path(name: str) -> Path:
    """:return: the file of shipped config ``name`` (``quickstart`` or ``quickstart.yaml``).

    :raises FileNotFoundError: naming the shipped configs, if there is none by that name.
    """
    stem = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name
    path = _folder() / f"{stem}{_SUFFIX}"
    if os.sep in name or "/" in name or not path.is_file():
        raise FileNotFoundError(
            f"{name!r} is not a shipped config; shipped configs: {', '.join(shipped_configs())} "
            "(`unigen-sb3 configs` lists them)"
        )
    return path


def resolve_config(source: str | os.PathLike[str]) -> Path:
    """The file a config argument names: an existing file wins, else a shipped config name.

    :param source: a path, or a shipped config's name (``quickstart``, ``quickstart.yaml``).
    :return: the file to read (an existing path is returned as is, so that the loader can
        say what is wrong with it, e.g. a folder).
    :raises FileNotFoundError: for neither, saying what was looked for and what is accepted.
    """
    path = Path(source)
    if path.exists():
        return path  # a file, or something the loader refuses by name (e.g. a folder)
    text = os.fspath(source)
    if path.parent == Path(".") and Path(text).stem in shipped_configs():
        return shipped_config_path(text)
    hint = (
        f"; the shipped config {path.stem!r} is run by its name: `unigen-sb3 train {path.stem}`"
        if path.stem in shipped_configs()
        else ""
    )
    raise FileNotFoundError(
        f"config {text!r}: no such file, and not a shipped config name (shipped: "
        f"{', '.join(shipped_configs())}){hint}"
    )


def copy_shipped_config(
    name: str, dest: str | os.PathLike[str] | None = None, *, overwrite: bool = False
) -> Path:
    """Write shipped config ``name`` to ``dest`` for editing.

    :param name: a shipped config's name.
    :param dest: a file, or an existing folder (the file keeps its name there); default
        ``./NAME.yaml``.
    :param overwrite: replace an existing file.
    :return: the file written.
    :raises FileNotFoundError: for an unknown name or a destination folder that is missing.
    :raises FileExistsError: if the file exists and ``overwrite`` is false.
    """
    src = shipped_config_path(name)
    target = Path(dest) if dest is not None else Path(src.name)
    if target.is_dir():
        target = target / src.name
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target.parent} does not exist (the folder to write into)")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass --force to replace it")
    atomic_write_text(target, src.read_text("utf-8"))
    return target
