"""`--plan`'s arithmetic by hand: queued runs train as populations (rounds of the owed queue), a population
step is affine in its size, and a --jobs layout prices each row at one thread over the processes' share."""

from __future__ import annotations

import math

import pytest

from helpers import study_toml

from bench import plan
from bench.papers.plan import Work
from stabgen.trial import TrialConfig


@pytest.mark.parametrize("counts,cap,processes,want", [
    ([10, 10, 10], 16, 1, [[10], [6, 4], [10]]),  # rounds of 16: a block straddles two rounds
    ([2, 2, 2, 2, 2], 5, 1, [[2], [2], [1, 1], [2], [2]]),
    ([3, 4], 100, 1, [[3], [4]]),  # everything in one round: one population per block
    ([1, 1, 1], 1, 1, [[1], [1], [1]]),  # an accelerator without populations: one by one
    # --jobs 2, populations of up to 8, each ask at most half of what is left: rounds 8, 8, 7, 4, 2, 1
    ([10, 10, 10], 8, 2, [[8, 2], [6, 4], [3, 4, 2, 1]]),
    ([10], 8, 2, [[5, 3, 1, 1]]),  # a look of 10 seeds: 5 each, then the rest halved
])
def test_owed_groups_follow_the_queue_round_by_round(counts, cap, processes, want):
    assert plan.owed_groups(counts, cap, processes) == want


@pytest.mark.parametrize("counts,cap,processes,want", [
    # an even split (auto measured populations faster than solo runs): the other worker's round in flight counts
    ([10] * 5, 32, 2, [[10], [10], [5, 5], [10], [10]]),  # the ring's look of 50: two rounds of 25, not 25, 13, 6, …
    ([10, 10, 10], 8, 2, [[8, 2], [6, 4], [4, 6]]),  # shares 15, 15, 11 cut to 8, then the 6 left (7 would be its share)
    ([7], 32, 3, [[3, 3, 1]]),  # three workers: 7/3 → 3; 4 left + 3 in flight → 3; 1 left + 6 in flight → the 1
    ([10], 32, 1, [[10]]),  # one process: nothing else in flight
])
def test_owed_groups_split_a_look_evenly_where_rounds_cost_their_fixed_part(counts, cap, processes, want):
    assert plan.owed_groups(counts, cap, processes, even=True) == want


def test_a_population_step_is_affine_in_its_size():
    m = plan.Affine(0.01, 0.06, 16)  # 1 member 10 ms, 16 members 60 ms: 20/3 ms fixed + 10/3 ms per member
    assert m(1) == pytest.approx(0.01) and m(16) == pytest.approx(0.06) and m(10) == pytest.approx(0.04)
    assert plan.Affine(0.02)(7) == pytest.approx(0.02)  # timed at one size only: constant


def test_populations_split_the_top_configs_and_each_stage_queues_on_its_own():
    cfg = TrialConfig(steps=100)
    works = [Work("a: search (2)", cfg, 2), Work("a: seed re-runs (2)", cfg, 2, queue="re-runs"),
             Work("top 2 configs: 3 more seeds each", cfg, 6, queue="re-runs", blocks=2),
             Work("a: confirmation", cfg, 10, queue="confirmation"), Work("b: confirmation", cfg, 10, queue="confirmation")]
    assert plan.populations(works, 4) == [[1, 1], [2], [2, 1, 3], [4, 4, 2], [2, 4, 4]]


