"""Wiring mutants: realistic multi-line bugs in the joins of the code (issue 34), which mutmut's one-token
mutants cannot express — the training loop's step order, the population's stacking, the confirmation's
pairing and verdicts, the report's assembly. Each bug is applied to a scratch copy of the repository,
the tests that should catch it run there (the scratch copy first on PYTHONPATH, CLI subprocesses too),
and benchmarks/results/mutation-wiring.json records whether they failed (caught) or passed (survived).
A survivor gets a test, not a label.

    python benchmarks/mutation_wiring.py              # every bug (minutes on 2 cores)
    python benchmarks/mutation_wiring.py --only clip_dedented,rank_pairing   # rerun these, keep the others
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = "tests/stabgen/test_reference_trainer.py"
CONF = "tests/bench/test_confirm.py"


@dataclass(frozen=True)
class Bug:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids or `file -k expr` selections
    what: str


def _k(file: str, expr: str) -> str:
    return f"{file}::-k::{expr}"


BUGS = [
    # --- the training loop (stabgen/train.py) ---
    Bug("clip_dedented", "stabgen/train.py",
        "            if obj.clip:\n                with torch.no_grad():\n                    c = h.clip_value[:, None]\n"
        "                    d_flat.copy_(torch.clamp(d_flat, -c, c))",
        "        if obj.clip:\n            with torch.no_grad():\n                c = h.clip_value[:, None]\n"
        "                d_flat.copy_(torch.clamp(d_flat, -c, c))",
        (_k(REF, "wgan and clipping"),), "WGAN weight clipping once after the n_critic loop, not after each critic step"),
    Bug("noise_on_reals_only", "stabgen/train.py", "d_real, d_fake = disc(see(real)), disc(see(fake))",
        "d_real, d_fake = disc(see(real)), disc(fake)", (_k(REF, "instance"),), "instance noise on D's real inputs only"),
    Bug("noise_never_annealed", "stabgen/train.py", "progress = (pop.clock - 1) / cfg.steps",
        "progress = (pop.clock - 1) // cfg.steps", (_k(REF, "instance"),), "training progress by floor division: σ stays λ"),
    Bug("noise_not_in_g_step", "stabgen/train.py", "loss_g = obj.g_loss(disc(see(fake)))",
        "loss_g = obj.g_loss(disc(fake))", (_k(REF, "instance"),), "G's step scores fakes without instance noise"),
    Bug("objective_penalty_weighted_by_lam", "stabgen/train.py", "h.lam * pen_d + h.obj_lam * pen_obj",
        "h.lam * pen_d + h.lam * pen_obj", (_k(REF, "dragan or wgan_gp"),), "the objective's own penalty weighted by λ"),
    Bug("d_penalty_on_the_g_side", "stabgen/train.py",
        'pen_d = reg.penalty(ctx) if reg.loss == "discriminator" else ctx.zeros()',
        'pen_d = reg.penalty(ctx) if reg.loss == "generator" else ctx.zeros()', (_k(REF, "r1 or r2"),),
        "a discriminator regularizer's penalty never reaches D's loss"),
    Bug("one_critic_step", "stabgen/train.py", "for _ in range(cfg.n_critic):", "for _ in range(1):",
        (_k(REF, "n_critic or critic"),), "n_critic ignored"),
    Bug("lr_schedule_dropped", "stabgen/train.py", "opt.step(grads, pop.active & torch.isfinite(total) & torch.isfinite(norm), "
        "pop.lr_scale())", "opt.step(grads, pop.active & torch.isfinite(total) & torch.isfinite(norm), None)",
        (_k(REF, "linear or cosine"),), "the lr schedule never applied"),
    Bug("diverged_member_updated", "stabgen/train.py",
        "pop.active & torch.isfinite(total) & torch.isfinite(norm), pop.lr_scale())", "pop.active, pop.lr_scale())",
        (_k("tests/stabgen/test_population.py", "nan_injected"),), "a member with a non-finite loss or gradient still updated"),
    Bug("kl_weight_without_beta", "stabgen/train.py",
        "kl_weight = h.beta * torch.clamp(pop.clock / cfg.kl_warmup, max=1.0) if cfg.kl_warmup else h.beta",
        "kl_weight = torch.clamp(pop.clock / cfg.kl_warmup, max=1.0) if cfg.kl_warmup else h.beta",
        (_k(REF, "vae"),), "the VAE's KL warm-up forgets β"),
    Bug("g_penalty_on_stale_features", "stabgen/train.py",
        "pen_g = reg.penalty(RegContext(nets, real, fake, pop.noise, features=hidden))",
        "pen_g = reg.penalty(RegContext(nets, real, fake, pop.noise, features=hidden.detach()))",
        (_k(REF, "feature_norm"),), "G's feature penalty detached: it never trains G"),
    # --- the population's stacking (stabgen/stacked.py) ---
    Bug("grad_norm_squared", "stabgen/stacked.py", "return torch.sqrt(sum(t.pow(2).flatten(1).sum(1) for t in tensors))",
        "return sum(t.pow(2).flatten(1).sum(1) for t in tensors)", (_k(REF, "l2"),), "logged gradient norm squared"),
    Bug("weights_include_biases", "stabgen/stacked.py", "if name.startswith(net + \".\") and p.dim() >= 3]",
        "if name.startswith(net + \".\") and p.dim() >= 2]", (_k(REF, "l2"),), "weight penalties reach the biases"),
    Bug("adam_without_bias_correction", "stabgen/stacked.py", "neg_step = -lr / (1 - self.beta1 ** t) * keep",
        "neg_step = -lr * keep", (_k(REF, "ls and not l2"),), "Adam's first-moment bias correction dropped"),
    # --- the confirmation (bench/confirm.py) ---
    Bug("rank_pairing", "bench/confirm.py", '        pair = m[[row["arm"], base]].dropna()\n',
        '        pair = m[[row["arm"], base]].dropna()\n'
        '        pair = pd.DataFrame({c: np.sort(pair[c].to_numpy()) for c in pair.columns})\n',
        (CONF,), "each arm's values sorted on their own before the paired test"),
    Bug("verdict_direction_flipped", "bench/confirm.py", 'better = r["p_better"] < r["p_worse"]',
        'better = r["p_better"] > r["p_worse"]', (CONF,), "a significant arm called better when it is worse"),
    Bug("divergences_dropped", "bench/confirm.py",
        '    rows = rows.assign(_score=records.scores(rows, spec.metric, spec.direction))',
        '    rows = rows.assign(_score=rows[spec.metric].astype(float))', (CONF,),
        "diverged confirmation runs dropped instead of counted worst"),
    Bug("arms_pool_families", "bench/arms.py", 'FIELDS = {"regularizer": ("model", "objective", "regularizer"),',
        'FIELDS = {"regularizer": ("regularizer",),', (CONF,), "an arm keyed by the regularizer alone (GAN and VAE pooled)"),
    Bug("gated_baseline_still_tested", "bench/confirm.py",
        'if row["arm"] == base or base not in m or gates[row["arm"]] is False or gates.get(base) is False:',
        'if row["arm"] == base or base not in m or gates[row["arm"]] is False:', (CONF,),
        "arms tested against a baseline that did not train"),
    Bug("no_holm", "bench/confirm.py", '        out.loc[tested, "p_holm"] = stats.holm(out.loc[tested, "p"])',
        '        out.loc[tested, "p_holm"] = out.loc[tested, "p"]', (CONF,), "no multiplicity correction across arms"),
    Bug("sequential_baseline_starved", "bench/confirm.py",
        '            out[r.baseline] = max(out.get(r.baseline, 0), n[r.arm] + c.seeds)\n', "", (CONF,),
        "an open arm's next stage without its baseline's seeds (nothing to pair with)"),
    Bug("selection_ignores_divergence", "bench/confirm.py",
        'key = (sign * float(np.median(g["_score"])), sign * float(done.mean()) if len(done) else math.inf,',
        'key = (sign * float(done.mean()) if len(done) else math.inf, 0.0,',
        ("tests/bench/test_report.py::test_best_config_of_an_arm_counts_divergence",),
        "the best config chosen by its completed seeds' mean (divergences ignored)"),
    # --- the report's assembly (bench/report.py) ---
    Bug("effect_column_from_median_diff", "bench/render.py",
        'table["hodges_lehmann"], table["hodges_lehmann_ci_low"], table["hodges_lehmann_ci_high"])]',
        'table["median_diff"], table["median_diff_ci_low"], table["median_diff_ci_high"])]', (CONF,),
        "the printed effect is the difference of medians, not the test's Hodges–Lehmann estimand"),
    Bug("search_table_pools_families", "bench/report.py",
        '    df = df.assign(_arm=records.arm_labels(df, rec.spec.confirm.arm))  # per arm: families are never pooled',
        '    df = df.assign(_arm=df["regularizer"])', (CONF,), "the per-arm search table pools GAN and VAE"),
]


def _selection(t: str) -> list[str]:
    if "::-k::" in t:
        file, expr = t.split("::-k::")
        return [file, "-k", expr]
    return [t]


def run_bug(bug: Bug, scratch: Path, timeout: float) -> dict:
    target = scratch / bug.file
    original = target.read_text()
    if original.count(bug.old) != 1:
        return {"status": "not applied", "why": f"the text to replace occurs {original.count(bug.old)} times"}
    target.write_text(original.replace(bug.old, bug.new))
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    try:
        caught_by = []
        for t in bug.tests:
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=",
                                *_selection(t)], cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
            if r.returncode == 5:
                return {"status": "no tests selected", "tests": list(bug.tests)}
            if r.returncode != 0:
                failed = [ln.split(" ")[1] for ln in r.stdout.splitlines() if ln.startswith("FAILED")]
                caught_by += failed or [t]
        return {"status": "caught" if caught_by else "survived", "caught_by": caught_by,
                "seconds": round(time.perf_counter() - t0, 1)}
    finally:
        target.write_text(original)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated bug names")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mutation-wiring.json")
    args = ap.parse_args(argv)
    chosen = [b for b in BUGS if not args.only or b.name in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="stabgen-wiring-") as tmp:
        scratch = Path(tmp)
        for part in ("bench", "stabgen", "tests", "pyproject.toml"):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy)(src, scratch / part,
                                                               **({"ignore": shutil.ignore_patterns("__pycache__")}
                                                                  if src.is_dir() else {}))
        results = {}
        for bug in chosen:
            res = run_bug(bug, scratch, args.timeout)
            results[bug.name] = {"file": bug.file, "what": bug.what, **res}
            print(f"{bug.name:36s} {res['status']:10s} {', '.join(res.get('caught_by', []))[:100]}", flush=True)
    if args.only and args.out.is_file():  # rerun of some bugs: their entries replace the recorded ones
        results = {**json.loads(args.out.read_text())["results"], **results}
    results = {b.name: results[b.name] for b in BUGS if b.name in results}  # the list's order; dropped bugs go
    out = {"bugs": len(results), "caught": sum(r["status"] == "caught" for r in results.values()), "results": results}
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {out['caught']} of {out['bugs']} caught")
    return out


if __name__ == "__main__":
    main()
