#!/usr/bin/env bash
# Mutation testing of the modules whose math the tests must pin down (issue of record: tests that
# catch bugs): bench/stats.py, stabgen/regularizers.py, stabgen/objectives.py, stabgen/metrics/ — and the
# joins where wiring bugs sit (issue 34): stabgen/train.py, stabgen/stacked.py, bench/confirm.py (their
# multi-line wiring bugs: benchmarks/mutation_wiring.py).
# mutmut (from PyPI) mutates them one change at a time and runs, for each mutant, the tests that
# reach the mutated function (config: [tool.mutmut] in pyproject.toml). Hours on 2 CPU cores: run it
# in the background, never in CI. Resumable: mutmut keeps its state under mutants/.
#   bash benchmarks/mutation.sh                 # every module
#   bash benchmarks/mutation.sh "bench.stats*"  # one module (mutmut's mutant-name glob)
#   MUTMUT_CHILDREN=2 bash benchmarks/mutation.sh ...  # mutants run in parallel (default 1: one core)
#   RESUME=1 bash benchmarks/mutation.sh "stabgen.metrics.fidelity*"  # those not yet judged + open survivors
#   RESUME=1 RERUN_TIMEOUTS=1 bash benchmarks/mutation.sh ...  # and the timeouts (after a change of the limits)
# Writes benchmarks/results/mutation.json: per module the mutants, killed, survived and the score.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
pip install -q 'mutmut==3.8.1'
# each mutant's tests get their share of the cores: torch's idle OpenMP threads spin, which counts against
# mutmut's CPU-time limit and oversubscribes the cores when children run side by side
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( $(nproc) / ${MUTMUT_CHILDREN:-1} > 0 ? $(nproc) / ${MUTMUT_CHILDREN:-1} : 1 ))}"
globs=("$@")
[ ${#globs[@]} -gt 0 ] || globs=("bench.stats*" "stabgen.regularizers*" "stabgen.objectives*" "stabgen.metrics*"
                                  "stabgen.train*" "stabgen.stacked*" "bench.confirm*")
if [ "${RESUME:-0}" = 1 ]; then  # mutmut reruns every mutant named: name only those of these globs
  # not yet judged, and the survivors not listed as equivalent (the tests added for them are new)
  mutmut results --all true > mutants/results.txt
  mapfile -t globs < <(python - "${globs[@]}" <<'PY'
import fnmatch, json, os, pathlib, sys
equivalent = json.loads(pathlib.Path("benchmarks/mutation_equivalent.json").read_text())
for line in pathlib.Path("mutants/results.txt").read_text().splitlines():
    name, _, status = (s.strip() for s in line.rpartition(":"))
    rerun = status == "not checked" or (status in ("survived", "no tests") and name not in equivalent) \
        or (status == "timeout" and os.environ.get("RERUN_TIMEOUTS") == "1")  # after the time limits changed
    if rerun and any(fnmatch.fnmatchcase(name, g) for g in sys.argv[1:]):
        print(name)
PY
)
  echo "resuming ${#globs[@]} mutants: not yet checked, or survivors not listed as equivalent"
fi
# one mutmut call for all globs: each call runs the clean tests of its mutants first
[ ${#globs[@]} -eq 0 ] || mutmut run --max-children "${MUTMUT_CHILDREN:-1}" "${globs[@]}" || true  # a survivor is a result, not an error
mutmut results --all true > mutants/results.txt
python - <<'PY'
"""mutants/results.txt ('module.function__mutmut_N: status' per line) → per-module counts and scores;
survivors judged equivalent (benchmarks/mutation_equivalent.json, each with its reason) leave the
denominator of `score`; every other survivor is listed as needing a test."""
import collections, json, pathlib
equivalent = json.loads(pathlib.Path("benchmarks/mutation_equivalent.json").read_text())
counts = collections.defaultdict(collections.Counter)
survivors = collections.defaultdict(list)
for line in pathlib.Path("mutants/results.txt").read_text().splitlines():
    if ":" not in line:
        continue
    name, status = (s.strip() for s in line.rsplit(":", 1))
    module = name.split(".x_")[0].split(".xǁ")[0]
    counts[module][status] += 1
    if status in ("survived", "no tests"):
        survivors[module].append({"mutant": name, "status": status,
                                  "equivalent": equivalent.get(name), "needs a test": name not in equivalent})
path = pathlib.Path("benchmarks/results/mutation.json")
out = json.loads(path.read_text()) if path.exists() else {}  # modules not run this time keep their last scores
for module, c in sorted(counts.items()):
    if set(c) <= {"not checked"}:  # mutated but not run by this call: its earlier result stands
        continue
    judged = c["killed"] + c["survived"] + c["no tests"] + c["timeout"]
    eq = sum(1 for s in survivors[module] if s["equivalent"])
    killed = c["killed"] + c["timeout"]  # a mutant that hangs the tests is caught by them
    out[module] = {"mutants": sum(c.values()), "killed": c["killed"], "timeout": c["timeout"],
                   "survived": c["survived"], "no_tests": c["no tests"], "equivalent": eq,
                   "other": {k: v for k, v in c.items() if k not in ("killed", "survived", "no tests", "timeout")},
                   "score_raw": round(killed / judged, 4) if judged else None,
                   "score": round(killed / (judged - eq), 4) if judged - eq else None,
                   "survivors": survivors[module]}
out = dict(sorted(out.items()))
path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
for module, v in out.items():
    print(f"{module:34s} {v['killed'] + v['timeout']:5d} killed of {v['mutants']:5d}, {v['equivalent']} equivalent, "
          f"{sum(s['needs a test'] for s in v['survivors'])} need a test · score {v['score']} (raw {v['score_raw']})")
print(f"wrote {path}")
PY
