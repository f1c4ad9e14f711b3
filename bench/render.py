"""How a report is written, apart from what it says (bench.report): the display formatters (a value with
its interval, a metric in its dataset's format), the Markdown/LaTeX/HTML of a study's tables and its page.
bench.benchmark renders its leaderboard page with the same page frame."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from bench import records
from stabgen.datasets import DATASETS

# bench.report imports this module, so its types are not imported back: a `rec` here is a
# bench.report.StudyRecord, an `r` a bench.report.Report
StudyRecord = Report = Any


def display_confirm(table: pd.DataFrame, rec: StudyRecord) -> pd.DataFrame:
    """The confirmation table for reading: each arm's family and baseline, median [CI], gate,
    P(improvement) [CI], the Hodges–Lehmann effect [exact CI] the test is about, p's, the verdict."""
    if table.empty:
        return table
    fmt = column_format(rec, rec.spec.metric)
    out = table[["rank", "arm", "model", "objective", "regularizer", "baseline", "config_trial"]].copy()
    out["objective"] = out["objective"].map(lambda v: v if isinstance(v, str) and v else "—")
    out["λ"] = [records.display_lam(r, v) for r, v in zip(table["regularizer"], table["lam"])]
    out["lr"] = table["lr"].map(lambda v: f"{v:.2e}")
    out["seeds"] = table["seeds"]
    out["diverged"] = table["diverged"].map(lambda v: f"{v:.0%}")
    out[f"median {rec.spec.metric}"] = [display_ci(v, lo, hi, fmt) for v, lo, hi in
                                        zip(table["median"], table["median_ci_low"], table["median_ci_high"])]
    if table["p"].notna().any():
        out["P(improvement)"] = [display_ci(v, lo, hi, "{:.2f}") for v, lo, hi in zip(
            table["prob_improvement"], table["prob_improvement_ci_low"], table["prob_improvement_ci_high"])]
        out["HL Δ (arm − baseline)"] = [display_ci(v, lo, hi, fmt) for v, lo, hi in zip(
            table["hodges_lehmann"], table["hodges_lehmann_ci_low"], table["hodges_lehmann_ci_high"])]
        out["p"] = table["p"].map(lambda v: cell(v, "{:.3g}"))
        out["p_holm"] = table["p_holm"].map(lambda v: cell(v, "{:.3g}"))
        if "p_equivalent_holm" in table:
            out["p_equiv_holm"] = table["p_equivalent_holm"].map(lambda v: cell(v, "{:.3g}"))
    if "gate" in table and (table["gate"] != "none").any():
        out.insert(out.columns.get_loc("seeds") + 2, "gate", table["gate"])
    out["verdict"] = table["verdict"]
    return out.astype(str)


def cell(v, spec: str = "{:.4g}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"  # a median or bound that falls on diverged runs
    return spec.format(v + 0.0) if isinstance(v, (int, float)) else str(v)  # + 0.0: −0 prints as 0


def display_ci(mean: float, low: float, high: float, fmt: str = "{:.4g}") -> str:
    """`mean [low, high]`, or just the mean where there is no interval (one seed), in the column's format."""
    return f"{cell(mean, fmt)} [{cell(low, fmt)}, {cell(high, fmt)}]" if not math.isnan(low) else cell(mean, fmt)


def column_format(rec: StudyRecord, metric: str) -> str:
    """How a metric column is written: the dataset's Column.fmt (e.g. high_quality as a percentage)."""
    col = DATASETS.get(rec.spec.dataset).columns.get(metric)
    return col.fmt if col else "{:.4g}"


def display_configs(configs: pd.DataFrame, rec: StudyRecord) -> pd.DataFrame:
    """The config table for reading: `mean [low, high]` per metric, λ/lr in scientific notation."""
    if configs.empty:
        return configs
    keys = [k for k in records.varying_keys(rec.trials) if k in configs]
    out = configs[["rank", *keys]].copy()
    out["lam"] = [records.display_lam(r, v) for r, v in zip(configs["regularizer"], configs["lam"])]
    out["lr"] = configs["lr"].map(lambda v: f"{v:.2e}")
    for m in rec.metrics:
        out[m] = [display_ci(v, lo, hi, column_format(rec, m)) for v, lo, hi in zip(configs[m], configs[f"{m}_ci_low"],
                                                              configs[f"{m}_ci_high"])]
    out["seeds"] = configs["seeds"]
    out["score"] = configs["score"].map(lambda v: cell(v, column_format(rec, rec.spec.metric)))
    out["diverged"] = configs["divergence_rate"].map(lambda v: f"{v:.0%}")
    out["s/trial"] = configs["seconds"].map(lambda v: cell(v, "{:.0f}"))
    return out


def display_regularizers(regs: pd.DataFrame) -> pd.DataFrame:
    if regs.empty:
        return regs
    out = regs.copy()
    for col in out.columns:
        if col == "divergence_rate":
            out[col] = out[col].map(lambda v: f"{v:.0%}")
        elif col == "pruned_rate":
            out[col] = out[col].map(lambda v: f"{v:.0%}")
        elif out[col].dtype.kind == "f":
            out[col] = out[col].map(cell)
    return out.astype(str).replace({"nan": "—"})


# --- LaTeX and HTML ------------------------------------------------------------------------------

CONFIRM_NOTE = ("An arm is a (model, objective, regularizer) and is tested only against the baseline arm of its own "
                "model and objective; every arm, the baseline included, had the same number of search trials. "
                "Each arm's best search config re-trained on the same fresh seeds; only these runs are tested. "
                "Median over seeds (a diverged seed is the worst value) [95 % bootstrap CI]; an arm below the "
                "dataset's quality gate did not train at this budget and is never called better or worse. Against "
                "the baseline, paired by seed: P(improvement) [95 % paired bootstrap CI], the Hodges–Lehmann "
                "estimate (pseudo-median of arm − baseline, the signed-rank test's estimand) [exact 95 % CI], "
                "two-sided Wilcoxon signed-rank with exact permutation p, Holm across every tested arm; the "
                "verdict names the p it rests on.")
REGS_NOTE = ("A description of the search trials (not a test: an adaptive search samples arms unevenly and "
             "its trials are not independent). Median with diverged/pruned/undefined trials as the worst value.")


LATEX_NEEDS = "% \\usepackage{booktabs} (\\toprule, \\midrule, \\bottomrule); compiles with pdflatex as it is\n"
# symbols tables print that pdflatex's default (utf8 + OT1/T1) fonts lack: math mode has them all
_LATEX_SYMBOLS = {"∞": r"$\infty$", "−": r"$-$", "λ": r"$\lambda$", "Δ": r"$\Delta$", "±": r"$\pm$",
                  "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\to$", "σ": r"$\sigma$",
                  "β": r"$\beta$", "≈": r"$\approx$", "·": r"$\cdot$", "∅": r"$\emptyset$"}


def latex_symbols(tex: str) -> str:
    """Non-ASCII symbols of the tables as math-mode commands (—, – and accented letters pdflatex reads
    as they are)."""
    return "".join(_LATEX_SYMBOLS.get(c, c) for c in tex)


def latex_escape(text: str) -> str:
    """LaTeX's special characters in running text (what pandas' escape=True does to the cells)."""
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(table.get(c, c) for c in text)


# --- HTML ---------------------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:right}th{background:#f3f3f3}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dt{font-weight:600}img{max-width:100%;border:1px solid #eee}.samples{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0}figcaption{font-size:12px;color:#555}.note{color:#777;font-size:13px}"""

# Counts the images that actually decoded, so a headless browser can tell (data-images-loaded="n/m").
IMAGE_CHECK = """<script>window.addEventListener('load',function(){var i=document.images,n=0;
for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}
document.body.setAttribute('data-images-loaded',n+'/'+i.length);});</script>"""


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}{IMAGE_CHECK}</body></html>\n")


