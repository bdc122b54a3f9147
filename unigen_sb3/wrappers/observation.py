"""Observation wrapper: the env's Dict observation as one uint8 image for ``CnnPolicy``.

Channel layout of the ``(C, H, W)`` uint8 image (channel-first, so SB3 guesses nothing):

=================  ==========================================================
channels           content
=================  ==========================================================
0-2                ``canvas`` RGB
3                  ``mask`` (0 or 255)
4 .. 4+A-1         ``attributes``: one constant plane per entry (the prompt)
4+A .. 4+A+R-1     ``recent``: one constant plane per entry
=================  ==========================================================

With ``reference="observed"`` (the reconstruction task) the ``target`` RGB comes as three
more channels right after the canvas, so the mask is channel 6 and the vectors follow it.

Vector entries are mapped linearly from their Box bounds ``[low, high]`` to ``[0, 255]``
(clipped, rounded), so a plane's value is ``round(255 * (v - low) / (high - low))``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

IMAGE_KEYS = ("canvas", "target", "mask")
"""Image keys in channel order; ``target`` is present only in the ``"observed"`` mode."""
REQUIRED_IMAGE_KEYS = ("canvas", "mask")
VECTOR_KEYS = ("attributes", "recent")


def _check_dict_space(space: gym.Space[Any]) -> spaces.Dict:
    if not isinstance(space, spaces.Dict):
        raise TypeError(f"ImageObsWrapper needs a Dict observation space, got {space!r}")
    missing = [k for k in (*REQUIRED_IMAGE_KEYS, *VECTOR_KEYS) if k not in space.spaces]
    if missing:
        raise ValueError(
            f"observation space lacks keys {missing}; needs {REQUIRED_IMAGE_KEYS + VECTOR_KEYS}"
            " (and optionally 'target')"
        )
    for key in VECTOR_KEYS:
        box = space[key]
        if not isinstance(box, spaces.Box) or not (
            np.all(np.isfinite(box.low)) and np.all(np.isfinite(box.high))
        ):
            raise ValueError(f"observation '{key}' must be a Box with finite bounds, got {box!r}")
    return space


def _box(space: spaces.Dict, key: str) -> spaces.Box:
    box = space[key]
    if not isinstance(box, spaces.Box):
        raise TypeError(f"observation '{key}' must be a Box, got {box!r}")
    return box


class ImageStacker:
    """Stacks a Dict observation (single or batched) into the uint8 image layout above.

    :param space: the env's Dict observation space.
    """

    def __init__(self, space: gym.Space[Any]) -> None:
        self.dict_space = _check_dict_space(space)
        #: The image keys this space has, in channel order.
        self.image_keys = tuple(k for k in IMAGE_KEYS if k in self.dict_space.spaces)
        boxes = {k: _box(self.dict_space, k) for k in (*self.image_keys, *VECTOR_KEYS)}
        height, width = boxes["canvas"].shape[1:]
        self.height, self.width = int(height), int(width)
        self.lows = {k: np.asarray(boxes[k].low, np.float32) for k in VECTOR_KEYS}
        self.spans = {k: np.asarray(boxes[k].high, np.float32) - self.lows[k] for k in VECTOR_KEYS}
        self.sizes = {k: int(boxes[k].shape[0]) for k in VECTOR_KEYS}
        n_vec = sum(self.sizes.values())
        n_img = sum(int(boxes[k].shape[0]) for k in self.image_keys)
        self.channels = n_img + n_vec
        self.space = spaces.Box(0, 255, (self.channels, self.height, self.width), np.uint8)

    def channel_names(self) -> list[str]:
        """A name per channel, in order (for docs and debugging)."""
        names = []
        for key in self.image_keys:
            names += ["mask"] if key == "mask" else [f"{key}_{c}" for c in "rgb"]
        for key in VECTOR_KEYS:
            names += [f"{key}_{i}" for i in range(self.sizes[key])]
        return names

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Stack one observation ``(C,H,W)`` or a batch ``(N,C,H,W)`` (leading N on every key)."""
        batched = np.asarray(obs["canvas"]).ndim == 4
        planes = [np.asarray(obs[k], np.uint8) for k in self.image_keys]
        if not batched:
            planes = [p[None] for p in planes]
        n = planes[0].shape[0]
        m = self.image_keys.index("mask")
        planes[m] = np.where(planes[m] > 0, 255, 0).astype(np.uint8)
        for key in VECTOR_KEYS:
            vec = np.asarray(obs[key], np.float32).reshape(n, -1)
            scaled = np.clip((vec - self.lows[key]) / self.spans[key], 0.0, 1.0)
            levels = np.rint(scaled * 255.0).astype(np.uint8)
            shape = (n, vec.shape[1], self.height, self.width)
            planes.append(np.broadcast_to(levels[:, :, None, None], shape))
        out = np.concatenate(planes, axis=1)
        return out if batched else out[0]


class ImageObsWrapper(gym.ObservationWrapper[np.ndarray, Any, Any]):
    """Turn the UniGen Dict observation into one uint8 ``(C, H, W)`` image (layout above).

    :param env: an env with the UniGen Dict observation space.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.stacker = ImageStacker(env.observation_space)
        self.observation_space = self.stacker.space

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """Stack the Dict observation into the image."""
        return self.stacker(observation)
