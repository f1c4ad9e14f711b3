"""The structure a newcomer relies on: one dataset registry (a test dataset runs a study end to end),
third-party entry points, no import cycles or overlong functions, imports without side effects, a
resume that refuses a changed spec, and the README's Python API example."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch

from helpers import ROOT, run_main



def _modules() -> dict[str, Path]:
    mods = {}
    for p in sorted([*ROOT.glob("stabgen/**/*.py"), *ROOT.glob("bench/**/*.py")]):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def _import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """First-party module → first-party modules it imports, at any level (function bodies included)."""
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{a.name}" for a in node.names] \
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            graph[m] |= {t for t in map(resolve, names) if t and t != m}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search for a back edge)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        stack.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycles_among_first_party_modules():
    assert _cycle(_import_graph(_modules())) is None


def _test_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_test_module_imports_another_and_each_lives_by_its_package():
    """Shared helpers live in tests/helpers.py (fixtures in conftest.py); a test module importing another
    runs that module's tests' import-time work and hides where a helper lives."""
    tests = sorted((ROOT / "tests").rglob("test_*.py"))
    assert {p.parent.name for p in tests} == {"stabgen", "bench", "e2e"}, "tests/<package or e2e>/test_*.py"
    importers = {p.name: sorted(n for n in _test_imports(p) if n.startswith("test_") or n == "conftest")
                 for p in tests}
    assert {k: v for k, v in importers.items() if v} == {}


def test_the_test_import_finder_sees_an_import(tmp_path):
    (tmp_path / "test_x.py").write_text("from test_cli import run_main\nimport conftest\n")
    assert {"test_cli", "conftest"} <= _test_imports(tmp_path / "test_x.py")


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_cli_reaches_the_library_only_through_the_api():
    """bench/cli.py is parse → one bench.api call → print: its only first-party imports are bench.api, the
    printing module and stabgen.errors (function bodies included)."""
    assert _import_graph(_modules())["bench.cli"] == {"bench.api", "bench.printing", "stabgen.errors"}


def test_one_bench_run_opens_its_storage_once(tmp_path, capsys, monkeypatch):
    """A whole `bench run` (checks, search, confirmation, report) opens the study's storage once in its
    process and records (compares) its spec once."""
    from bench import storage

    opens, specs = [], []
    open_, record = storage._open_study, storage.record_spec
    monkeypatch.setattr(storage, "_open_study", lambda *a, **k: opens.append(a[1]) or open_(*a, **k))
    monkeypatch.setattr(storage, "record_spec", lambda *a, **k: specs.append(1) or record(*a, **k))
    spec = TRI_SPEC.replace('dataset = "tri"', 'dataset = "ring"').replace("seeds = 0", "seeds = 2\nstages = 1")
    (tmp_path / "s.toml").write_text(spec)
    code, out, err = run_main(["run", "--study", "s.toml", "--device", "cpu"], tmp_path, capsys, monkeypatch)
    assert code == 0 and "confirmation on 2 fresh seeds" in out, err
    assert len(opens) == 1 and len(specs) == 1, (opens, specs)


def test_no_function_longer_than_60_lines():
    """Bodies (decorators and signatures aside, so typer's option lists do not count)."""
    long = []
    for m, p in _modules().items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.body[0].lineno + 1
                if n > 60:
                    long.append(f"{m}.{node.name}: {n} lines")
    assert not long, long


def test_no_module_outside_the_registry_and_loaders_names_a_dataset():
    """Dataset names appear only in stabgen/datasets.py, the loaders (data.py, sources.py) and the
    paper reproductions (whose papers are about named datasets)."""
    allowed = {"stabgen.datasets", "stabgen.data", "stabgen.sources", "stabgen.metrics.classifier"}
    pattern = re.compile(r"""["'](mnist|fashion-mnist|stacked-mnist|ring|grid)["']""")
    offenders = []
    for m, p in _modules().items():
        if m in allowed or m.startswith("bench.papers"):
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and "sampler" not in code:  # sampler = "grid" is a search strategy
                offenders.append(f"{m}:{i}: {line.strip()}")
    assert not offenders, offenders


IMPORT_PROBE = """
import logging, sys, warnings, pkgutil, importlib
import matplotlib
import optuna
# third-party libraries add warning filters of their own when imported: import them first
for lib in ("torch", "torchvision", "torch_fidelity", "seaborn", "scipy.stats", "pandas", "typer", "rich",
            "pydantic", "sqlalchemy", "matplotlib.figure", "cmaes"):
    importlib.import_module(lib)
before = (matplotlib.get_backend(), dict(matplotlib.rcParams), list(warnings.filters),
          optuna.logging.get_verbosity(), len(logging.getLogger().handlers), logging.getLogger().level)
import stabgen, bench
for pkg in (stabgen, bench):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
after = (matplotlib.get_backend(), dict(matplotlib.rcParams), list(warnings.filters),
         optuna.logging.get_verbosity(), len(logging.getLogger().handlers), logging.getLogger().level)
names = ("backend", "rcParams", "warnings filters", "optuna verbosity", "root handlers", "root level")
changed = [n for n, a, b in zip(names, before, after) if a != b]
print("CHANGED:" + ",".join(changed))
"""


def test_importing_every_module_changes_no_global_state():
    r = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, timeout=300,
                       cwd=ROOT, env={**os.environ, "MPLBACKEND": "", "PYTHONWARNINGS": ""})
    assert r.returncode == 0, r.stderr
    assert "CHANGED:\n" in r.stdout or r.stdout.strip() == "CHANGED:", r.stdout


