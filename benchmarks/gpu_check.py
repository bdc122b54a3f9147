"""One-shot check of the CUDA path of the batched VecEnv, for a lent GPU machine (about 6 minutes).

Stages (each writes its result into the markdown report as soon as it is done, so a stage
that fails or a run that is cut short still leaves the earlier results):

1. the batched env on CUDA: state and cached target features on the GPU, uint8 numpy
   observations on the host;
2. equivalence CUDA vs CPU for the same seeds and actions: done flags equal, images within one
   uint8 level (cuDNN and oneDNN kernels round differently), vector rewards within 1e-3;
3. a few PPO ``CnnPolicy`` updates with the policy and the env on CUDA;
4. throughput: the batched env on CUDA for N in ``--n-envs`` (default 256 1024 4096), each in
   float32 and with the metric network autocast to bfloat16, lazy scoring (the default) with a
   task bank of ``--task-bank-size`` tasks per env, plus at the middle N the bank keeping
   its targets' features (float32, timed after every env played its bank once), the dense
   schedule and no bank (what a step computed before lazy scoring and banks), vs
   ``DummyVecEnv`` on CPU (N up to ``--skip-dummy-above``), with peak GPU memory;
5. where a step's time goes at the middle N (float32 and bfloat16): ``step_breakdown.py``'s
   table with every timed call synchronized.

Needs only the package and its dependencies (stable-baselines3, gymnasium, stlpips-pytorch).
The exit status is 1 when a check fails.

Usage::

    python benchmarks/gpu_check.py --output "$OUT/vec_throughput_gpu.md"   # about 6 minutes
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import step_breakdown
from vec_throughput import Result, bank_warmup, environment_line, markdown, measure

from unigen_sb3.envs.canvas import NUM_OPS, NUM_PARAMS, OP_STOP
from unigen_sb3.envs.vec_env import UniGenVecEnv
from unigen_sb3.make import make_unigen_vec_env


def check_device_state(size: int, device: str = "cuda") -> str:
    """Stage 1: where the state lives and what comes back to the host, under both scoring
    schedules. Dense scoring keeps every episode's target and canvas features on the device;
    lazy scoring (the default) keeps none and runs the network when an episode ends, so its
    check is a step that ends every episode: its rewards must come back finite."""
    want = torch.device(device).type
    parts = []
    for dense in (False, True):
        venv = UniGenVecEnv(4, size=size, seed=0, device=device, dense_components=dense)
        obs = venv.reset()
        core = venv.core
        feats = (core.target_features or []) + (core.canvas_features or [])
        if dense != bool(feats):
            raise AssertionError(
                f"dense_components={dense}: {len(feats)} cached feature maps, expected "
                + ("some" if dense else "none")
            )
        stop = {"op": np.full(4, OP_STOP), "params": np.zeros((4, NUM_PARAMS), np.float32)}
        obs, reward, done, _ = venv.step(stop)  # every episode ends and is paid
        tensors = [core.canvas, core.target, core.start, core.mask, *feats]
        ok = (
            all(t.device.type == want for t in tensors)
            and all(isinstance(v, np.ndarray) for v in obs.values())
            and obs["canvas"].dtype == np.uint8
            and bool(done.all())
            and bool(np.isfinite(reward).all())
        )
        if not ok:
            raise AssertionError(
                f"dense_components={dense}: state not on {want}, observations not host numpy "
                "uint8, or the paid rewards of a stop step are not finite"
            )
        parts.append(
            f"{'dense' if dense else 'lazy'}: canvas, target, start, mask"
            + (f" and {len(feats)} cached feature maps" if dense else "")
            + " on the device, the paid rewards finite"
        )
    return f"on {core.canvas.device}: " + "; ".join(parts)


def check_equivalence(
    size: int, n_envs: int = 8, steps: int = 12, device: str = "cuda", *, tf32: bool = False
) -> str:
    """Stage 2: CUDA vs CPU, same seeds and actions.

    PyTorch lets cuDNN convolutions use TF32 by default, which moves the perceptual network's
    output by about 1e-3 (H100: components differ by up to 1.24e-3 with the default, 3.6e-6
    with TF32 off in one run). Besides, the thresholded sub-metrics (a pixel "changed" above
    0.05, a colour within Delta-E 10) can flip single pixels between devices: one flip moves
    a component by 1/(3 * pixels in the mask or union). An H100 run in fp32 showed 3.56e-4,
    the size of one flip in a ~940-pixel union (not traced to the pixel). So the fp32
    comparison (``tf32=False``, restored afterwards) allows 1e-3 (two such flips) and the
    default-TF32 one 2e-3.
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if not tf32:  # the realism score's and CIELAB's matmuls too
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return _compare_devices(size, n_envs, steps, device, tol=2e-3 if tf32 else 1e-3)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _compare_devices(size: int, n_envs: int, steps: int, device: str, *, tol: float) -> str:
    # Dense scoring: every component every step, so the per-step components are compared too.
    kw: dict[str, Any] = {"size": size, "horizon": 6, "seed": 3, "dense_components": True}
    gpu, cpu = UniGenVecEnv(n_envs, device=device, **kw), UniGenVecEnv(n_envs, device="cpu", **kw)
    og, oc = gpu.reset(), cpu.reset()
    rng = np.random.default_rng(0)
    max_img = max(int(np.abs(og[k].astype(int) - oc[k]).max()) for k in ("canvas", "mask"))
    max_reward = max_state = 0.0
    for _ in range(steps):
        action = {
            "op": rng.integers(NUM_OPS, size=n_envs),
            "params": rng.uniform(-1, 1, (n_envs, NUM_PARAMS)).astype(np.float32),
        }
        og, rg, dg, ig = gpu.step(action)
        oc, rc, dc, ic = cpu.step(action)
        if not np.array_equal(dg, dc):
            raise AssertionError(f"done flags differ: cuda {dg.tolist()} vs cpu {dc.tolist()}")
        max_img = max(max_img, int(np.abs(og["canvas"].astype(int) - oc["canvas"]).max()))
        max_reward = max(max_reward, float(np.abs(rg - rc).max()))
        max_state = max(
            max_state,
            max(
                float(np.abs(a["state_components"] - b["state_components"]).max())
                for a, b in zip(ig, ic, strict=True)
            ),
        )
    summary = (
        f"N={n_envs}, {steps} steps: max image difference {max_img} uint8 level(s), max reward "
        f"difference {max_reward:.2e}, max per-step component difference {max_state:.2e}"
    )
    if max_img > 1 or max_reward > tol or max_state > tol:
        raise AssertionError(f"tolerance exceeded (1 level, {tol:g}): " + summary)
    return summary