def test_price_by_hand_one_process_and_two():
    """One model: a step alone 10 ms at every thread (60 ms for 16 members), 15 ms at one thread (120 ms
    for 16); an evaluation 0.5 s. Two one-thread processes keep c = 0.9 of their alone speed."""
    cfg = TrialConfig(steps=100)
    works = [Work("search", cfg, 2, eval_samples=10, evals=1),
             Work("confirmation", cfg, 10, eval_samples=10, evals=1, queue="confirmation"),
             Work("Inception", None, 0, inception=50)]
    solo = [(0.01, 0.5), (0.01, 0.5), (math.nan, math.nan)]
    one = {"gan": plan.Affine(0.01, 0.06, 16)}
    single = {"gan": plan.Affine(0.015, 0.12, 16)}  # 8 ms fixed + 7 ms per member
    one_s, jobs_s = plan.price(works, solo, one, 16, (2, single, 0.9), jobs_cap=5)
    # search: 2 solo runs of 100 steps at 10 ms, 2 evaluations; confirmation: one population of 10 (40 ms a step)
    assert one_s[:2] == pytest.approx([2 * 100 * 0.01 + 2 * 0.5, 100 * 0.04 + 10 * 0.5])
    # --jobs 2: at one thread (steps ×1.5 alone; populations of 5, 3, 1, 1 — each ask at most half of what is
    # left — at 43, 29, 15 and 15 ms), evaluations ×1.5, over 2 × 0.9
    assert jobs_s[:2] == pytest.approx([(2 * 100 * 0.015 + 2 * 0.5 * 1.5) / 1.8,
                                        (100 * (0.043 + 0.029 + 2 * 0.015) + 10 * 0.5 * 1.5) / 1.8])
    assert math.isnan(one_s[2]) and math.isnan(jobs_s[2])  # not a training: the table keeps its own price
    assert plan.price(works, solo, one, 16)[1] is None


def test_a_regularizers_population_pays_the_models_fixed_part_once_and_its_own_step_per_member():
    """The model (plain GAN) at every thread: 10 ms alone, 60 ms for 16 → 6.67 ms fixed + 3.33 ms a member.
    A regularizer whose solo step is 20 ms adds per-member work: 10 members cost 6.67 + 13.33 · 10 ms (the
    ring's gp at one thread: 15 ms for 10 members, where scaling its solo step as the plain GAN's said 11.7)."""
    m = plan.Affine(0.01, 0.06, 16)
    assert m.like(0.01, 10) == pytest.approx(m(10)) and m.like(0.02, 1) == pytest.approx(0.02)
    assert m.like(0.02, 10) == pytest.approx(0.02 / 3 + (0.02 - 0.02 / 3) * 10)
    assert m.like(0.004, 10) == pytest.approx(0.004)  # cheaper than the fixed part: nothing is per-member
    cfg = TrialConfig(steps=100)
    works = [Work("gp: confirmation", cfg, 10, queue="confirmation")]
    one_s, jobs_s = plan.price(works, [(0.02, 0.0)], {"gan": m}, 16, (2, {"gan": plan.Affine(0.015, 0.12, 16)}, 1.0),
                               jobs_cap=10, jobs_even=True)
    assert one_s == pytest.approx([100 * m.like(0.02, 10)])
    # --jobs 2, evenly: rounds of 5 and 5; at one thread the solo step is 1.5 × 20 ms, the fixed part 8 ms
    assert jobs_s == pytest.approx([2 * 100 * (0.008 + (0.03 - 0.008) * 5) / 2])


def test_a_study_plan_prices_its_confirmation_as_one_population_and_its_jobs_column(tmp_path, monkeypatch):
    """A real plan of a tiny ring study (timed probes, a timed start-up subprocess): the confirmation's 4
    seeds train as one population, a start-up row leads, and a measured 2-process layout prices a column."""
    from bench.spec import load

    path = tmp_path / "tiny.toml"
    path.write_text(study_toml("ring", name="tiny", regularizers=("none", "r1"), top="[search]\nper_arm = 1\n",
                               confirm="seeds = 4\nstages = 1"))
    spec = load(str(path))
    table = plan.study_plan(spec, "cpu", layout=(2, 1, 2000.0))
    assert table["work"].tolist() == [plan.STARTUP_WORK, "mlp2d_small/ns/none: search (1)", "mlp2d_small/ns/none: confirmation",
                                      "mlp2d_small/ns/r1: search (1)", "mlp2d_small/ns/r1: confirmation"]
    assert table["at once"].tolist() == [1, 1, 4, 1, 4] and table["note"][2] == "populations of 4"
    assert table["estimated s"][0] > 0 and (table["estimated s"] >= 0).all() and (table["with --jobs s"] >= 0).all()
    assert table["with --jobs s"][0] == pytest.approx(1.5 * table["estimated s"][0], abs=0.1)  # S + S/2
    assert set(table["--jobs layout"]) == {"2 processes × 1 thread"}
    monkeypatch.setattr(plan, "startup_seconds", lambda *a: 3.0)  # timed for real above
    alone = plan.study_plan(spec, "cpu", layout=(1, 2, None))
    assert (alone["with --jobs s"] == alone["estimated s"]).all()
    assert "with --jobs s" not in plan.study_plan(spec, "cpu")
    assert plan.study_plan(spec, "cpu", layout=(3, 1, None))["with --jobs s"].isna().all()  # not measured
    from bench.jobs import Layout
    from bench.storage import OWED_POPULATION_JOBS

    caps, real = [], plan.price
    monkeypatch.setattr(plan, "price", lambda *a: caps.append(a[5:7]) or real(*a))
    for measured in (1, 16, None):  # auto's measured population size prices the workers' rounds; else the default
        plan.study_plan(spec, "cpu", layout=Layout(2, 1, 2000.0, measured))
    # … and how they share a look: evenly only where a measured population beat solo runs (bench.rounds.even_split)
    assert caps == [(1, False), (16, True), (OWED_POPULATION_JOBS, False)]


