"""Throughput of :class:`unigen_sb3.rewards.perceptual.PerceptualDistance` (images per second).

Compares, at 64x64:

- one call on a batch of 64 vs 64 calls on one image each;
- a cached target (the target's features computed once, one network forward per image,
  as the env does) vs the two-image path (both images through the network every call).

Each case is warmed up, repeated, and the median time is reported. The markdown table
is printed and written (with the command, torch version, thread count and device) to
``docs/benchmarks/perceptual_throughput.md``; ``--append`` adds a section instead, for
results from another machine.

Usage::

    python benchmarks/perceptual_throughput.py                 # CPU (+ CUDA when present)
    python benchmarks/perceptual_throughput.py --device cuda --append
    python benchmarks/perceptual_throughput.py --threads 1     # CPUs shared with other jobs
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import torch

from unigen_sb3.rewards.conv_blur import ConvBlurDownsample
from unigen_sb3.rewards.perceptual import LATE_CHUNK_SIZE, PerceptualDistance
from unigen_sb3.utils import resolve_device

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vec_throughput import write_section

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "perceptual_throughput.md"
)


def _median_seconds(
    cases: dict[str, Callable[[], object]], device: torch.device, warmup: int, repeats: int
) -> dict[str, float]:
    """Median wall time of each case; the cases take turns, so load drift hits all alike."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for fn in cases.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def bench_device(
    device: torch.device, *, backend: str, batch: int, size: int, warmup: int, repeats: int
) -> tuple[str, list[str]]:
    """Run the four cases on one device; return a header line and the table rows."""
    pd = PerceptualDistance(backend, device=device)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=g).to(device)
    target = torch.rand(1, 3, size, size, generator=g).to(device)
    target_feats = pd.features(target)
    target_batch = target.expand(batch, -1, -1, -1).contiguous()

    cases: dict[str, Callable[[], object]] = {
        "batch": lambda: pd.distance_from_features(pd.features(images), target_feats),
        "single": lambda: [
            pd.distance_from_features(pd.features(images[i : i + 1]), target_feats)
            for i in range(batch)
        ],
        "batch_pair": lambda: pd.distance(images, target_batch),
        "single_pair": lambda: [pd.distance(images[i : i + 1], target) for i in range(batch)],
    }
    seconds = _median_seconds(cases, device, warmup, repeats)
    rate = {name: batch / t for name, t in seconds.items()}
    rows = [
        f"| {device.type} | batch of {batch}, one call | {rate['batch']:.0f} "
        f"| {rate['batch_pair']:.0f} | {rate['batch'] / rate['batch_pair']:.2f}x |",
        f"| {device.type} | {batch} calls of 1 image | {rate['single']:.0f} "
        f"| {rate['single_pair']:.0f} | {rate['single'] / rate['single_pair']:.2f}x |",
        f"| {device.type} | batching speed-up | {rate['batch'] / rate['single']:.1f}x "
        f"| {rate['batch_pair'] / rate['single_pair']:.1f}x | |",
    ]
    header = f"- {device.type}: {_device_name(device)}; backend `{pd.backend}`"
    return header, rows


