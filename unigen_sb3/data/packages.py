"""Versioned data packages: a folder with ``manifest.json`` and the files it lists.

A package lives in ``<root>/<name>/`` (``root`` defaults to :data:`PACKAGES_ROOT`, the
``packages`` folder shipped beside this module). Its manifest reads::

    {"name": "shapes", "version": "1.0.0",
     "files": [{"path": "shapes_spec.json", "sha256": "<64 hex>", "bytes": 1234}],
     "source": "...", "licence": "...", "description": "..."}

Loaders read files through :func:`read_package_file`, which checks the file's size and
SHA-256 against the manifest first, so a changed or corrupt file is an error rather than a
silently different experiment.

Example:
    >>> "shapes" in list_packages()
    True
    >>> verify_package("shapes").name
    'shapes'
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "MANIFEST_NAME",
    "PACKAGES_ROOT",
    "DataPackageError",
    "PackageFile",
    "PackageManifest",
    "build_manifest",
    "file_sha256",
    "list_packages",
    "load_manifest",
    "package_dir",
    "read_package_file",
    "verify_package",
]

#: Where the shipped packages live; loaders take a ``root`` argument to use another place.
PACKAGES_ROOT = Path(__file__).resolve().parent / "packages"
MANIFEST_NAME = "manifest.json"

_MANIFEST_KEYS = ("name", "version", "files", "source", "licence", "description")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class DataPackageError(ValueError):
    """A data package is missing, malformed, or does not match its manifest."""


@dataclass(frozen=True)
class PackageFile:
    """One file entry of a manifest.

    :param path: POSIX path relative to the package folder.
    :param sha256: expected SHA-256 of the file's bytes (64 lowercase hex digits).
    :param bytes: expected size in bytes.
    """

    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class PackageManifest:
    """A parsed ``manifest.json``.

    :param name: package name (equals its folder name).
    :param version: package version string.
    :param files: the files the package consists of.
    :param source: where the data comes from.
    :param licence: the data's licence.
    :param description: what the package holds.
    """

    name: str
    version: str
    files: tuple[PackageFile, ...]
    source: str
    licence: str
    description: str

    def file(self, path: str) -> PackageFile:
        """The entry for ``path``.

        :param path: a path listed in the manifest.
        :return: its entry.
        :raises DataPackageError: if the manifest does not list ``path``.
        """
        for f in self.files:
            if f.path == path:
                return f
        listed = [f.path for f in self.files]
        raise DataPackageError(
            f"package {self.name!r} does not list file {path!r}; listed files: {listed}"
        )


def _root(root: str | Path | None) -> Path:
    return PACKAGES_ROOT if root is None else Path(root)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as 64 lowercase hex digits.

    :param path: the file.
    :return: the hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_packages(root: str | Path | None = None) -> list[str]:
    """Names of the packages under ``root`` (folders that hold a ``manifest.json``).

    :param root: packages folder; ``None`` means :data:`PACKAGES_ROOT`.
    :return: sorted package names.
    """
    base = _root(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / MANIFEST_NAME).is_file())


def package_dir(name: str, root: str | Path | None = None) -> Path:
    """The folder of package ``name``.

    :param name: package name.
    :param root: packages folder; ``None`` means :data:`PACKAGES_ROOT`.
    :return: the folder path.
    :raises DataPackageError: if there is no such package.
    """
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise DataPackageError(f"package name must be a plain folder name, got {name!r}")
    path = _root(root) / name
    if not (path / MANIFEST_NAME).is_file():
        raise DataPackageError(
            f"no data package {name!r} under {_root(root)} (no {MANIFEST_NAME}); "
            f"available: {list_packages(root)}"
        )
    return path


def _parse_file_entry(name: str, i: int, entry: Any) -> PackageFile:
    where = f"package {name!r} manifest files[{i}]"
    if not isinstance(entry, dict) or set(entry) != {"path", "sha256", "bytes"}:
        raise DataPackageError(
            f"{where} must be an object with keys path, sha256, bytes; got {entry!r}"
        )
    path, sha, size = entry["path"], entry["sha256"], entry["bytes"]
    pure = PurePosixPath(path) if isinstance(path, str) else None
    if pure is None or not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise DataPackageError(
            f"{where}.path must be a relative POSIX path inside it, got {path!r}"
        )
    if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
        raise DataPackageError(f"{where}.sha256 must be 64 lowercase hex digits, got {sha!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise DataPackageError(f"{where}.bytes must be a non-negative integer, got {size!r}")
    return PackageFile(path=path, sha256=sha, bytes=size)


def load_manifest(name: str, root: str | Path | None = None) -> PackageManifest:
    """Read and check the schema of package ``name``'s manifest (not the files; see
    :func:`verify_package`).

    :param name: package name.
    :param root: packages folder; ``None`` means :data:`PACKAGES_ROOT`.
    :return: the manifest.
    :raises DataPackageError: if the package is missing or its manifest is malformed.
    """
    path = package_dir(name, root) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataPackageError(f"cannot read manifest {path}: {exc}") from exc
    if not isinstance(raw, dict) or set(raw) != set(_MANIFEST_KEYS):
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DataPackageError(
            f"manifest {path} must be an object with keys {list(_MANIFEST_KEYS)}, got {got}"
        )
    for key in ("name", "version", "source", "licence", "description"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise DataPackageError(f"manifest {path}: {key!r} must be a non-empty string")
    if raw["name"] != name:
        raise DataPackageError(
            f"manifest {path} names package {raw['name']!r} but lives in folder {name!r}"
        )
    if not isinstance(raw["files"], list) or not raw["files"]:
        raise DataPackageError(f"manifest {path}: 'files' must be a non-empty list")
    files = tuple(_parse_file_entry(name, i, e) for i, e in enumerate(raw["files"]))
    return PackageManifest(
        name=raw["name"],
        version=raw["version"],
        files=files,
        source=raw["source"],
        licence=raw["licence"],
        description=raw["description"],
    )


def _check_file(name: str, folder: Path, entry: PackageFile) -> Path:
    path = folder / entry.path
    if not path.is_file():
        raise DataPackageError(
            f"package {name!r}: file {entry.path!r} is missing (expected at {path}, "
            f"sha256 {entry.sha256})"
        )
    size = path.stat().st_size
    if size != entry.bytes:
        raise DataPackageError(
            f"package {name!r}: file {entry.path!r} has {size} bytes, its manifest says "
            f"{entry.bytes} (expected sha256 {entry.sha256}); the file or the manifest changed"
        )
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise DataPackageError(
            f"package {name!r}: file {entry.path!r} is corrupt or changed: expected sha256 "
            f"{entry.sha256}, actual {actual} ({path.stat().st_size} bytes, "
            f"expected {entry.bytes})"
        )
    return path


def verify_package(name: str, root: str | Path | None = None) -> PackageManifest:
    """Check every file of package ``name`` against its manifest (presence, size, SHA-256).

    :param name: package name.
    :param root: packages folder; ``None`` means :data:`PACKAGES_ROOT`.
    :return: the manifest.
    :raises DataPackageError: naming the first missing or corrupt file, with the expected and
        the actual size or SHA-256.
    """
    manifest = load_manifest(name, root)
    folder = package_dir(name, root)
    for entry in manifest.files:
        _check_file(name, folder, entry)
    return manifest


def read_package_file(name: str, path: str, root: str | Path | None = None) -> bytes:
    """Read one file of a package after checking it against the manifest.

    :param name: package name.
    :param path: the file's path as listed in the manifest.
    :param root: packages folder; ``None`` means :data:`PACKAGES_ROOT`.
    :return: the file's bytes.
    :raises DataPackageError: if the file is not listed, missing, or corrupt.
    """
    manifest = load_manifest(name, root)
    return _check_file(name, package_dir(name, root), manifest.file(path)).read_bytes()


def build_manifest(
    folder: str | Path,
    *,
    version: str,
    source: str,
    licence: str,
    description: str,
) -> dict[str, Any]:
    """Build a manifest (as a JSON-ready dict) for every file in ``folder`` but the manifest.

    Maintainers run this after changing a package's files, then write the result to
    ``<folder>/manifest.json`` (``json.dumps(m, indent=2) + "\\n"``) and bump ``version``.

    :param folder: the package folder; its name is the package name.
    :param version: package version.
    :param source: where the data comes from.
    :param licence: the data's licence.
    :param description: what the package holds.
    :return: the manifest dict.
    """
    base = Path(folder)
    files = [
        {
            "path": p.relative_to(base).as_posix(),
            "sha256": file_sha256(p),
            "bytes": p.stat().st_size,
        }
        for p in sorted(base.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME and "__pycache__" not in p.parts
    ]
    return {
        "name": base.name,
        "version": version,
        "files": files,
        "source": source,
        "licence": licence,
        "description": description,
    }