def check_ppo(size: int, device: str = "cuda") -> str:
    """Stage 3: a few PPO updates, policy and env on CUDA."""
    from stable_baselines3 import PPO

    venv = make_unigen_vec_env(n_envs=16, seed=0, size=size, horizon=6, device=device)
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=64, n_epochs=2, device=device, seed=0)
    start = time.perf_counter()
    model.learn(total_timesteps=512)
    elapsed = time.perf_counter() - start
    if model.num_timesteps < 512 or not model.ep_info_buffer:
        raise AssertionError(
            f"PPO ran {model.num_timesteps} steps, episodes: {model.ep_info_buffer}"
        )
    return (
        f"PPO CnnPolicy, 16 envs, {model.num_timesteps} steps in {elapsed:.1f} s on "
        f"{model.device}; {len(model.ep_info_buffer)} episodes logged"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the stages and write the report; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per row")
    parser.add_argument("--skip-dummy-above", type=int, default=256, help="largest dummy N")
    parser.add_argument(
        "--task-bank-size", type=int, default=4, help="tasks per env of the batched rows' bank"
    )
    parser.add_argument(
        "--device", default="cuda", help="'cpu' only to dry-run this script on a CPU machine"
    )
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: nothing to check", file=sys.stderr)
        return 1
    lines = [
        f"## {datetime.date.today().isoformat()}, "
        + (torch.cuda.get_device_name(0) if args.device.startswith("cuda") else args.device),
        "",
        f"Command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`  ",
        environment_line([args.device]) + ".",
        "",
    ]
    failed = False

    def write() -> None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines) + "\n")

    stages: list[tuple[str, Callable[[], str]]] = [
        ("env state on the device", lambda: check_device_state(args.size, args.device)),
        (
            "device vs CPU equivalence (fp32, TF32 off)",
            lambda: check_equivalence(args.size, device=args.device),
        ),
        (
            "device vs CPU equivalence (PyTorch default: TF32 convolutions)",
            lambda: check_equivalence(args.size, device=args.device, tf32=True),
        ),
        ("PPO on the device", lambda: check_ppo(args.size, args.device)),
    ]
    for name, stage in stages:
        start = time.perf_counter()
        try:
            detail = stage()
            status = "ok"
        except Exception as exc:  # report every stage, whatever fails
            failed = True
            status, detail = "FAILED", f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        lines.append(f"- {name}: **{status}** ({time.perf_counter() - start:.1f} s): {detail}")
        print(lines[-1], flush=True)
        write()
    lines += ["", f"Throughput, batched on {args.device} vs DummyVecEnv on CPU:", ""]
    results: list[Result] = []
    middle = sorted(args.n_envs)[len(args.n_envs) // 2]
    # (kind, N, device, metric dtype, scoring, task bank, bank keeps target features)
    rows: list[tuple[str, int, str, str | None, str, int | None, bool]] = []
    bank = args.task_bank_size
    for n in args.n_envs:
        for dtype in (None, "bfloat16"):
            rows.append(("batched", n, args.device, dtype, "lazy", bank, False))
    rows.append(("batched", middle, args.device, None, "lazy", bank, True))
    rows.append(("batched", middle, args.device, None, "lazy", None, False))
    rows.append(("batched", middle, args.device, None, "dense", None, False))
    for n in args.n_envs:
        if n <= args.skip_dummy_above:
            rows.append(("dummy", n, "cpu", None, "lazy", None, False))
    for kind, n, device, dtype, scoring, bank_size, features in rows:
        try:
            r = measure(
                kind,
                n,
                size=args.size,
                device=device,
                seconds=args.seconds,
                warmup=bank_warmup(bank) if features else 1,
                metric_dtype=dtype,
                schedule=scoring,
                task_bank_size=bank_size,
                task_bank_features=features,
            )
        except Exception as exc:
            failed = True
            traceback.print_exc()
            r = Result(kind, n, args.size, device, note=f"FAILED: {type(exc).__name__}: {exc}")
            r.schedule = scoring
        results.append(r)
        print(
            f"{kind} N={n} {device} {dtype or ''} {scoring}: {r.steps_per_s} env steps/s",
            flush=True,
        )
        write_lines = [*lines, markdown(results)]
        args.output.write_text("\n".join(write_lines) + "\n")
    lines.append(markdown(results))
    write()
    for dtype in (None, "bfloat16"):
        start = time.perf_counter()
        try:
            breakdown = step_breakdown.main(
                [
                    "--device",
                    args.device,
                    "--n-envs",
                    str(middle),
                    "--size",
                    str(args.size),
                    "--steps",
                    "10",
                    "--task-bank-size",
                    str(args.task_bank_size),
                    "--output",
                    str(args.output.with_name("step_breakdown_gpu.md")),
                    "--append",
                    *(["--metric-dtype", dtype] if dtype else []),
                ]
            )
            lines += ["", breakdown]
        except Exception as exc:
            failed = True
            traceback.print_exc()
            lines.append(
                f"- breakdown ({dtype or 'float32'}): **FAILED**: {type(exc).__name__}: {exc}"
            )
        print(f"breakdown {dtype or 'float32'}: {time.perf_counter() - start:.1f} s", flush=True)
        write()
    write()
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
