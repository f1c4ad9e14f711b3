"""Joins what benchmarks/gpu_check.sh saved under its output folder into one result file and a
README table, against the issue's targets (member-steps/s ≥ 100× the solo loop for the MLP GAN with
Adam + R1 and ≥ 15× for the InfoGAN-style GAN; the mnist_reg study ≤ 2 minutes; FID of 10k ≤ 3 s).

    python benchmarks/gpu_summary.py OUT_DIR     # writes OUT_DIR/summary.json and OUT_DIR/summary.md
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

TARGETS = {"gan": 100.0, "infogan": 15.0}
STUDY_TARGET_S, FID_TARGET_S = 120.0, 3.0


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pytest_counts(path: Path) -> dict | None:
    try:
        suite = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def populations(out: Path) -> list[dict]:
    rows = []
    for f in sorted(out.glob("population-*-*.json")):
        res = _json(f)
        if not res:
            continue
        variant = f.stem.split("-", 2)[2]
        for model, row in res["models"].items():
            solo = row["solo_loop"]["steps_per_s"]
            for k, cell in row["population"].items():
                rows.append({"model": model, "variant": variant, "tf32": res.get("tf32"), "K": int(k),
                             "solo_steps_per_s": solo, **cell})
    return rows


def summarize(out: Path) -> dict:
    phases = [json.loads(line) for line in (out / "phases.jsonl").read_text().splitlines() if line.strip()] \
        if (out / "phases.jsonl").exists() else []
    by_name = {p["phase"]: p for p in phases}
    env = _json(out / "environment.json") or {}
    dry = not env.get("device")  # a CPU dry run: toy sizes, so no target is judged
    pops = populations(out)
    best = {}
    for model in TARGETS:
        measured = [r for r in pops if r["model"] == model and "ratio_vs_solo" in r]
        if measured:
            top = max(measured, key=lambda r: r["ratio_vs_solo"])
            best[model] = {"ratio_vs_solo": top["ratio_vs_solo"], "K": top["K"], "variant": top["variant"],
                           "target": TARGETS[model], "met": None if dry else top["ratio_vs_solo"] >= TARGETS[model]}
    study = by_name.get("c-bench-run-mnist_reg")
    metrics = _json(out / "metrics.json")
    fid_s = metrics.get("fid_10k_total_seconds_on_device") if metrics else None
    return {
        "environment": env,
        "dry_run": dry,
        "pytest_cuda": pytest_counts(out / "pytest-cuda.xml"),
        "populations": pops,
        "best_ratio": best,
        "mnist_reg_study": None if study is None else
        {"seconds": study["seconds"], "exit": study["rc"], "target_s": STUDY_TARGET_S,
         "met": None if dry else study["rc"] == 0 and study["seconds"] <= STUDY_TARGET_S},
        "fid_10k": None if metrics is None else
        {"seconds_on_device": fid_s, "seconds_torch_fidelity_path": metrics.get("fid_10k_total_seconds"),
         "extract_seconds_10k": metrics.get("extract_seconds_10k"),
         "extrapolated": metrics.get("extract_10k_extrapolated"), "target_s": FID_TARGET_S,
         "met": None if dry else fid_s is not None and fid_s <= FID_TARGET_S
         and not metrics.get("extract_10k_extrapolated")},
        "phases": phases,
        "note": "Inception weights random (timing only): no FID value here is a measurement of quality",
    }


def _verdict(met: bool | None) -> str:
    return "not judged (CPU dry run: toy sizes)" if met is None else ("met" if met else "NOT met")


def table(s: dict) -> str:
    env = s["environment"] or {}
    lines = [f"card: {env.get('device') or 'none (CPU dry run)'} · torch {env.get('torch')} · CUDA {env.get('cuda')}", "",
             "| model | variant | K | member-steps/s | × solo loop | solo steps/s |", "|---|---|---:|---:|---:|---:|"]
    for r in s["populations"]:
        if "member_steps_per_s" in r:
            lines.append(f"| {r['model']} | {r['variant']} | {r['K']} | {r['member_steps_per_s']:,.0f} | "
                         f"{r['ratio_vs_solo']:.1f} | {r['solo_steps_per_s']:,.1f} |")
        else:
            lines.append(f"| {r['model']} | {r['variant']} | {r['K']} | {r.get('skipped', '—')} | | |")
    lines.append("")
    for model, b in s["best_ratio"].items():
        lines.append(f"- {model}: best ×{b['ratio_vs_solo']:.1f} (K = {b['K']}, {b['variant']}); target ×{b['target']:.0f}: "
                     f"{_verdict(b['met'])}")
    if s["mnist_reg_study"]:
        m = s["mnist_reg_study"]
        lines.append(f"- bench run --study mnist_reg (population auto): {m['seconds']} s, exit {m['exit']}; "
                     f"target ≤ {m['target_s']:.0f} s: {_verdict(m['met'])}")
    if s["fid_10k"]:
        f = s["fid_10k"]
        lines.append(f"- FID of 10k samples: {f['seconds_on_device']} s on the device "
                     f"(torch-fidelity's scipy path: {f['seconds_torch_fidelity_path']} s); target ≤ {f['target_s']:.0f} s: "
                     f"{_verdict(f['met'])}")
    if s["dry_run"]:
        lines.append("- pytest -m cuda: deselected (no CUDA device)")
    elif s["pytest_cuda"]:
        p = s["pytest_cuda"]
        lines.append(f"- pytest -m cuda: {p['tests']} tests, {p['failures']} failures, {p['errors']} errors, "
                     f"{p['skipped']} skipped")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python benchmarks/gpu_summary.py OUT_DIR (the folder gpu_check.sh wrote)")
    out = Path(sys.argv[1])
    s = summarize(out)
    (out / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    md = table(s)
    (out / "summary.md").write_text(md)
    print(md, end="")


if __name__ == "__main__":
    main()
