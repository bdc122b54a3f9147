"""``docs/results.md`` from an evidence folder: the numbers, the verdicts, the gaps, the hook.

Every evidence folder here is written by hand with known numbers, so each expected value is
worked out in the test from the same per-seed numbers.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from unigen_sb3.cli import main
from unigen_sb3.experiments.ablation import summarize_runs
from unigen_sb3.experiments.results import (
    GLANCE_END,
    GLANCE_START,
    evidence_claims,
    load_evidence,
    normalized_score,
    seed_band,
    steps_to_score,
    write_results,
)

SEEDS = [0, 1, 2, 3]
RANDOM, NOOP, BLIND, ORACLE = 0.2, 0.3, 0.45, 1.0
FULL_TOTAL = [0.80, 0.82, 0.84, 0.86]


def _eval(total: float, **metrics: float) -> dict[str, Any]:
    """An eval.json report: R_total ``total``, every other metric at a default or ``metrics``."""
    means = {
        "reward_total": total,
        "reward_quality": 0.6,
        "reward_edit": 0.6,
        "reward_consistency": 0.6,
        "lpips": 0.2,
        "ssim": 0.8,
        "psnr": 20.0,
        "region_ssim": 0.7,
        "mask_iou": 0.6,
        "attribute_accuracy": 0.5,
        "episode_length": 3.0,
    }
    sets = {"frechet_distance": 0.1, "kid_mean": 1e-4, "kid_std": 1e-5}
    for key, value in metrics.items():
        (sets if key in sets else means)[key] = value
    return {
        "schema": 1,
        "metrics": {k: {"mean": v, "std": 0.1} for k, v in means.items()},
        "set_metrics": sets,
        "prompt_swap": {"drop": 0.3, "n_swapped": 8, "reward_total": total - 0.3},
        "task": "unified",
        "n_episodes": 8,
        "seed": 10000,
    }


#: The Oracle's evaluation metrics (the others have _eval's defaults).
ORACLE_METRICS = {
    "lpips": 0.0,
    "ssim": 1.0,
    "psnr": 40.0,
    "region_ssim": 0.9,
    "mask_iou": 0.9,
    "attribute_accuracy": 1.0,
    "frechet_distance": 0.0,
    "kid_mean": 0.0,
}


def _baselines(**overrides: dict[str, float]) -> dict[str, Any]:
    """Random, NoOp, Blind and Oracle: each component equal to the baseline's R_total."""
    out = {}
    for name, total in (("Random", RANDOM), ("NoOp", NOOP), ("Blind", BLIND), ("Oracle", ORACLE)):
        values = {f"reward_{c}": total for c in ("quality", "edit", "consistency")}
        values.update(ORACLE_METRICS if name == "Oracle" else {})
        report = _eval(total, **{**values, **overrides.get(name, {})})
        report["prompt_swap"] = None
        out[name] = report
    return out


#: The separate-reward agents are found by their weights, whatever their name.
WEIGHTS = {
    "quality_only": {"quality": 1.0, "edit": 0.0, "consistency": 0.0},
    "w_q0_e1_c0": {"quality": 0.0, "edit": 1.0, "consistency": 0.0},
}


def _suite(
    root: Path,
    name: str,
    variants: dict[str, list[dict[str, Any]]],
    *,
    baselines: dict[str, Any] | None = None,
    histories: dict[str, list[list[list[float]]]] | None = None,
    summary: bool = True,
) -> None:
    """A suite folder as run_ablation writes it: one run per (variant, seed) plus the JSONs."""
    folder = root / name
    entries = {}
    for variant, evals in variants.items():
        runs = []
        for seed, report in zip(SEEDS, evals, strict=False):
            run = folder / variant / f"seed_{seed}"
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(f"seed: {seed}\n")
            (run / "eval.json").write_text(json.dumps(report))
            if histories and variant in histories:
                history = {**report, "history": histories[variant][seed]}
                (run / "eval_history.json").write_text(json.dumps(history))
            runs.append(f"{variant}/seed_{seed}")
        entries[variant] = {
            "weights": WEIGHTS.get(variant, {"quality": 0.4, "edit": 0.4, "consistency": 0.2}),
            "runs": runs,
            "metrics": summarize_runs(evals),
            "overrides": {"reward.shaping.enabled": False} if variant == "no_shaping" else {},
        }
    if summary:
        data = {"schema": 1, "seeds": SEEDS, "variants": entries}
        (folder / "ablation.json").write_text(json.dumps(data))
    if baselines is not None:
        (folder / "baselines.json").write_text(json.dumps(baselines))