def test_report_figures_leave_the_users_matplotlib_settings_alone(tmp_path):
    import matplotlib

    from bench import figures
    before = dict(matplotlib.rcParams)
    with figures.styled():
        fig, ax = figures.subplots()
        ax.plot([0, 1], [0, 1])
        figures.save(fig, tmp_path, "line")
    assert dict(matplotlib.rcParams) == before and (tmp_path / "line.png").stat().st_size > 0


# --- a dataset registered inside the test runs a study end to end ---------------------------------

TRI_SPEC = """
dataset = "tri"
n_trials = 2
[train]
steps = 40
batch_size = 50
eval_every = 20
z_dim = 2
[eval]
samples = 300
inception_top_k = 0
[confirm]
seeds = 0
[space]
models = ["mlp2d_small"]
regularizers = ["none", "r1"]
"""


@pytest.fixture
def tri_dataset():
    """Three Gaussians on a line: a new points dataset, one registration."""
    from stabgen import datasets, sources

    mixture = sources.GaussianMixture("tri", torch.tensor([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]), 0.05)
    spec = datasets.register(datasets.DatasetSpec(
        "tri", "three Gaussians on a line (a test's own dataset)", "points", (2,),
        source=lambda data_dir=None: mixture, evaluator=datasets.mixture_evaluator,
        metrics=datasets.MIXTURE_METRICS, columns=datasets.MIXTURE_COLUMNS))
    yield spec
    datasets.DATASETS.unregister("tri")