def test_the_plan_of_the_work_that_ran_counts_each_arms_confirmed_seeds():
    """The sequential design adds looks where the answer stays open, so a run's work depends on its data:
    `confirmed` (arm → the seeds a run trained) replaces the first look for the arms it names, and the
    populations follow."""
    from bench.spec import load

    spec = load("mnist_reg")
    first = {w.what: w for w in plan.study_works(spec) if w.queue == "confirmation"}
    ran = plan.study_works(spec, {"gan/ns/r1": 20, "vae/l1": 10})
    conf = {w.what: w for w in ran if w.queue == "confirmation"}
    assert first["gan/ns/r1: confirmation"].count == 10 and "first look" in first["gan/ns/r1: confirmation"].note
    assert conf["gan/ns/r1: confirmation"].count == 20 and conf["vae/l1: confirmation"].count == 10
    assert conf["gan/ns/r1: confirmation"].note == "as the run confirmed (first look 10)"
    assert conf["gan/ns/none: confirmation"].count == 10 and "first look" in conf["gan/ns/none: confirmation"].note
    assert sum(w.count for w in ran) == sum(w.count for w in plan.study_works(spec)) + 10
    sizes = dict(zip([w.what for w in ran], plan.populations(ran, 16)))
    # the queue holds 5 arms' 10 seeds before r1's 20 (places 50–69); rounds of 16 cut it at 64: 14, then 6
    assert sizes["gan/ns/r1: confirmation"] == [14, 6]


def test_a_training_is_priced_for_each_evaluation_it_makes():
    """A confirmation run evaluates every eval_every steps as a search trial does (3,000 / 1,000: 3 times on
    mnist_reg), and only its last evaluation computes every metric: the mean evaluation of a training is
    (evals − 1) intermediate ones and one final (stabgen.train._loop; stabgen.metrics.evaluate)."""
    from bench.papers.plan import per_evaluation
    from bench.spec import load

    works = plan.study_works(load("mnist_reg"))
    assert {w.evals for w in works if w.config is not None} == {3}
    assert per_evaluation(1.0, 3.4, 3) == pytest.approx((2 * 1.0 + 3.4) / 3)
    assert per_evaluation(1.0, 3.4, 1) == 3.4 and per_evaluation(1.0, 3.4, 0) == 3.4  # a lone evaluation is final


def test_the_inception_scoring_is_priced_per_image_and_per_sample_set(monkeypatch):
    """TF-Inception is loaded once; each image costs a pass and each scored set one Fréchet distance of 2,048-d
    statistics (torch-fidelity's eigenvalues: 1.8 s on the 2-core CPU, unpriced before); mnist_reg scores its
    top 3 trials on 500 samples each."""
    from bench.papers import plan as paper_plan
    from bench.spec import load

    monkeypatch.setattr(paper_plan, "_inception_seconds", lambda *a: (2.0, 0.1, 1.5))
    row = [w for w in plan.study_works(load("mnist_reg")) if w.inception][0]
    assert (row.inception, row.inception_sets) == (3 * 500, 3)
    table = paper_plan.estimate([row, Work("again", None, 0, inception=10, inception_sets=2)], "cpu")
    assert table["estimated s"].tolist() == pytest.approx([2.0 + 1500 * 0.1 + 3 * 1.5, 10 * 0.1 + 2 * 1.5])