def header_html(header: dict[str, str]) -> str:
    return "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd><code>{html.escape(v)}</code></dd>" if "command" in k
                            else f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                            for k, v in header.items()) + "</dl>"


CAPTIONS = {
    "objective_vs_lambda": "Objective vs λ per regularizer (log λ); dashed: median of unregularized trials",
    "objective_by_regularizer": "Objective per regularizer: box over completed trials, one dot per trial",
    "budget_curves": "Best-so-far against trials and against compute seconds",
    "training_curves": "Intermediate metric and critic loss of the top trials",
    "fidelity_diversity": "Precision vs recall, density vs coverage",
    "param_importances": "Optuna parameter importances (PED-ANOVA) for the study metric",
    "expected_best": "Expected best value after n search trials per arm (Dodge et al. 2019), with a 95 % bootstrap "
                     "band; diverged/pruned/undefined trials at the study's worst finite value",
    "lambda_robustness": "λ-robustness: share of sampled (λ, lr) that converge and that land within 10 % of the "
                         "regularizer's best, and the λ region of the latter (robustness.csv)",
    "divergence_survival": "Time to divergence per arm: Kaplan–Meier survival, right-censored at the steps run",
}


def render_html(r: Report, rec: StudyRecord) -> str:
    body = [header_html(r.header)]
    if not r.confirmation.empty:
        body += [f"<h2 id='confirmation'>Confirmation (the verdicts)</h2><p class='note'>{html.escape(CONFIRM_NOTE)}"
                 "</p>", display_confirm(r.confirmation, rec).to_html(index=False, border=0)]
    body += ["<h2>Search: configs (candidates; score = median over seeds, diverged = worst)</h2>",
             display_configs(r.configs, rec).to_html(index=False, border=0)]
    if not r.regularizers.empty:
        body += [f"<h2>Search: per arm</h2><p class='note'>{html.escape(REGS_NOTE)}</p>",
                 display_regularizers(r.regularizers).to_html(index=False, border=0)]
    body.append("<h2>Figures</h2>")
    for name, png in r.figures.items():
        body.append(f"<figure><img src='{html.escape(png)}' alt='{name}'><figcaption>"
                    f"{html.escape(CAPTIONS.get(name, name))} (<a href='figures/{name}.svg'>SVG</a>)"
                    f"</figcaption></figure>")
    if r.samples:
        body.append("<h2>Samples of the top trials</h2><div class='samples'>")
        body += [f"<figure><img src='{html.escape(p)}' alt='{html.escape(c)}' width='260'><figcaption>"
                 f"{html.escape(c)}</figcaption></figure>" for c, p in r.samples]
        body.append("</div>")
    if r.notes:
        body.append("<h2>Notes</h2><ul class='note'>" + "".join(f"<li>{html.escape(n)}</li>" for n in r.notes)
                    + "</ul>")
    body.append("<p class='note'>Files: <a href='leaderboard.csv'>leaderboard.csv</a> · "
                "<a href='leaderboard.md'>.md</a> · <a href='leaderboard.tex'>.tex</a> · "
                "<a href='regularizers.csv'>regularizers.csv</a>"
                + (" · <a href='confirm.csv'>confirm.csv</a>" if not r.confirmation.empty else "") + "</p>")
    return html_page(f"stabgen report: {rec.spec.name}", "\n".join(body))