def test_a_registered_dataset_runs_a_study_end_to_end(tmp_path, capsys, monkeypatch, tri_dataset):
    (tmp_path / "tri.toml").write_text(TRI_SPEC)
    code, out, err = run_main(["run", "--study", "tri.toml", "--device", "cpu"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    lb = pd.read_csv(tmp_path / "runs/tri/leaderboard.csv")
    trials = pd.read_csv(tmp_path / "runs/tri/trials.csv")
    assert len(trials) == 2 and set(trials["status"]) <= {"completed", "diverged", "pruned", "metric_undefined"}
    assert "reverse_kl" in lb and (trials["modes_captured"].dropna() <= 3).all()
    code, out, _ = run_main(["list", "datasets"], tmp_path, capsys, monkeypatch)
    assert "tri" in out and "three Gaussians" in out


# --- a third-party distribution's entry point ------------------------------------------------------

PLUGIN = '''
import torch
from stabgen.regularizers import Regularizer

class DWeightSquare(Regularizer):
    """Σ w² over the discriminator's weights (a plugin's regularizer)."""
    description = "plugin: squared D weights"
    families = frozenset({"gan"})
    acts_on = "discriminator_params"
    loss = "discriminator"

    def penalty(self, ctx):
        return sum((w ** 2).flatten(1).sum(1) for w in ctx.nets.weights("discriminator"))
'''


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """A tiny installed distribution: a package and its dist-info with an entry point, on sys.path."""
    site = tmp_path / "site"
    (site / "stabgen_plugin_demo").mkdir(parents=True)
    (site / "stabgen_plugin_demo" / "__init__.py").write_text(PLUGIN)
    info = site / "stabgen_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stabgen-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[stabgen.regularizers]\nd_weight_sq = stabgen_plugin_demo:DWeightSquare\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    from stabgen.regularizers import REGULARIZERS
    REGULARIZERS.unregister("d_weight_sq")
    REGULARIZERS._loaded.discard("d_weight_sq")


def test_an_installed_plugin_regularizer_is_listed_and_usable(tmp_path, capsys, monkeypatch, plugin_on_path):
    code, out, _ = run_main(["list", "regularizers"], tmp_path, capsys, monkeypatch)
    assert code == 0 and "d_weight_sq" in out and "plugin: squared D weights" in out
    spec = TRI_SPEC.replace('dataset = "tri"', 'dataset = "ring"').replace('"none", "r1"', '"d_weight_sq"')
    (tmp_path / "plug.toml").write_text(spec)
    code, _, err = run_main(["run", "--study", "plug.toml", "--device", "cpu"], tmp_path, capsys, monkeypatch)
    assert code == 0, err
    trials = pd.read_csv(tmp_path / "runs/plug/trials.csv")
    assert set(trials["regularizer"]) == {"d_weight_sq"} and (trials["lam"] > 0).all()
    history = pd.read_csv(trials["trial_dir"].iloc[0] + "/history.csv")
    assert (history["penalty"] > 0).all()  # the plugin's penalty reached the training step


def test_an_installed_plugin_regularizer_passes_the_shipped_contract_checks(plugin_on_path):
    from stabgen import testing

    testing.check_regularizer("d_weight_sq")  # what the plugin's author runs from their own tests


def test_a_malformed_plugin_is_refused_in_one_line_when_loaded(tmp_path, capsys, monkeypatch):
    site = tmp_path / "site"
    (site / "bad_plugin").mkdir(parents=True)
    (site / "bad_plugin" / "__init__.py").write_text(
        "from stabgen.regularizers import Regularizer\n"
        "class Everywhere(Regularizer):\n    description = 'x'\n    families = frozenset({'gan'})\n"
        "    acts_on = 'everywhere'\n    loss = 'generator'\n")
    info = site / "bad_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[stabgen.regularizers]\neverywhere = bad_plugin:Everywhere\n")
    monkeypatch.syspath_prepend(str(site))
    from stabgen.regularizers import REGULARIZERS
    try:
        code, _, err = run_main(["list", "regularizers"], tmp_path, capsys, monkeypatch)
    finally:
        REGULARIZERS._loaded.discard("everywhere")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "plugin 'everywhere' (bad_plugin:Everywhere" in lines[0] and "acts_on 'everywhere' is none of" in lines[0]


# --- resume safety ---------------------------------------------------------------------------------

def test_a_plugin_that_shadows_a_built_in_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """An installed distribution whose entry point is named like a built-in regularizer (r1) is refused,
    naming both, wherever the registry is listed; nothing silently wins."""
    site = tmp_path / "site"
    (site / "shadow_pkg").mkdir(parents=True)
    (site / "shadow_pkg" / "__init__.py").write_text("class R1:\n    pass\n")
    info = site / "shadow_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shadow-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[stabgen.regularizers]\nr1 = shadow_pkg:R1\n")
    monkeypatch.syspath_prepend(str(site))
    code, _, err = run_main(["list", "regularizers"], tmp_path, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "plugin 'r1' (shadow_pkg:R1, from shadow-pkg) shadows the built-in regularizer 'r1' (stabgen." in lines[0]


def test_resuming_with_a_changed_spec_is_refused_unless_allowed(tmp_path, capsys, monkeypatch):
    spec = TRI_SPEC.replace('dataset = "tri"', 'dataset = "ring"').replace("n_trials = 2", "n_trials = 1")
    (tmp_path / "s.toml").write_text(spec)
    assert run_main(["run", "--study", "s.toml", "--device", "cpu"], tmp_path, capsys, monkeypatch)[0] == 0
    db = f"sqlite:///{tmp_path}/runs/s/study.db"
    before = [(t.number, t.state, t.params) for t in optuna.load_study(study_name="s", storage=db).trials]
    (tmp_path / "s.toml").write_text(spec.replace("steps = 40", "steps = 60").replace('"none", "r1"', '"none"'))
    code, _, err = run_main(["run", "--study", "s.toml", "--device", "cpu", "--trials", "2"], tmp_path, capsys,
                            monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "space.regularizers" in lines[0] and "train.steps" in lines[0], err
    study = optuna.load_study(study_name="s", storage=db)
    assert [(t.number, t.state, t.params) for t in study.trials] == before  # nothing touched
    code, _, err = run_main(["run", "--study", "s.toml", "--device", "cpu", "--trials", "2", "--allow-spec-change"],
                            tmp_path, capsys, monkeypatch)  # the search space itself cannot change in Optuna
    assert code == 2 and "space.regularizers cannot change within one study" in err and "Traceback" not in err
    (tmp_path / "s.toml").write_text(spec.replace("steps = 40", "steps = 60"))
    code, _, err = run_main(["run", "--study", "s.toml", "--device", "cpu", "--trials", "2", "--allow-spec-change"],
                            tmp_path, capsys, monkeypatch)
    study = optuna.load_study(study_name="s", storage=db)
    assert code == 0 and len(study.trials) == 2 and study.user_attrs["spec"]["train"]["steps"] == 60
    assert study.user_attrs["spec_history"][0]["train"]["steps"] == 40


# --- the README's notebook example -----------------------------------------------------------------

def test_readme_python_api_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), namespace)
    assert isinstance(namespace["board"], pd.DataFrame) and not namespace["board"].empty
    trials = namespace["trials"]
    assert isinstance(trials, pd.DataFrame) and trials["confirm_arm"].isna().sum() == 7  # one per arm
    verdicts = namespace["verdicts"]
    assert len(trials) == 7 + 6 * len(verdicts) and set(verdicts["seeds"]) == {6} and len(verdicts) == 7
    assert isinstance(namespace["gen"], torch.nn.Module)
    assert (tmp_path / "reports/ring_demo/index.html").exists()