def _manifest(
    root: Path, *, quick: bool = False, suites: list[dict[str, Any]] | None = None
) -> None:
    default = [
        {"name": "unified", "role": "agent+ablation", "task": "unified", "algorithm": "PPO"},
        {"name": "edit", "role": "agent", "task": "edit", "algorithm": "PPO"},
        {"name": "sac_unified", "role": "agent", "task": "unified", "algorithm": "SAC"},
    ]
    entries = [
        {"main_variant": "full", "description": f"the {s['name']} suite", "budget": "4 seeds", **s}
        for s in (suites if suites is not None else default)
    ]
    data = {"schema": 1, "quick": quick, "command": "make evidence", "suites": entries}
    (root / "evidence.json").write_text(json.dumps(data))


def _evidence(
    root: Path,
    *,
    separate: list[float] | None = None,
    no_normalization: list[float] | None = None,
    with_shaping: bool = True,
    quick: bool = False,
) -> Path:
    """unified (PPO, ablation), edit (PPO) and sac_unified (SAC), four seeds each."""
    separate = separate if separate is not None else [0.50, 0.52, 0.54, 0.56]
    spread = no_normalization if no_normalization is not None else [0.5, 0.8, 1.1, 0.7]
    unified = {
        "full": [_eval(t, episode_length=3.0 + k) for k, t in enumerate(FULL_TOTAL)],
        "quality_only": [_eval(t, reward_edit=0.2) for t in separate],
        "w_q0_e1_c0": [_eval(t) for t in separate],
        "no_edit": [_eval(0.6, reward_edit=0.1 + k / 100) for k in range(4)],
        "no_normalization": [_eval(t) for t in spread],
    }
    # full reaches 0.7 normalized (R_total 0.76) at 200 steps, no_shaping never does.
    histories = {
        "full": [[[100, 0.3], [200, 0.77], [300, 0.8]] for _ in SEEDS],
        "no_shaping": [[[100, 0.3], [200, 0.5], [300, 0.6 + s / 100]] for s in SEEDS],
    }
    if with_shaping:
        unified["no_shaping"] = [_eval(0.7 + k / 100) for k in range(4)]
    _suite(root, "unified", unified, baselines=_baselines(), histories=histories)
    edit = {"full": [_eval(t) for t in (0.95, 0.96, 0.97, 0.98)]}
    _suite(root, "edit", edit, baselines=_baselines(Oracle={"ssim": 0.8}))
    sac = {"full": [_eval(t) for t in (0.40, 0.50, 0.45, 0.55)]}
    _suite(root, "sac_unified", sac, baselines=_baselines())
    _manifest(root, quick=quick)
    return root


