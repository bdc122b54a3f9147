"""The ``photos`` data package: patches of scikit-image's bundled sample photos.

The package ships a spec (``photos_spec.json``, checksum-verified through the manifest) that
lists the source images (``skimage.data`` loaders that read files installed with
scikit-image, so nothing is downloaded), the SHA-256 of each decoded source array, the crop
boxes, the resize settings and the SLIC superpixel parameters. Patches are cropped, resized
to ``size x size`` and segmented deterministically; the superpixels are the edit regions.

Example:
    >>> patches = load_photo_patches(32)
    >>> p = patches[0]
    >>> p.name, tuple(p.image.shape), p.segments.dtype
    ('astronaut/full', (3, 32, 32), torch.int64)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unigen_sb3.data.packages import DataPackageError, read_package_file

__all__ = ["PACKAGE", "SPEC_FILE", "PhotoPatch", "load_photo_patches", "load_photos_spec"]

PACKAGE = "photos"
SPEC_FILE = "photos_spec.json"


@dataclass(frozen=True)
class PhotoPatch:
    """One photo patch with its superpixels.

    :param image: ``(3, H, W)`` float32 in ``[0, 1]``. Shared with the in-process cache: do
        not modify it in place (clone first).
    :param segments: ``(H, W)`` int64 SLIC labels ``0..K-1``.
    :param name: ``"<source>/<crop>"``, e.g. ``"astronaut/face"``.
    """

    image: torch.Tensor
    segments: torch.Tensor
    name: str


@lru_cache(maxsize=8)
def _load_spec(root: str | None) -> dict[str, Any]:
    spec = json.loads(read_package_file(PACKAGE, SPEC_FILE, root).decode("utf-8"))
    required = {"spec_version", "resize", "slic", "images"}
    if not isinstance(spec, dict) or not required <= set(spec):
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise DataPackageError(f"{SPEC_FILE} must hold keys {sorted(required)}, got {got}")
    return spec


def load_photos_spec(root: str | Path | None = None) -> dict[str, Any]:
    """The spec of the ``photos`` package (checksum-verified, cached).

    :param root: packages folder; ``None`` means the shipped packages.
    :return: a copy of the top level of the spec.
    """
    return dict(_load_spec(None if root is None else str(root)))


def _source_image(entry: dict[str, Any]) -> np.ndarray:
    import skimage.data

    name = entry["source"]
    loader = getattr(skimage.data, name, None)
    if not callable(loader):
        raise DataPackageError(f"{SPEC_FILE}: skimage.data has no image loader {name!r}")
    image = loader()
    if isinstance(image, tuple):  # stereo pairs: (left, right, disparity); use the left view
        image = image[0]
    image = np.ascontiguousarray(image)
    actual = hashlib.sha256(image.tobytes()).hexdigest()
    if list(image.shape) != entry["shape"] or actual != entry["source_sha256"]:
        raise DataPackageError(
            f"{SPEC_FILE}: source image {name!r} differs from the one the package was built "
            f"from: expected shape {entry['shape']} sha256 {entry['source_sha256']}, actual "
            f"shape {list(image.shape)} sha256 {actual} (a different scikit-image release?)"
        )
    return image


@lru_cache(maxsize=4)
def _load_patches(size: int, root: str | None) -> tuple[PhotoPatch, ...]:
    from skimage.segmentation import slic
    from skimage.transform import resize

    spec = _load_spec(root)
    rs = spec["resize"]
    patches = []
    for entry in spec["images"]:
        source = _source_image(entry)
        for crop in entry["crops"]:
            top, left, height, width = crop["box"]
            if top + height > source.shape[0] or left + width > source.shape[1]:
                raise DataPackageError(
                    f"{SPEC_FILE}: crop {entry['source']}/{crop['name']} box {crop['box']} "
                    f"exceeds the source shape {source.shape[:2]}"
                )
            region = source[top : top + height, left : left + width, :3]
            image = resize(
                region.astype(np.float64) / 255.0,
                (size, size),
                order=rs["order"],
                anti_aliasing=rs["anti_aliasing"],
                mode=rs["mode"],
            ).clip(0.0, 1.0)
            segments = slic(image, channel_axis=-1, **spec["slic"])
            patches.append(
                PhotoPatch(
                    image=torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32)),
                    segments=torch.from_numpy(segments.astype(np.int64)),
                    name=f"{entry['source']}/{crop['name']}",
                )
            )
    return tuple(patches)


def load_photo_patches(size: int = 64, *, root: str | Path | None = None) -> list[PhotoPatch]:
    """All patches of the ``photos`` package at ``size x size``, with SLIC superpixels.

    Computed once per ``(size, root)`` in a process and then served from a cache.

    :param size: patch side in pixels, at least 8.
    :param root: packages folder; ``None`` means the shipped packages.
    :return: a new list of the (shared, read-only by convention) patches, in spec order.
    :raises ValueError: if ``size`` is not an integer >= 8.
    :raises DataPackageError: if the spec or a source image does not match the package.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    return list(_load_patches(size, None if root is None else str(root)))
