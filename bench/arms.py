"""What an arm is: the one home of the fair-comparison unit (docs/statistics.md).

An arm is a (model, objective, regularizer) triple by default — `[confirm] arm = "objective"` makes it
(model, objective), `"model"` the model alone — and it lives within one model family: its baseline is
the arm of *its own* model and objective with the baseline value (regularizer `none`, λ = 0), so a VAE
arm is never tested against a GAN baseline. Every arm, the baseline included, gets the same number of
search trials (bench.search queues them per arm; bench.strategies.ArmSampler samples within the arm),
so each arm's best config is a best-of-N with the same N.

Labels are the fields joined by "/" with a VAE's empty objective left out: "gan/ns/r1", "vae/l2".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping

from stabgen.models import MODELS

StudySpec = Any  # a bench.spec.StudySpec (which imports this module)

ARM_ATTR = "search_arm"  # user attr of a per-arm search trial: its arm's label
FIELDS = {"regularizer": ("model", "objective", "regularizer"), "objective": ("model", "objective"),
          "model": ("model",)}


@dataclass(frozen=True)
class Arm:
    kind: str  # what the arms compare: "regularizer", "objective" or "model"
    model: str
    objective: str = ""  # "" for a VAE (no GAN objective)
    regularizer: str = ""

    @property
    def family(self) -> str:
        return MODELS.get(self.model).family

    @property
    def label(self) -> str:
        return label_of({"model": self.model, "objective": self.objective, "regularizer": self.regularizer}, self.kind)

    def baseline(self, name: str) -> "Arm | None":
        """The arm this one is compared with: the same family (and model, objective) with the baseline value."""
        if self.kind == "model":
            if name not in MODELS or MODELS.get(name).family != self.family:
                return None
            return Arm("model", name)
        if self.kind == "objective":
            return Arm("objective", self.model, name) if self.family == "gan" else None
        return Arm("regularizer", self.model, self.objective, name)

    def fixed_params(self, spec: StudySpec) -> dict[str, Any]:
        """The Optuna parameters that pin a search trial to this arm (bench.space names them)."""
        sp = spec.space
        out: dict[str, Any] = {}
        if len(sp.models) > 1:
            out["model"] = self.model
        if self.family == "gan" and len(sp.objectives) > 1 and self.objective:
            out["objective"] = self.objective
        if self.regularizer:
            out[f"regularizer_{self.family}"] = self.regularizer
        return out


def _present(v: Any) -> bool:
    return v is not None and v == v and v != ""  # v == v: not NaN (a VAE's objective in a frame)


def label_of(row: Mapping[str, Any], kind: str) -> str:
    """A trial row's (or config's) arm label under `kind`."""
    return "/".join(str(row[f]) for f in FIELDS[kind] if _present(row.get(f)))


def arms(spec: StudySpec) -> list[Arm]:
    """Every arm of a spec's space, in the space's order (models, then objectives, then regularizers)."""
    kind, sp = spec.confirm.arm, spec.space
    out = []
    for model in sp.models:
        family = MODELS.get(model).family
        objectives = sp.objectives if family == "gan" else [""]
        if kind == "model":
            out.append(Arm(kind, model))
        elif kind == "objective":
            out += [Arm(kind, model, o) for o in objectives]
        else:
            out += [Arm(kind, model, o, r) for o, r in itertools.product(objectives, sp.regularizers_for(family))]
    return out


def baseline_label(label: str, spec: StudySpec) -> str | None:
    """The label of the baseline arm of the arm `label` (None: none in its family)."""
    for arm in arms(spec):
        if arm.label == label:
            b = arm.baseline(spec.confirm.baseline)
            return b.label if b is not None else None
    return None