def _row(text: str, first_cell: str) -> list[str]:
    """The cells of the first table row whose first cell is ``first_cell``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r}")


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _claim(evidence_dir: Path, title: str) -> Any:
    return next(c for c in evidence_claims(load_evidence(evidence_dir)) if c.title == title)


# --- numbers -------------------------------------------------------------------------------


def test_normalized_score_and_margin_over_blind(tmp_path: Path) -> None:
    page = write_results(_evidence(tmp_path / "ev"), tmp_path / "docs").read_text()
    # Per seed (R - Random) / (Oracle - Random), then mean ± std (ddof=1) over seeds.
    scores = [(t - RANDOM) / (ORACLE - RANDOM) for t in FULL_TOTAL]
    expected = f"{statistics.mean(scores):.3f} ± {statistics.stdev(scores):.3f}"
    assert expected == "0.787 ± 0.032"
    normalized = _section(page, "Headline").split("### Normalized score")[1]
    assert _row(normalized, "R_total")[1] == expected
    # The edit suite: (0.965 - 0.2) / 0.8.
    assert _row(normalized, "R_total")[2].startswith(f"{(0.965 - RANDOM) / 0.8:.3f} ± ")
    margins = _section(page, "Headline").split("### Margin over Blind")[1]
    assert _row(margins, "R_total")[1] == f"+{statistics.mean(FULL_TOTAL) - BLIND:.3f}"
    blind_score = (BLIND - RANDOM) / (ORACLE - RANDOM)
    in_units = statistics.mean(scores) - blind_score
    assert _row(margins, "R_total (normalized units)")[1] == f"+{in_units:.3f}"
    # SAC (mean 0.475) is only just above Blind (0.45).
    assert _row(margins, "R_total")[3] == "+0.025"
    # The raw table: agent mean ± std, then the four baselines of that suite.
    rewards = _section(page, "Headline").split("### Rewards")[1]
    assert f"| 0.830 ± {statistics.stdev(FULL_TOTAL):.3f} |" in rewards
    assert "|  | Oracle | - | 1.000 | 1.000 | 1.000 | 1.000 | n/a |" in rewards
    assert normalized_score(0.5, 0.25, 0.75) == 0.5
    assert normalized_score(0.5, 0.3, 0.3) is None
    # The at-a-glance table (README quotes it): the same numbers, one row per agent suite.
    glance = _section(page, "At a glance")
    assert glance.count(GLANCE_START) == 1 and glance.count(GLANCE_END) == 1
    row = _row(glance, "unified")
    assert row[1:5] == ["PPO (full)", "4", f"0.830 ± {statistics.stdev(FULL_TOTAL):.3f}", expected]
    assert row[5] == f"+{in_units:.3f}"
    assert row[7:] == [f"{RANDOM:.3f}", f"{BLIND:.3f}", f"{ORACLE:.3f}"]


def test_oracle_equal_to_random_is_na_with_a_footnote(tmp_path: Path) -> None:
    page = write_results(_evidence(tmp_path / "ev"), tmp_path / "docs").read_text()
    normalized = _section(page, "Headline").split("### Normalized score")[1]
    normalized = normalized.split("###")[0]
    # The edit suite's Oracle has SSIM 0.8, as Random: no scale, no division.
    # SSIM 0.8 is Random in the others: score 0; LPIPS 0.2 -> 0.0 (lower is better) too.
    assert _row(normalized, "SSIM")[1:] == ["0.000 ± 0.000", "n/a†", "0.000 ± 0.000"]
    # R_quality 0.6 between Random 0.2 and Oracle 1.0: half way.
    assert _row(normalized, "R_quality")[1] == "0.500 ± 0.000"
    assert "† Oracle equals Random on this metric" in normalized


def test_ablation_stability_numbers(tmp_path: Path) -> None:
    page = write_results(_evidence(tmp_path / "ev"), tmp_path / "docs").read_text()
    ablation = _section(page, "Ablation")
    full = _row(ablation.split("Stability across seeds")[1], "full")
    assert full[1] == "4"
    assert full[2] == f"{statistics.variance(FULL_TOTAL):.3g}" == "0.000667"
    spread = [0.5, 0.8, 1.1, 0.7]
    assert _row(ablation.split("Stability across seeds")[1], "no_normalization")[2] == (
        f"{statistics.variance(spread):.3g}"
    )
    lengths = [3.0, 4.0, 5.0, 6.0]
    assert full[3] == "4.500"
    assert full[4] == f"{statistics.stdev(lengths) / statistics.mean(lengths):.3f}"
    assert full[5] == "0.100"
    assert full[6] == "median 200 (4/4 seeds)"
    assert _row(ablation.split("Stability across seeds")[1], "no_shaping")[6] == (
        "never (0/4 seeds reached it)"
    )
    assert _row(ablation, "no_shaping")[2] == "`reward.shaping.enabled=false`"
    assert "validation tasks" in ablation and "held-out test tasks" in ablation
    # steps_to_score: the first point at or above the threshold; never -> inf.
    assert steps_to_score([(10, 0.1), (20, 0.76), (30, 0.9)], 0.76) == 20.0
    assert steps_to_score([(10, 0.1)], 0.76) == math.inf


def test_seed_band_bins_each_seed_then_averages_across_seeds() -> None:
    x, mean, std = seed_band([[(0, 1.0), (10, 3.0)], [(5, 2.0), (10, 4.0)]], n_bins=2)
    assert list(x) == [5.0, 10.0]
    # Bin (0, 5]: seed 0 has 1, seed 1 has 2; bin (5, 10]: 3 and 4.
    assert list(mean) == [1.5, 3.5]
    assert std[0] == pytest.approx(statistics.stdev([1.0, 2.0]))
    # A seed's empty bin carries its last value forward.
    _, mean, _ = seed_band([[(1, 1.0), (10, 5.0)]], n_bins=3)
    assert list(mean) == [1.0, 1.0, 5.0]


# --- claims and goals ----------------------------------------------------------------------


def test_claim_verdicts_follow_the_numbers(tmp_path: Path) -> None:
    worse = _evidence(tmp_path / "worse")
    better = _evidence(tmp_path / "better", separate=[0.90, 0.92, 0.94, 0.96])
    title = "Unified reward beats separate rewards"
    line = next(c for c in _claim(worse, title).checks if c.text.startswith("reward_total"))
    assert line.verdict == "SUPPORTED" and "Welch p" in line.why
    assert "full 0.830 ± 0.026 (n=4) vs quality_only 0.530 ± 0.026 (n=4)" in line.text
    line = next(c for c in _claim(better, title).checks if c.text.startswith("reward_total"))
    assert line.verdict == "REFUTED" and "the other way" in line.why
    # Equal numbers on both sides: no significant difference, so the claim is not upheld.
    same = next(c for c in _claim(worse, title).checks if c.text.startswith("region_ssim"))
    assert same.verdict == "NOT SUPPORTED" and "no significant difference" in same.why
    # Normalization: full's R_total varies far less than no_normalization's (F-test).
    normalization = _claim(worse, "Reward normalization reduces instability")
    assert normalization.checks[0].verdict == "SUPPORTED"
    steady = _evidence(tmp_path / "steady", no_normalization=[0.79, 0.81, 0.85, 0.87])
    flipped = _claim(steady, "Reward normalization reduces instability")
    assert flipped.checks[0].verdict == "NOT SUPPORTED" and flipped.verdict == "NOT SUPPORTED"
    # Shaping: full gets to 0.7 normalized in 200 steps on every seed, no_shaping never.
    shaping = _claim(worse, "Potential-based shaping reduces instability and helps")
    steps = next(c for c in shaping.checks if c.text.startswith("timesteps"))
    assert steps.verdict == "SUPPORTED" and "Mann-Whitney" in steps.why
    assert "per seed full [200, 200, 200, 200], no_shaping [never, never, never, never]" in (
        steps.text
    )


def test_a_variant_that_was_not_run_makes_its_checks_not_tested(tmp_path: Path) -> None:
    evidence = _evidence(tmp_path / "ev", with_shaping=False)
    shaping = _claim(evidence, "Potential-based shaping reduces instability and helps")
    assert shaping.verdict == "NOT TESTED"
    assert all("not run: variant 'no_shaping'" in c.why for c in shaping.checks)
    joint = _claim(evidence, "Joint objective")  # no_consistency is not in this suite
    edit_line = next(c for c in joint.checks if c.text.startswith("reward_edit: full"))
    assert edit_line.verdict == "SUPPORTED"
    assert any("not run: variant 'no_consistency'" in c.why for c in joint.checks)
    assert joint.verdict == "SUPPORTED"  # every check it could test
    page = write_results(evidence, tmp_path / "docs").read_text()
    assert "### 4. Potential-based shaping reduces instability and helps: NOT TESTED" in page


def test_backbones_suite_metrics_and_goals(tmp_path: Path) -> None:
    evidence = _evidence(tmp_path / "ev")
    backbone = _claim(evidence, "Backbone compatibility: PPO and SAC")
    verdicts = {
        c.text.split(":")[0] + c.text.split(" vs ")[1].split(" ")[0]: c.verdict
        for c in backbone.checks
        if c.verdict != "context"
    }
    # SAC (0.40..0.55) beats Random and NoOp clearly, Blind (0.45) not significantly.
    assert verdicts["R_totalRandom"] == "SUPPORTED"
    assert [c.verdict for c in backbone.checks if "SAC" in c.text and "Blind" in c.text] == [
        "NOT SUPPORTED"
    ]
    assert backbone.verdict == "PARTLY SUPPORTED (5 of 6 checks)"
    composite = _claim(evidence, "Composite evaluation suite")
    assert composite.verdict == "SUPPORTED"
    assert "LPIPS: reported by unified, edit, sac_unified" in [c.text for c in composite.checks]
    page = write_results(evidence, tmp_path / "docs").read_text()
    goals = _section(page, "PPO goals")
    edit_score = (statistics.mean([0.95, 0.96, 0.97, 0.98]) - RANDOM) / (ORACLE - RANDOM)
    assert _row(goals, "normalized R_total >= 0.9 (edit)")[2:] == [
        f"{edit_score:.3f}",
        "met",
        f"+{edit_score - 0.9:.3f}",
    ]
    unified_score = (statistics.mean(FULL_TOTAL) - RANDOM) / (ORACLE - RANDOM)
    assert _row(goals, "normalized R_total >= 0.85 (unified)")[2:] == [
        f"{unified_score:.3f}",
        "missed",
        f"{unified_score - 0.85:.3f}",
    ]
    assert _row(goals, "R_total > Blind (0.450)")[1:4] == ["unified", "0.830", "met"]
    assert "sac_unified" not in goals  # the goals are PPO's


# --- gaps, labels, determinism -------------------------------------------------------------


def test_missing_suite_runs_and_baselines_are_listed(tmp_path: Path) -> None:
    root = _evidence(tmp_path / "ev")
    suites = [
        {"name": "unified", "role": "agent+ablation", "task": "unified", "algorithm": "PPO"},
        {"name": "edit", "role": "agent", "task": "edit", "algorithm": "PPO"},
        {"name": "generate", "role": "agent", "task": "generate", "algorithm": "PPO"},
        {"name": "sac_unified", "role": "agent", "task": "unified", "algorithm": "SAC"},
    ]
    _manifest(root, suites=suites)
    (root / "unified" / "no_edit" / "seed_2" / "eval.json").unlink()
    # An unfinished suite: no ablation.json, one seed still training, no baselines.
    (root / "sac_unified" / "ablation.json").unlink()
    (root / "sac_unified" / "baselines.json").unlink()
    (root / "sac_unified" / "full" / "seed_3" / "eval.json").unlink()
    page = write_results(root, tmp_path / "docs").read_text()
    missing = _section(page, "Missing")
    assert "- generate: the whole suite (no folder generate/)" in missing
    assert "- unified: run no_edit/seed_2 (unfinished: no eval.json)" in missing
    assert "- sac_unified: ablation.json (the suite is unfinished" in missing
    assert "- sac_unified: run full/seed_3 (unfinished: no eval.json)" in missing
    assert "- sac_unified: baselines.json (no Random / NoOp / Blind / Oracle" in missing
    # The others are still reported: 3 seeds of no_edit, 3 of SAC, no normalization for SAC.
    assert _row(_section(page, "Ablation"), "no_edit")[3] == "3"
    assert _row(page.split("### Normalized score")[1], "R_total")[3] == "n/a‡"
    assert "| generate | agent | generate | PPO | full | - | none (0) |" in page


def test_quick_run_is_labelled_as_a_smoke_run(tmp_path: Path) -> None:
    page = write_results(_evidence(tmp_path / "ev", quick=True), tmp_path / "docs").read_text()
    assert page.startswith("# Results\n\n> **SMOKE RUN — NOT EVIDENCE.**")
    assert "> Smoke run: these verdicts test the pipeline, not the claims." in page
    full = write_results(_evidence(tmp_path / "full"), tmp_path / "docs2").read_text()
    assert "SMOKE RUN" not in full and "(full budgets)" in full


def test_the_page_is_deterministic_and_embeds_plots(tmp_path: Path) -> None:
    root = _evidence(tmp_path / "ev")
    (root / "unified" / "before_after.png").write_bytes(b"\x89PNG fake grid")
    pytest.importorskip("matplotlib")
    from torch.utils.tensorboard import SummaryWriter

    for seed in SEEDS[:2]:
        with SummaryWriter(str(root / "unified" / "full" / f"seed_{seed}" / "tb" / "PPO_1")) as w:
            for step in range(8, 80, 8):
                for k, tag in enumerate(("total", "quality", "edit", "consistency")):
                    w.add_scalar(f"episode/{tag}", step / 100 + seed / 10 + k, step)
    first = write_results(root, tmp_path / "a").read_bytes()
    second = write_results(root, tmp_path / "a").read_bytes()
    assert first == second
    assert write_results(root, tmp_path / "b").read_bytes() == first
    text = first.decode()
    for name in ("unified_curves.png", "unified_validation.png", "unified_before_after.png"):
        assert f"](results/{name})" in text
        assert (tmp_path / "a" / "results" / name).stat().st_size > 10
    assert (tmp_path / "a" / "results" / "unified_before_after.png").read_bytes().endswith(b"grid")
    assert "- edit: no `episode/*` TensorBoard scalars in its runs" in text
    # Numbers printed with fixed digits, never a float repr such as 0.30000000000000004.
    assert not re.search(r"\d\.\d{7,}", text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 2}, "key 'schema' is 2; accepted: 1"),
        ({"quick": "no"}, "key 'quick' is 'no'; accepted: true or false"),
        ({"suites": []}, "key 'suites' is []; accepted: a non-empty list"),
        ({"command": None}, "key 'command' is None; accepted:"),
        (
            {
                "suites": [
                    {
                        "name": "u",
                        "role": "critic",
                        "main_variant": "full",
                        "task": "unified",
                        "algorithm": "PPO",
                    }
                ]
            },
            "key 'suites[0].role' is 'critic'; accepted: 'agent', 'ablation' or 'agent+ablation'",
        ),
        (
            {"suites": [{"name": "u", "role": "agent", "task": "unified", "algorithm": "PPO"}]},
            "key 'suites[0].main_variant' is missing; accepted: a non-empty string",
        ),
    ],
)
def test_a_bad_manifest_is_refused_naming_file_key_and_accepted(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    _manifest(tmp_path)
    data = json.loads((tmp_path / "evidence.json").read_text())
    data.update(change)
    (tmp_path / "evidence.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        write_results(tmp_path, tmp_path / "docs")
    assert str(tmp_path / "evidence.json") in str(info.value)
    assert not (tmp_path / "docs").exists()


def test_report_command_writes_the_results_page_for_an_evidence_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _evidence(tmp_path / "ev")
    out = tmp_path / "docs"
    assert main(["report", str(root), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "results.md")
    assert (out / "results.md").read_text().startswith("# Results")
    assert not (out / "report.md").exists()
    # A malformed manifest: exit 2 with the message, no traceback, nothing written.
    (root / "evidence.json").write_text(json.dumps({"schema": 1}))
    assert main(["report", str(root), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "unigen-sb3 report: error:" in err and "key 'quick' is missing" in err
    assert not (tmp_path / "bad").exists()
    # Two folders: the run report, as before.
    assert main(["report", str(root / "unified"), str(root / "edit"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.md")


def test_without_matplotlib_the_page_is_written_without_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import unigen_sb3.experiments.results as results

    root = _evidence(tmp_path / "ev")
    (root / "edit" / "before_after.png").write_bytes(b"\x89PNG edit grid")
    monkeypatch.setattr(results, "_pyplot", lambda: None)
    with pytest.warns(UserWarning, match="matplotlib is not installed"):
        page = write_results(root, tmp_path / "docs").read_text()
    assert "_matplotlib is not installed" in _section(page, "Learning curves")
    assert "_curves.png" not in page and "_validation.png" not in page
    # The before/after grids are files, not plots: still copied and linked.
    assert "](results/edit_before_after.png)" in page
    assert (tmp_path / "docs" / "results" / "edit_before_after.png").is_file()


def test_the_tests_the_reproducibility_claim_points_to_exist(tmp_path: Path) -> None:
    claim = _claim(_evidence(tmp_path / "ev"), "Deterministic seeds and reproducibility")
    tests = Path(__file__).resolve().parents[1]
    cited = re.findall(r"tests/(\S+\.py)::(\w+)", claim.checks[0].why)
    assert len(cited) == 2
    for path, name in cited:
        assert f"def {name}(" in (tests / path).read_text(), f"{path}::{name} is cited"


def test_what_rl_added_to_the_clone_is_paired_by_seed(tmp_path: Path) -> None:
    evidence = _evidence(tmp_path / "ev")
    # The edit agent ends at 0.95..0.98; its clones scored 0.90, 0.97, 0.92, 0.93.
    clones = [0.90, 0.97, 0.92, 0.93]
    for seed, total in zip(SEEDS, clones, strict=True):
        run = evidence / "edit" / "full" / f"seed_{seed}"
        (run / "clone_eval.json").write_text(json.dumps(_eval(total)))
    page = write_results(evidence, tmp_path / "docs").read_text()
    section = page.split("### What RL added to the cloned policy")[1].split("\n## ")[0]
    row = _row(section, "edit")
    finals = [0.95, 0.96, 0.97, 0.98]
    gains = [f - c for f, c in zip(finals, clones, strict=True)]
    assert row[1] == "4"
    assert row[2] == f"{statistics.mean(clones):.3f} ± {statistics.stdev(clones):.3f}"
    assert row[4] == f"{statistics.mean(gains):.3f} ± {statistics.stdev(gains):.3f}"
    p = stats.ttest_rel(finals, clones).pvalue
    assert row[5] == (f"p = {p:.3f}" if p >= 0.001 else "p < 0.001")
    assert row[6] == "3 of 4"  # seed 1: 0.96 after RL against a 0.97 clone
    # Suites without clone_eval.json have no row.
    assert "| unified |" not in section


def test_readme_quotes_the_published_at_a_glance_table() -> None:
    """README.md's at-a-glance table is docs/results.md's, character for character, so the
    headline numbers cannot drift from the page `make evidence` wrote."""
    repo = Path(__file__).resolve().parents[2]

    def block(text: str) -> str:
        assert text.count(GLANCE_START) == 1 and text.count(GLANCE_END) == 1
        return text[text.index(GLANCE_START) : text.index(GLANCE_END)]

    published = block((repo / "docs" / "results.md").read_text("utf-8"))
    assert "| unified |" in published
    assert block((repo / "README.md").read_text("utf-8")) == published
