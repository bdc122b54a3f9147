"""Compare a trained model with the scripted baselines on one fixed, seeded task set.

Used by ``make run`` (``examples/compare_baselines.py``) and ``examples/quickstart.py``.

Example:
    >>> from unigen_sb3.envs.policies import OraclePolicy
    >>> reports = compare_with_baselines(OraclePolicy(), {"task": "edit"}, 4, 0)  # doctest: +SKIP
    >>> print(comparison_table(reports))                                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from unigen_sb3.envs.policies import NoOpPolicy, OraclePolicy, RandomPolicy
from unigen_sb3.evaluation.blind import BlindResult, blind_search
from unigen_sb3.evaluation.report import EnvOrConfig, evaluate_unigen, evaluation_rollout
from unigen_sb3.evaluation.rollout import evaluation_spec

#: Tasks the Blind search scores candidates on in :func:`blind_baseline` (at most).
BLIND_SEARCH_EPISODES = 16
#: Beam width of that search.
BLIND_SEARCH_BEAM = 2


def blind_baseline(
    env_config: EnvOrConfig,
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
) -> BlindResult:
    """The Blind baseline of an env config: the best prompt-blind open-loop sequence.

    Beam search (:func:`~unigen_sb3.evaluation.blind.blind_search`, depth 2, beam
    :data:`BLIND_SEARCH_BEAM`) over the ``discrete`` library on the first
    ``min(n_episodes, BLIND_SEARCH_EPISODES)`` tasks of the evaluation set (episode ``j``
    uses seed ``seed + j``), under the config's task, size, horizon and weights.

    :param env_config: the settings, as :func:`~unigen_sb3.evaluation.evaluate_unigen`
        takes them (a spec, ``make_unigen_env`` keywords or a built stack).
    :param n_episodes: the evaluation set's size.
    :param seed: its base seed.
    :param prompt_split: its prompt split.
    :return: the search result (its ``actions`` are what :class:`SequencePolicy` replays).
    """
    spec = evaluation_spec(env_config, prompt_split=prompt_split)
    return blind_search(
        spec.task,
        depth=2,
        beam=BLIND_SEARCH_BEAM,
        n_episodes=min(int(n_episodes), BLIND_SEARCH_EPISODES),
        seed=seed,
        prompt_split=spec.prompt_split,
        weights=spec.weight_tuple(),  # type: ignore[arg-type]
        size=spec.size,
        horizon=spec.horizon,
        device=spec.device,
        perceptual_backend=spec.perceptual_backend,
        edit_fraction=spec.edit_fraction,
    )


def blind_baseline_score(env_config: EnvOrConfig, n_episodes: int, seed: int) -> float:
    """Mean R_total of :func:`blind_baseline`'s sequence on the whole held-out evaluation set.

    :param env_config: the settings (see :func:`blind_baseline`).
    :param n_episodes: episodes of the evaluation set (>= 2).
    :param seed: its base seed.
    """
    result = blind_baseline(env_config, n_episodes, seed)
    report = evaluate_unigen(result.policy(), env_config, n_episodes, seed)
    return float(report["metrics"]["reward_total"]["mean"])


#: Columns of :func:`comparison_table`: eval.json metric name -> column title.
TABLE_METRICS: dict[str, str] = {
    "reward_total": "R_total",
    "reward_quality": "quality",
    "reward_edit": "edit",
    "reward_consistency": "consistency",
    "lpips": "LPIPS dist.",
    "attribute_accuracy": "attr. acc.",
    "episode_length": "length",
}


#: The baselines of :func:`baseline_policies`, and their row names in
#: :func:`compare_with_baselines`.
BASELINE_LABELS: dict[str, str] = {
    "Random": "Random",
    "NoOp": "NoOp",
    "Blind": "Blind (best prompt-blind sequence)",
    "Oracle": "Oracle (privileged)",
}


def baseline_policies(
    env_config: EnvOrConfig,
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
) -> dict[str, Any]:
    """Random, NoOp, Blind and Oracle for one seeded evaluation set (the keys of
    :data:`BASELINE_LABELS`, in that order); Blind is searched on that set
    (:func:`blind_baseline`).

    :param env_config: the settings of the evaluation (see :func:`blind_baseline`).
    :param n_episodes: episodes of the evaluation set.
    :param seed: its base seed (Random is seeded with it too).
    :param prompt_split: its prompt split.
    :return: baseline name -> policy :func:`evaluate_unigen` accepts.
    """
    return {
        "Random": RandomPolicy(seed=seed),
        "NoOp": NoOpPolicy(),
        "Blind": blind_baseline(env_config, n_episodes, seed, prompt_split=prompt_split).policy(),
        "Oracle": OraclePolicy(),
    }


def compare_with_baselines(
    model: Any,
    env_config: EnvOrConfig,
    n_episodes: int,
    seed: int,
    *,
    prompt_split: str | None = "heldout",
    model_name: str = "trained model",
) -> dict[str, dict[str, Any]]:
    """Evaluation reports (``eval.json`` schema) of the model and of Random, NoOp, Blind and
    Oracle.

    Every policy faces the same ``n_episodes`` tasks (episode ``j`` uses seed ``seed + j``).
    Blind is the best prompt-blind open-loop sequence (:func:`blind_baseline`): a model that
    does not beat it has not shown that it reads the prompt.

    :param model: a trained SB3 model, or any policy :func:`evaluate_unigen` accepts.
    :param env_config: the settings of the model's env (a spec, ``make_unigen_env``
        keywords or a built stack: task, action, obs, size, horizon, weights...).
    :param n_episodes: episodes per policy (>= 2).
    :param seed: base seed of the task set.
    :param prompt_split: prompt split of the tasks (held-out by default).
    :param model_name: the model's row name.
    :return: policy name -> report, the model first.
    """
    baselines = baseline_policies(env_config, n_episodes, seed, prompt_split=prompt_split)
    policies: dict[str, Any] = {
        model_name: model,
        **{BASELINE_LABELS[name]: policy for name, policy in baselines.items()},
    }
    return {
        name: evaluate_unigen(policy, env_config, n_episodes, seed, prompt_split=prompt_split)
        for name, policy in policies.items()
    }


def comparison_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table: one row per policy, mean (std) of :data:`TABLE_METRICS`."""
    header = "| policy | " + " | ".join(TABLE_METRICS.values()) + " |"
    lines = [header, "|---|" + "---:|" * len(TABLE_METRICS)]
    for name, report in reports.items():
        cells = []
        for key in TABLE_METRICS:
            m = report["metrics"][key]
            cells.append(f"{m['mean']:.3f} ({m['std']:.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pick_rows(kinds: list[str], n: int) -> list[int]:
    """Episode indices for ``n`` rows: the task kinds take turns while more than one lasts."""
    queues = {k: [i for i, x in enumerate(kinds) if x == k] for k in dict.fromkeys(kinds)}
    rows: list[int] = []
    while len(rows) < n and any(queues.values()):
        for q in queues.values():
            if q and len(rows) < n:
                rows.append(q.pop(0))
    return rows


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the small bitmap font
        return ImageFont.load_default()


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def before_after_image(
    model: Any,
    env_config: EnvOrConfig,
    n: int = 4,
    seed: int = 0,
    *,
    prompt_split: str | None = "heldout",
    labels: bool = True,
    scale: int = 3,
    model_name: str = "agent",
) -> np.ndarray:
    """A picture of ``n`` seeded tasks: rows of ``start | the model's final canvas | target``.

    With ``labels`` (the default) the columns are titled (``start``, ``model_name``,
    ``target``), each row's task kind and prompt are written under it, panels sit on a grey
    ground (so a blank white start canvas reads as a canvas), and a ``unified`` env shows
    both task kinds: generation and editing rows alternate (up to ``4 * n`` episodes are
    rolled out to find them). Without labels: the bare grid, one row per episode ``0..n-1``.

    :param model: a trained model or scripted policy.
    :param env_config: the evaluation env (spec, keywords or env).
    :param n: rows, >= 1.
    :param seed: episode ``j`` is seeded with ``seed + j``.
    :param prompt_split: the prompt split of the tasks.
    :param labels: titles, prompts and both task kinds.
    :param scale: integer upscaling of the panels (nearest neighbour), >= 1.
    :param model_name: the middle column's title.
    :return: uint8 ``(rows, cols, 3)``; without labels ``(n * H * scale, 3 * W * scale, 3)``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be an integer >= 1")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale={scale!r} must be an integer >= 1")
    episodes = max(4 * n, 2) if labels else max(n, 2)
    rollout, *_ = evaluation_rollout(model, env_config, episodes, seed, prompt_split=prompt_split)
    rows = _pick_rows([t.kind for t in rollout.tasks], n) if labels else list(range(n))
    panels = [rollout.start[rows], rollout.final[rows], rollout.target[rows]]
    images = [(p * 255).round().byte().cpu().numpy().transpose(0, 2, 3, 1) for p in panels]
    if scale > 1:
        images = [im.repeat(scale, axis=1).repeat(scale, axis=2) for im in images]
    if not labels:
        grid = np.concatenate(images, axis=2)  # (n, H, 3W, 3)
        return np.ascontiguousarray(np.concatenate(list(grid), axis=0))
    return _labelled_grid(images, [rollout.tasks[i] for i in rows], ["start", model_name, "target"])


def _labelled_grid(images: list[np.ndarray], tasks: list[Any], titles: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw

    n, h, w, _ = images[0].shape
    gap, pad = 6, 6
    font = _font(14)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = int(probe.textbbox((0, 0), "Ag", font=font)[3]) + 3
    width = len(images) * w + (len(images) + 1) * gap
    captions = [
        _wrap(probe, f"{task.kind}: {task.prompt.text}", font, width - 2 * pad) for task in tasks
    ]
    header = line_h + pad
    heights = [h + len(c) * line_h + pad + gap for c in captions]
    canvas = Image.new("RGB", (width, header + sum(heights) + gap), (200, 200, 200))
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(titles):
        x = gap + j * (w + gap) + (w - draw.textlength(title, font=font)) / 2
        draw.text((x, pad // 2), title, fill=(0, 0, 0), font=font)
    y = header
    for r in range(n):
        for j, im in enumerate(images):
            canvas.paste(Image.fromarray(im[r]), (gap + j * (w + gap), y))
        for k, line in enumerate(captions[r]):
            draw.text((pad, y + h + 2 + k * line_h), line, fill=(0, 0, 0), font=font)
        y += heights[r]
    return np.asarray(canvas, dtype=np.uint8).copy()
