#!/usr/bin/env bash
# Mutation testing of the modules whose math the tests must pin down (issue of record: tests that
# catch bugs): bench/stats.py, stabgen/regularizers.py, stabgen/objectives.py, stabgen/metrics/.
# mutmut (from PyPI) mutates them one change at a time and runs, for each mutant, the tests that
# reach the mutated function (config: [tool.mutmut] in pyproject.toml). Hours on 2 CPU cores: run it
# in the background, never in CI. Resumable: mutmut keeps its state under mutants/.
#   bash benchmarks/mutation.sh                 # every module
#   bash benchmarks/mutation.sh "bench.stats*"  # one module (mutmut's mutant-name glob)
# Writes benchmarks/results/mutation.json: per module the mutants, killed, survived and the score.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
pip install -q 'mutmut==3.8.1'
globs=("$@")
[ ${#globs[@]} -gt 0 ] || globs=("bench.stats*" "stabgen.regularizers*" "stabgen.objectives*" "stabgen.metrics*")
for g in "${globs[@]}"; do
  mutmut run "$g" || true  # a surviving mutant is a result, not an error
done
mutmut results --all true > mutants/results.txt || mutmut results > mutants/results.txt
python - <<'PY'
"""mutants/results.txt ('module.function__mutmut_N: status' per line) → per-module counts and score."""
import collections, json, pathlib
counts = collections.defaultdict(collections.Counter)
survivors = collections.defaultdict(list)
for line in pathlib.Path("mutants/results.txt").read_text().splitlines():
    if ":" not in line:
        continue
    name, status = (s.strip() for s in line.rsplit(":", 1))
    module = name.split(".x_")[0].split("__mutmut")[0].rsplit(".", 1)[0] if ".x_" in name else name.rsplit(".", 1)[0]
    counts[module][status] += 1
    if status == "survived":
        survivors[module].append(name)
out = {}
for module, c in sorted(counts.items()):
    judged = c["killed"] + c["survived"]
    out[module] = {"mutants": sum(c.values()), "killed": c["killed"], "survived": c["survived"],
                   "other": {k: v for k, v in c.items() if k not in ("killed", "survived")},
                   "score": round(c["killed"] / judged, 4) if judged else None,
                   "survivors": survivors[module]}
path = pathlib.Path("benchmarks/results/mutation.json")
path.write_text(json.dumps(out, indent=2) + "\n")
for module, v in out.items():
    print(f"{module:40s} {v['killed']:5d}/{v['killed'] + v['survived']:<5d} killed  score {v['score']}")
print(f"wrote {path}")
PY
