"""How --jobs workers split a look's queued runs (seed re-runs, confirmation seeds) into rounds: one home for
the run (bench.search._round_size) and its price (bench.plan.owed_groups), which must agree."""

from __future__ import annotations

import math


def share(waiting: int, processes: int, running: int = 0) -> int:
    """A worker's part of the queued runs: no more than waiting / processes (rounded up), so the workers end
    a look together — one that takes a population of 16 of the last 20 runs leaves the other core idle for
    that population's whole length (10 minutes of load 1.0 in a measured mnist_reg --jobs auto). Each later
    ask halves what is left again, so the last rounds are small: right where a round costs in proportion
    to its members (the MNIST nets). `running`: the other workers' runs in flight, counted as still to share
    (an even split: where a round costs about the same whatever its size, the 2D ring's small nets, halving
    made 50 confirmation runs six rounds, 25, 13, 6, 3, 2, 1, where two rounds of 25 do; `even_split` says when)."""
    return max(1, min(waiting, math.ceil((waiting + running) / max(1, processes))))


def even_split(measured: int | None) -> bool:
    """Whether --jobs workers split a look's queued runs evenly (in-flight runs counted, `share`)
    rather than halving what is left: where `--jobs auto` measured a population faster than solo runs
    (bench.jobs.population > 1), so a round's cost is mostly fixed. Solo runs, or the unmeasured default of
    8 (`--jobs N`), cost in proportion to their members: halving ends the look together."""
    return (measured or 1) > 1
