"""Learning-rate schedules: the factor each step's Adam learning rate is multiplied by.

A schedule maps training progress p = (step − 1) / steps ∈ [0, 1) to a multiplier, as a tensor op on
the population's device clock (so a replayed CUDA graph follows it). The definitions are those of
`torch.optim.lr_scheduler.LambdaLR` stepped once per generator step with the same lambda (tested
against it): step 1 trains at the full lr. `constant` is no schedule at all (the default); `linear`
decays to 0 at the end, the usual way to let a GAN's oscillations settle onto the modes before it is
sampled; `cosine` is the half-cosine decay (Loshchilov & Hutter 2017, without restarts).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from stabgen.registry import Registry

Schedule = Callable[[torch.Tensor], torch.Tensor]  # progress p (a tensor) → lr multiplier
SCHEDULES: Registry[Schedule | None] = Registry("lr schedule")

SCHEDULES.register("constant")(None)  # no multiplier: the optimizer runs exactly as without a schedule
SCHEDULES.register("linear")(lambda p: 1.0 - p)
SCHEDULES.register("cosine")(lambda p: 0.5 * (1.0 + torch.cos(math.pi * p)))
