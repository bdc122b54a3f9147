"""Would Winograd convolutions make the metric network cheaper on this CPU? (a probe).

The batched env's CPU cost is mostly the perceptual network's convolutions, which already
run near this CPU's best direct-convolution rate (see ``perceptual_throughput.py``). The
one way to do the same float32 work with less arithmetic is a fast convolution algorithm.
This probe runs the trunk's three 3x3 layers (``conv3`` to ``conv5``, about 60 % of its
multiply-adds) as Winograd F(4x4, 3x3): input and output tiles transformed with small
matrix products, and the 36 tile positions multiplied as one batched matrix product
(``torch.bmm``). That product needs 4x fewer multiply-adds than the direct convolution.

For each layer, on the layer's real inputs (the trunk's activations for a batch of
random images), it reports milliseconds per image for the direct convolution (channels-last)
in chunks of ``CPU_CHUNK_SIZE`` and in chunks of ``LATE_CHUNK_SIZE`` (as
``PerceptualDistance.features`` runs these layers on a CPU), for the Winograd form,
and for the Winograd form's matrix product alone; the Winograd form's largest error
relative to the direct output's largest value; and the rate of the matrix product. Nothing
in the package uses this code: it only answers the question, and writes the table to
``docs/benchmarks/winograd_probe.md``.

Usage::

    python benchmarks/winograd_probe.py
    python benchmarks/winograd_probe.py --batch 64 --repeats 7 --output /tmp/wp.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from unigen_sb3.rewards.perceptual import CPU_CHUNK_SIZE, LATE_CHUNK_SIZE, PerceptualDistance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perceptual_throughput import _median_seconds
from vec_throughput import environment_line, write_section

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "winograd_probe.md"

# Winograd F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity
# (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
_BT = [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
]
_G = [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
]
_AT = [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
]


class Winograd4x4:
    """A stride-1, padding-1 3x3 convolution as Winograd F(4x4, 3x3).

    Feature maps whose sides are multiples of 4 only (the trunk's 3x3 layers run on 8x8).
    """

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1):
            raise ValueError(f"{conv} is not a stride-1, padding-1 3x3 convolution")
        if conv.groups != 1:
            raise ValueError(f"{conv} is grouped; only groups=1 is supported")
        bt, g, at = (torch.tensor(m, dtype=torch.float64) for m in (_BT, _G, _AT))
        w = conv.weight.detach().double()
        u = torch.einsum("ai,ocij,bj->abco", g, w, g)  # (6, 6, Cin, Cout)
        self.u = u.reshape(36, conv.in_channels, conv.out_channels).float().contiguous()
        self.input_transform = torch.kron(bt, bt).t().float().contiguous()  # (36, 36)
        self.output_transform = torch.kron(at, at).t().float().contiguous()  # (36, 16)
        self.bias = None if conv.bias is None else conv.bias.detach().view(1, -1, 1, 1)
        self.out_channels = conv.out_channels

    def tiles(self, x: torch.Tensor) -> torch.Tensor:
        """(36, B*T, Cin): the transformed 6x6 input tiles (stride 4) of ``x`` (B, Cin, H, W)."""
        b, c, h, w = x.shape
        if h % 4 or w % 4:
            raise ValueError(f"feature maps must have sides divisible by 4, got {h}x{w}")
        t = F.pad(x, (1, 1, 1, 1)).unfold(2, 6, 4).unfold(3, 6, 4)  # B, C, th, tw, 6, 6
        n_tiles = (h // 4) * (w // 4)
        t = t.permute(0, 2, 3, 1, 4, 5).reshape(b * n_tiles * c, 36)
        return (t @ self.input_transform).reshape(b * n_tiles, c, 36).permute(2, 0, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        m = torch.bmm(self.tiles(x).contiguous(), self.u)  # (36, B*T, Cout)
        y = m.permute(1, 2, 0).reshape(-1, 36) @ self.output_transform  # (B*T*Cout, 16)
        th, tw = h // 4, w // 4
        y = y.reshape(b, th, tw, self.out_channels, 4, 4).permute(0, 3, 1, 4, 2, 5)
        y = y.reshape(b, self.out_channels, h, w)
        return y if self.bias is None else y + self.bias


def _layer_inputs(
    pd: PerceptualDistance, images: torch.Tensor
) -> list[tuple[str, torch.nn.Conv2d, torch.Tensor]]:
    """The trunk's 3x3 convolutions, each with its input for ``images``."""
    found: list[tuple[str, torch.nn.Conv2d, torch.Tensor]] = []
    handles = []
    for name, module in pd.trunk.named_modules():
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (3, 3):

            def keep(m: torch.nn.Module, args: tuple[torch.Tensor], name: str = name) -> None:
                found.append((name, m, args[0].detach().clone()))  # type: ignore[arg-type]

            handles.append(module.register_forward_pre_hook(keep))
    try:
        with torch.no_grad():
            # One trunk call on the whole batch: each layer's input in one tensor.
            pd.trunk(pd._scaled(images))
    finally:
        for handle in handles:
            handle.remove()
    return found


def _cases(
    conv: torch.nn.Conv2d, wino: Winograd4x4, x: torch.Tensor, tiles: torch.Tensor, chunk: int
) -> dict[str, Callable[[], object]]:
    """The timed forms of one layer on its input ``x``."""
    x_cl = x.contiguous(memory_format=torch.channels_last)
    return {
        "small": lambda: [conv(c) for c in x_cl.split(CPU_CHUNK_SIZE)],
        "trunk": lambda: [conv(c) for c in x_cl.split(chunk)],
        "winograd": lambda: wino(x),
        "product": lambda: torch.bmm(tiles, wino.u),
    }


def probe(*, backend: str, batch: int, size: int, warmup: int, repeats: int) -> list[str]:
    """Markdown lines: the per-layer table and the totals."""
    pd = PerceptualDistance(backend, device="cpu")
    chunk = max(pd.chunk_size or batch, LATE_CHUNK_SIZE)  # as features() runs slices 3-5
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    rows = []
    totals = {"small": 0.0, "trunk": 0.0, "winograd": 0.0, "product": 0.0}
    totals_macs = {"direct": 0.0, "product": 0.0}
    with torch.no_grad():
        for name, conv, x in _layer_inputs(pd, images):
            wino = Winograd4x4(conv)
            tiles = wino.tiles(x).contiguous()
            direct = conv(x.contiguous(memory_format=torch.channels_last))
            err = float((wino(x) - direct).abs().max() / direct.abs().max())
            cases = _cases(conv, wino, x, tiles, chunk)
            seconds = _median_seconds(cases, torch.device("cpu"), warmup, repeats)
            ms = {name: 1e3 * t for name, t in seconds.items()}
            _, cin, h, w = x.shape
            product_macs = 36 * tiles.shape[1] * cin * conv.out_channels
            rows.append(
                f"| {name} ({cin} -> {conv.out_channels}, {h}x{w}) "
                f"| {ms['small'] / batch:.3f} | {ms['trunk'] / batch:.3f} "
                f"| {ms['winograd'] / batch:.3f} | {ms['product'] / batch:.3f} "
                f"| {product_macs / ms['product'] / 1e6:.0f} | {err:.1e} |"
            )
            for key in totals:
                totals[key] += ms[key] / batch
            totals_macs["direct"] += direct.numel() * cin * 9 / batch
            totals_macs["product"] += product_macs / batch
    direct_rate = totals_macs["direct"] / totals["trunk"] / 1e6  # G multiply-adds/s
    product_rate = totals_macs["product"] / totals["product"] / 1e6
    return [
        f"Backend `{pd.backend}`, a batch of {batch} random {size}x{size} images; direct "
        f"convolutions channels-last, in chunks of {CPU_CHUNK_SIZE} and in chunks of {chunk} "
        f"(as `PerceptualDistance.features` runs these layers on a CPU); median of {repeats} "
        f"after {warmup} warm-up runs.",
        "",
        f"| layer | direct, chunks of {CPU_CHUNK_SIZE} (ms/image) | direct, chunks of {chunk} "
        "| Winograd F(4x4,3x3) | its matrix product alone | product G multiply-adds/s "
        "| max error / max output |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        f"| all three | {totals['small']:.3f} | {totals['trunk']:.3f} "
        f"| {totals['winograd']:.3f} | {totals['product']:.3f} | {product_rate:.0f} | |",
        "",
        f"The Winograd form took {totals['winograd'] / totals['trunk']:.2f}x the time of the "
        f"direct convolutions in chunks of {chunk}, although its matrix product does 4x fewer "
        f"multiply-adds: that product (`torch.bmm`, MKL) ran at {product_rate:.0f} G "
        f"multiply-adds/s against the direct convolutions' {direct_rate:.0f} (oneDNN), and the "
        f"tile transforms took another {totals['winograd'] - totals['product']:.3f} ms per image.",
    ]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="stlpips", help="PerceptualDistance backend")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="image side length")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--append", action="store_true", help="append a section to --output")
    args = parser.parse_args(argv)
    env_line = environment_line(["cpu"])
    lines = probe(
        backend=args.backend,
        batch=args.batch,
        size=args.size,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    argv_used = sys.argv[1:] if argv is None else argv
    command = ("python benchmarks/winograd_probe.py " + shlex.join(argv_used)).strip()
    section = "\n".join(
        [
            f"## {datetime.date.today().isoformat()}, {os.cpu_count()} CPUs",
            "",
            f"Command: `{command}`  ",
            f"{env_line}.",
            "",
            *lines,
            "",
        ]
    )
    title = (
        "# Winograd convolutions for the metric network on a CPU (probe)\n\n"
        "Written by `benchmarks/winograd_probe.py` (see its docstring); rerun it to refresh.\n\n"
    )
    write_section(args.output, section, title, append=args.append)
    print(section)
    return section


if __name__ == "__main__":
    main()