def test_a_probe_is_settled_when_its_two_fastest_runs_agree():
    from bench.papers.plan import settled

    assert settled([1.3, 1.0, 1.04]) and settled([2.0, 2.0])
    assert not settled([1.0, 1.06, 1.07]) and not settled([1.0]) and not settled([])
    assert settled([1.0, 1.06], tol=0.1)


def test_a_step_probe_times_a_window_inside_each_run_until_two_agree(monkeypatch):
    """Each probe run times its steps WARMUP_STEPS + 1 … WARMUP_STEPS + probe from inside (a fake clock:
    building the run and its first steps cost a lot and vary, and never enter the price); runs repeat at
    least REPEATS times and until the two fastest windows agree; never more than max_repeats."""
    import types

    import stabgen.train
    from bench.papers import plan as pp

    per_step = iter([2.0, 1.3, 1.6, 1.0, 1.04, 9.0])  # seconds per timed step, run after run: settled at the 5th
    clock = {"t": 0.0, "runs": 0}

    def fake_train(cfgs, source, device, on_step=None, **kw):
        clock["runs"] += 1
        clock["t"] += 100.0 * clock["runs"]  # building and data: never in the price
        rate = next(per_step)
        for it in range(1, cfgs[0].steps + 1):
            clock["t"] += 50.0 if it <= pp.WARMUP_STEPS else rate  # slow first steps, outside the window
            on_step(it)

    monkeypatch.setattr(stabgen.train, "train_population", fake_train)
    monkeypatch.setattr(pp, "time", types.SimpleNamespace(perf_counter=lambda: clock["t"]))
    cfg = TrialConfig(dataset="ring", model="mlp2d_small", steps=10)
    assert pp._step_seconds(cfg, "cpu", None, probe=40) == pytest.approx(1.0)
    assert clock["runs"] == 5
    per_step, clock["runs"] = iter([1.1 ** i for i in range(10)]), 0  # never settled: stops at max_repeats
    assert pp._step_seconds(cfg, "cpu", None, probe=40, max_repeats=5) == pytest.approx(1.0)
    assert clock["runs"] == 5


def test_busy_elsewhere_is_the_other_processes_share_of_the_cpus(monkeypatch):
    """By hand: 10 s on 2 CPUs, 15 CPU-seconds busy in all, 5 of them this process's → 10 / 20 = 0.5 by
    others; then a real busy loop in another process keeps at least most of one core of the machine's."""
    import subprocess
    import sys
    import time

    from stabgen import hardware

    counters = iter([(0.0, 100.0, 10.0, 2), (10.0, 115.0, 15.0, 2)])
    with monkeypatch.context() as m:
        m.setattr(hardware, "_cpu_counters", lambda: next(counters))
        with hardware.BusyElsewhere() as b:
            pass
    assert b.share == pytest.approx(0.5)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        with hardware.BusyElsewhere() as b:
            time.sleep(1.5)
    finally:
        busy.kill()
        busy.wait()
    cpus = hardware._cpu_counters()[3]
    assert 0.8 / cpus <= b.share <= 1.0


def test_the_plan_says_when_other_processes_kept_the_cpus_busy_while_it_timed():
    import pandas as pd

    from bench.papers.plan import BUSY_ATTR, total_line

    table = pd.DataFrame({"trainings": [2], "steps each": [100], "Inception images": [0], "estimated s": [60.0]})
    assert "Other processes" not in total_line(table, "a CPU")
    table.attrs[BUSY_ATTR] = 0.05
    assert "Other processes" not in total_line(table, "a CPU")
    table.attrs[BUSY_ATTR] = 0.45
    assert "Other processes used 45% of the CPUs while it timed" in total_line(table, "a CPU")
