"""TensorBoard events are written while a trial trains, not after it: a reader sees them mid-run."""

from __future__ import annotations

import pytest

from stabgen.train import train
from stabgen.trial import TrialConfig

pytest.importorskip("tensorboard", reason="tensorboard is in the test extra")


def test_tensorboard_scalars_are_readable_while_the_trial_trains(tmp_path, tiny_images):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bench.trackers import TensorBoard

    tb = TensorBoard()
    cfg = TrialConfig(steps=30, batch_size=8, log_every=5, eval_every=10)
    tb.start(7, tmp_path, cfg)
    seen = {}

    def read() -> EventAccumulator:
        acc = EventAccumulator(str(tmp_path / "tensorboard"))
        acc.Reload()
        return acc

    def on_step(step: int) -> None:
        if step == 21:  # mid-run: what a `tensorboard --logdir` open now would show
            acc = read()
            seen["train"] = [e.step for e in acc.Scalars("train/loss_d")]
            seen["eval"] = [e.step for e in acc.Scalars("eval/score")]
            seen["config"] = "config" in acc.Tags()["tensors"] or "config/text_summary" in acc.Tags()["tensors"]

    res = train(cfg, tiny_images, evaluate=lambda sample, final: {"score": float(sample(8).float().mean())},
                on_eval=lambda step, m: tb.on_eval(7, step, m) or False, on_step=on_step, on_log=tb.on_log([7]))
    assert seen == {"train": [5, 10, 15, 20], "eval": [10, 20], "config": True}
    (tmp_path / "samples.png").write_bytes(_png())  # what records.write_trial_dir writes beside the events
    tb.finish(7, res, tmp_path / "samples.png")
    acc = read()
    assert [e.step for e in acc.Scalars("train/loss_d")] == [5, 10, 15, 20, 25, 30]
    assert [e.value for e in acc.Scalars("train/loss_d")] == pytest.approx([r["loss_d"] for r in res.history])
    assert "samples" in acc.Tags()["images"]
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")
    assert acc.Scalars("final/score")[0].value == pytest.approx(res.final["score"])
    assert tb.writers == {}  # closed


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_flat_metrics_keep_finite_numbers_only():
    from bench.trackers import flat_metrics

    assert flat_metrics({"fid": 3.5, "classes": 10, "kl": float("nan"), "extractor": "classifier", "ok": True}) == \
        {"metric/fid": 3.5, "metric/classes": 10.0}
