"""What experiment trackers read, written while trials train.

- **Optuna's own view** (optuna-dashboard, `optuna.visualization`): the study's metric names
  (`Study.set_metric_names`, set when the spec is recorded) and each trial's headline metrics as flat
  user attributes `metric/<name>` (numbers, so the dashboard lists and sorts them; the nested
  `metrics` attribute stays the record).
- **TensorBoard** (`--tensorboard`): per trial, TRIAL_DIR/tensorboard gets the config as text when the
  trial starts, `train/<loss>` scalars at every log step and `eval/<metric>` at every evaluation *as
  they happen* (tensorboard --logdir runs/STUDY/trials follows a running study), then the samples as an
  image and the hyperparameters with the final metrics (TensorBoard's HParams view) when it ends.
W&B and MLflow users can attach Optuna's callbacks (optuna-integration) to the same study; they are
not wrapped here, so there is nothing of theirs to keep tested.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from stabgen.trial import TrialConfig, TrialResult

METRIC_ATTR = "metric/"


def flat_metrics(final: dict) -> dict[str, float]:
    """The final metrics that are finite numbers, as flat `metric/<name>` attributes."""
    return {f"{METRIC_ATTR}{k}": float(v) for k, v in final.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class TensorBoard:
    """One SummaryWriter per running trial, keyed by trial number."""

    def __init__(self) -> None:
        from bench.records import tensorboard_writer_class

        self.writer_class = tensorboard_writer_class()  # a missing tensorboard package fails in one line
        self.writers: dict[int, object] = {}

    def start(self, number: int, trial_dir: Path, cfg: TrialConfig) -> None:
        w = self.writer_class(log_dir=str(trial_dir / "tensorboard"))
        w.add_text("config", "    " + json.dumps(cfg.to_dict(), indent=2).replace("\n", "\n    "))
        w.flush()
        self.writers[number] = w

    def on_log(self, numbers: list[int]):
        """trainer's on_log for the members `numbers` (trial numbers in member order)."""
        def log(step: int, values: dict[str, list[float]], active: list[bool]) -> None:
            for m, number in enumerate(numbers):
                w = self.writers.get(number)
                if w is None or not active[m]:
                    continue
                for k, v in values.items():
                    if _finite(v[m]):
                        w.add_scalar(f"train/{k}", v[m], step)
                w.flush()  # readable while the trial runs
        return log

    def on_eval(self, number: int, step: int, metrics: dict) -> None:
        w = self.writers.get(number)
        if w is None:
            return
        for k, v in metrics.items():
            if k != "step" and _finite(v):
                w.add_scalar(f"eval/{k}", v, step)
        w.flush()

    def finish(self, number: int, result: TrialResult, samples_png: Path) -> None:
        """The trial's samples.png as an image (an image grid, or the 2D scatter), hyperparameters with the
        final metrics, then close."""
        w = self.writers.pop(number, None)
        if w is None:
            return
        if samples_png.exists():
            import numpy as np
            from PIL import Image

            with Image.open(samples_png) as im:
                w.add_image("samples", np.asarray(im.convert("RGB")), result.steps_done, dataformats="HWC")
        hparams = {k: v for k, v in result.config.to_dict().items() if isinstance(v, (int, float, str, bool))}
        final = {f"final/{k}": v for k, v in (result.final if result.status != "diverged" else {}).items()
                 if _finite(v)}
        w.add_hparams(hparams, {**final, "final/diverged": float(result.status == "diverged")},
                      run_name=".")  # beside the curves, not in a subfolder of its own
        w.close()

    def close(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers.clear()
