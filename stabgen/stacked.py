"""K copies of one network as stacked tensors, run in one pass, and Adam with per-member settings.

`Stacked` holds every parameter and buffer of K identically-shaped ModuleDicts as one (K, …) tensor
and applies a network with torch.func: vmap over functional_call, so K small matmuls become one
batched matmul and K convolutions one grouped convolution. Each network's parameters are one
autograd leaf of shape (K, P): the loss of member k depends only on row k, so the gradient of the
summed per-member losses is every member's own gradient — and penalties on input gradients (R1,
GP) stay plain autograd.grad.
Buffers (batch-norm statistics, spectral-norm vectors) are updated in place, per member.
For K = 1 the network runs once on slice 0 without vmap: the same arithmetic, none of its overhead.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
import torch.nn as nn
from torch.func import functional_call, vmap


class _Method(nn.Module):
    """Calls one method of the wrapped module, so functional_call can run features() or decode()."""

    def __init__(self, target: nn.Module, method: str) -> None:
        super().__init__()
        self.target, self.method = target, method

    def forward(self, *args: torch.Tensor):
        return getattr(self.target, self.method)(*args)


class Stacked:
    """Stacked parameters and buffers of K members built from the same architecture.

    Each network's parameters live in one (K, P) leaf tensor (`flat[net]`, member-major), and every
    named parameter is a (K, …) view into it: the optimizer, gradient norms, clipping and masking
    are a few ops on one tensor, whatever the number of layers."""

    def __init__(self, members: Sequence[nn.ModuleDict]) -> None:
        self.k = len(members)
        self.template = copy.deepcopy(members[0])
        self.flat: dict[str, torch.Tensor] = {}
        self.params: dict[str, torch.Tensor] = {}  # "generator.hidden.weight" → (K, …) view
        for net in self.template:
            named = [[p for _, p in m[net].named_parameters()] for m in members]
            if not named[0]:
                continue
            flat = torch.stack([torch.cat([p.detach().flatten() for p in ps]) for ps in named])
            self.flat[net] = flat.requires_grad_(True)
            offset = 0
            for name, p in self.template[net].named_parameters():
                self.params[f"{net}.{name}"] = flat[:, offset:offset + p.numel()].view(self.k, *p.shape)
                offset += p.numel()
        self.buffers = {name: torch.stack([m.get_buffer(name) for m in members]).clone()
                        for name, _ in self.template.named_buffers()}
        # the tensors the forwards consume, per parameter: gradients are taken there (see grads)
        self._used: dict[str, torch.Tensor] = dict(self.params)
        self._live = self._bind_member_zero() if self.k == 1 else None
        self._fns: dict[tuple[str, str], Callable[..., torch.Tensor]] = {}

    def _bind_member_zero(self) -> nn.ModuleDict:
        """A copy of the template whose parameters and buffers *are* views of member 0's slices, so a
        population of one runs its modules directly (no functional_call, no vmap)."""
        live = copy.deepcopy(self.template)
        for full, view in list(self.params.items()) + list(self.buffers.items()):
            owner, _, attr = full.rpartition(".")
            module = live.get_submodule(owner)
            store = module._parameters if attr in module._parameters else module._buffers
            del store[attr]
            one = view[0]
            if store is module._buffers:
                module.register_buffer(attr, one)
            else:
                self._used[full] = one
                setattr(module, attr, one)
        return live

    def grads(self, loss: torch.Tensor, nets: Sequence[str]) -> list[torch.Tensor]:
        """d loss / d flat[net] for each net, (K, P). Taken at the views the forwards consumed and
        joined: differentiating through the slicing would build a zero-filled (K, P) tensor per
        parameter. (Views of flat must be the ones in the graph: after an in-place optimizer step,
        autograd re-derives every view's grad_fn from flat directly.)"""
        names = [[n for n in self.params if n.startswith(net + ".")] for net in nets]
        used = [self._used[n] for group in names for n in group]
        flat = iter(torch.autograd.grad(loss, used, materialize_grads=True))
        return [torch.cat([next(flat).reshape(self.k, -1) for _ in group], 1) for group in names]

    def weights(self, net: str) -> list[torch.Tensor]:
        """A network's weight tensors (≥ 2 dims per member; biases and norm scales excluded), (K, …)."""
        return [self._used[name].reshape(self.k, *p.shape[1:]) for name, p in self.params.items()
                if name.startswith(net + ".") and p.dim() >= 3]

    def fn(self, net: str, method: str = "forward") -> Callable[..., torch.Tensor]:
        """net.method applied by every member to its own inputs: args (K, B, …) → (K, B, …)."""
        key = (net, method)
        if key not in self._fns:
            self._fns[key] = self._make_fn(net, method)
        return self._fns[key]

    def _make_fn(self, net: str, method: str) -> Callable[..., torch.Tensor]:
        if self._live is not None:
            bound = getattr(self._live[net], method)

            def call_one(*args: torch.Tensor):
                out = bound(*(a[0] for a in args))
                return tuple(o.unsqueeze(0) for o in out) if isinstance(out, tuple) else out.unsqueeze(0)
            return call_one
        module = _Method(self.template[net], method)
        prefix = net + "."
        params = {"target." + k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}
        buffers = {"target." + k[len(prefix):]: v for k, v in self.buffers.items() if k.startswith(prefix)}
        batched = vmap(lambda p, b, *args: functional_call(module, (p, b), args))

        def call_many(*args: torch.Tensor):
            return batched(params, buffers, *args)
        return call_many

    def train(self, mode: bool = True) -> None:
        self.template.train(mode)
        if self._live is not None:
            self._live.train(mode)

    @torch.no_grad()
    def member(self, k: int) -> nn.ModuleDict:
        """Member k as an ordinary ModuleDict (a copy), for sampling, saving and metrics."""
        out = copy.deepcopy(self.template)
        out.load_state_dict({n: v[k] for n, v in (self.params | self.buffers).items()})
        return out

    @torch.no_grad()
    def finite(self) -> torch.Tensor:
        """(K,) True where every parameter of the member is finite."""
        return torch.stack([torch.isfinite(f).all(1) for f in self.flat.values()]).all(0)


def member_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """(K,) L2 norm over all of each member's slices (e.g. its gradient norm)."""
    return torch.sqrt(sum(t.pow(2).flatten(1).sum(1) for t in tensors))


class Adam:
    """Adam (Kingma & Ba 2015) on (K, P) parameter tensors, with lr, β1, β2 per member (K,).

    The arithmetic is torch.optim.Adam's (bias-corrected step size, ε added after the square root),
    checked against it in tests. `step(grads, mask)` updates only the members where mask is True:
    a diverged or pruned member keeps its last parameters and moments, untouched by the others."""

    def __init__(self, params: Sequence[torch.Tensor], lr: torch.Tensor, beta1: torch.Tensor,
                 beta2: torch.Tensor, eps: float = 1e-8) -> None:
        self.params = list(params)
        self.lr, self.eps = lr[:, None], eps
        self.beta1, self.beta2 = beta1[:, None], beta2[:, None]
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = torch.zeros_like(self.lr)  # steps taken, per member

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor], mask: torch.Tensor, scale: torch.Tensor | None = None) -> None:
        """`scale`: this step's learning-rate multiplier (a () tensor from stabgen.schedules), or None."""
        keep = mask[:, None]
        self.t += keep
        t = self.t.clamp(min=1)
        c1 = (1 - self.beta1) * keep  # a masked member gets coefficients that leave it as it is
        b2 = torch.where(keep, self.beta2, 1.0)
        c2 = (1 - self.beta2) * keep
        lr = self.lr if scale is None else self.lr * scale.to(self.lr.dtype)
        neg_step = -lr / (1 - self.beta1 ** t) * keep
        bc2_sqrt = torch.sqrt(1 - self.beta2 ** t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            g = torch.where(keep, g, 0.0)  # a frozen member's gradient may be NaN; NaN · 0 is not 0
            m.lerp_(g, c1)
            v.mul_(b2).addcmul_(g * c2, g)
            denom = v.sqrt().div_(bc2_sqrt).add_(self.eps)
            p.addcdiv_(m * neg_step, denom)