class ConvCounter:
    """Multiply-adds done and wall time spent inside a network's convolutions (hooks).

    Counts ``Conv2d`` layers and the fused first layer of the shift-tolerant trunk
    (:class:`ConvBlurDownsample`, counted by its own arithmetic; the blur-downsample
    layers elsewhere in that trunk are depthwise and not counted). CPU only: a CUDA
    forward returns before its kernels finish.
    """

    def __init__(self, net: torch.nn.Module) -> None:
        self.macs = 0
        self.seconds = 0.0
        self._start = 0.0
        self._handles = []
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, ConvBlurDownsample)):
                self._handles.append(module.register_forward_pre_hook(self._pre))
                self._handles.append(module.register_forward_hook(self._post))

    def _pre(self, module: torch.nn.Module, args: object) -> None:
        self._start = time.perf_counter()

    def _post(self, module: torch.nn.Module, args: tuple[torch.Tensor], out: torch.Tensor) -> None:
        self.seconds += time.perf_counter() - self._start
        if isinstance(module, ConvBlurDownsample):
            n, _, height, width = args[0].shape
            self.macs += n * module.multiply_adds(height, width)
            return
        conv = cast(torch.nn.Conv2d, module)
        kh, kw = conv.kernel_size
        self.macs += out.numel() * (conv.in_channels // conv.groups) * kh * kw

    def reset(self) -> None:
        self.macs, self.seconds = 0, 0.0

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def reference_conv_rate(repeats: int = 5) -> float:
    """Best-of-``repeats`` multiply-adds per second of one large float32 convolution.

    A 3x3 convolution, 256 -> 256 channels, on a batch of 64 16x16 maps in the
    channels-last layout: the same oneDNN path as the network's layers, with enough work
    per call to reach the kernel's best rate on this CPU. (``torch.mm`` is no such
    yardstick: MKL's matrix product ran at under half this rate on the AMD CPU here.)
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 256, 16, 16, generator=g).contiguous(memory_format=torch.channels_last)
    w = torch.rand(256, 256, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.conv2d(x, w, padding=1)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.conv2d(x, w, padding=1)
            best = min(best, time.perf_counter() - start)
    return 64 * 16 * 16 * 256 * 256 * 9 / best


def conv_arithmetic(*, backend: str, batch: int, size: int, repeats: int) -> list[str]:
    """How close the network's convolutions run to this CPU's matrix-product rate.

    Returns markdown lines: multiply-adds per image in the trunk's convolutions, the rate
    reached inside them for a batch (as the batched env runs it) and one image at a time
    (as each env of a DummyVecEnv does), and a large convolution's rate for scale.
    """
    pd = PerceptualDistance(backend, device="cpu")
    images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    counter = ConvCounter(pd.trunk)
    try:
        rates: dict[str, tuple[float, float]] = {}
        cases: dict[str, Callable[[], object]] = {
            "batch": lambda: pd.features(images),
            "single": lambda: [pd.features(images[i : i + 1]) for i in range(batch)],
        }
        for name, fn in cases.items():
            fn()  # warm-up
            best: tuple[float, float] | None = None
            for _ in range(repeats):
                counter.reset()
                fn()
                if best is None or counter.seconds < best[1]:
                    best = (counter.macs, counter.seconds)
            assert best is not None
            rates[name] = best
    finally:
        counter.close()
    macs_per_image = rates["batch"][0] / batch
    reference = reference_conv_rate(repeats)
    lines = [
        f"Convolution arithmetic (CPU; best of {repeats}): the trunk's convolutions do "
        f"{macs_per_image / 1e6:.0f} M multiply-adds per {size}x{size} image.",
        "",
        "| calls | ms per image inside the convolutions | G multiply-adds / s | "
        "vs a large convolution |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "batch": f"batch of {batch}, one call (chunks of {pd.chunk_size}; slices 3-5 in "
        f"chunks of {max(pd.chunk_size or batch, LATE_CHUNK_SIZE)})",
        "single": f"{batch} calls of 1 image",
    }
    for name, (macs, seconds) in rates.items():
        rate = macs / seconds
        lines.append(
            f"| {labels[name]} | {1e3 * seconds / batch:.2f} | {rate / 1e9:.0f} "
            f"| {rate / reference:.0%} |"
        )
    lines += [
        "",
        f"A large float32 convolution on this CPU (3x3, 256 -> 256 channels, 64 maps of "
        f"16x16, channels-last): {reference / 1e9:.0f} G multiply-adds / s. Where the "
        "batched rate is near it, the network's float32 cost per image cannot fall much "
        "further on this machine; only fewer images or less arithmetic would help.",
    ]
    return lines


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        nargs="+",
        default=None,
        help="devices to measure (default: cpu, plus cuda when available)",
    )
    parser.add_argument("--backend", default="auto", help="PerceptualDistance backend")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="image side length")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice); use 1 on a busy machine",
    )
    parser.add_argument(
        "--no-conv-rate",
        action="store_true",
        help="skip the CPU convolution-arithmetic table",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--append", action="store_true", help="append a section to --output")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))

    load = os.getloadavg()[0]  # other processes on the CPUs skew small-batch timings most
    headers, rows = [], []
    for spec in devices:
        header, device_rows = bench_device(
            resolve_device(spec),
            backend=args.backend,
            batch=args.batch,
            size=args.size,
            warmup=args.warmup,
            repeats=args.repeats,
        )
        headers.append(header)
        rows.extend(device_rows)

    arithmetic: list[str] = []
    if "cpu" in devices and not args.no_conv_rate:
        arithmetic = [
            "",
            *conv_arithmetic(
                backend=args.backend, batch=args.batch, size=args.size, repeats=args.repeats
            ),
        ]

    argv_used = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/perceptual_throughput.py " + shlex.join(argv_used)
    section = "\n".join(
        [
            f"## {datetime.date.today().isoformat()}, {os.cpu_count()} CPUs"
            + "".join(
                f", {_device_name(torch.device(d))}" for d in devices if d.startswith("cuda")
            ),
            "",
            f"Command: `{command.strip()}`  ",
            f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
            f"{args.size}x{args.size} images, median of {args.repeats} runs after "
            f"{args.warmup} warm-up runs (the cases take turns within each repeat); "
            f"1-minute load average before the run: {load:.2f} on {os.cpu_count()} CPUs.",
            "",
            *headers,
            "",
            "Images per second (higher is better). *Cached target*: the target's features "
            "are computed once and reused (one network forward per image). *Two-image*: "
            "`distance(x, target)` runs both images through the network each call.",
            "",
            "| device | calls | cached target | two-image | cached / two-image |",
            "|---|---|---:|---:|---:|",
            *rows,
            *arithmetic,
            "",
        ]
    )
    print(section)
    title = (
        "# PerceptualDistance throughput\n\n"
        "Written by `benchmarks/perceptual_throughput.py`; rerun it to refresh.\n\n"
    )
    write_section(args.output, section, title, append=args.append)
    return section


if __name__ == "__main__":
    main()
