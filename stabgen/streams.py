"""Per-member random streams that do not depend on who else is in the population.

A population trains K trials in one pass; each member must draw exactly the numbers it would draw
alone, or a member could not be compared with (or re-run as) a solo trial. K torch.Generators would
cost K kernel launches per draw; instead every draw is counter-based: value = SplitMix64(key(seed,
draw number) + γ·(index + 1)), computed for all members in one set of elementwise ops, on any device.

SplitMix64 (Steele, Lea & Flood 2014) needs 64-bit multiplication modulo 2⁶⁴; torch's int64 multiply
wraps on every backend we run on, and tests/stabgen/test_population.py checks it against Python integers.
Right shifts are masked to make them logical. Each 64-bit value gives two 24-bit uniforms
((b + ½) / 2²⁴ ∈ (0, 1)); normals come from Box–Muller on such a pair.
The draw counter is a device tensor incremented in place, not a Python int: a step captured as a CUDA
graph (stabgen.graphs) replays the increment, so every replay draws new numbers.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

GOLDEN = 0x9E3779B97F4A7C15
_C1, _C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_M24 = 0xFFFFFF


def _signed(c: int) -> int:
    """A 64-bit constant as the int64 torch stores (two's complement)."""
    return c - (1 << 64) if c >= 1 << 63 else c


def _shr(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 bits."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's output function (a bijection on 64-bit words), on int64 tensors."""
    x = (x ^ _shr(x, 30)) * _signed(_C1)
    x = (x ^ _shr(x, 27)) * _signed(_C2)
    return x ^ _shr(x, 31)


class Streams:
    """K independent streams; each call draws the next block of every member's stream.

    Members execute the same sequence of draws (they run the same step), so draw number d of member
    k is a function of (seeds[k], d) alone — the same in a population of 1 or of 256.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        s = torch.tensor([_signed(int(v) % (1 << 64)) for v in seeds], dtype=torch.int64, device=device)
        self.keys = splitmix64(splitmix64(s) + _signed(GOLDEN))  # (K,)
        self.counter = torch.zeros((), dtype=torch.int64, device=device)  # draws so far

    @property
    def draws(self) -> int:
        """Draws so far (reads the device counter: a host sync, for tests and checks only)."""
        return int(self.counter)

    @property
    def k(self) -> int:
        return self.keys.shape[0]

    def words(self, n: int) -> torch.Tensor:
        """(K, n) int64: the next n 64-bit words of every member's stream."""
        self.counter += 1  # in place (see the module docstring); int64 products wrap like the mod 2⁶⁴ of SplitMix64
        key = splitmix64(self.keys + self.counter * _signed(GOLDEN))[:, None]
        idx = torch.arange(1, n + 1, dtype=torch.int64, device=self.keys.device)[None, :]
        return splitmix64(key + idx * _signed(GOLDEN))

    def _uniform_pairs(self, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.words(n)
        scale = 1.0 / (1 << 24)
        return (((_shr(w, 40) & _M24).to(dtype) + 0.5) * scale, (((w >> 8) & _M24).to(dtype) + 0.5) * scale)

    def uniform(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(K, *shape) in the open interval (0, 1)."""
        return self._uniform_pairs(math.prod(shape), dtype)[0].reshape(self.k, *shape)

    def normal(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(K, *shape) standard normal (Box–Muller on the two uniforms of one word)."""
        u1, u2 = self._uniform_pairs(math.prod(shape), dtype)
        return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2 * math.pi) * u2)).reshape(self.k, *shape)

    def integers(self, high: int, shape: Sequence[int]) -> torch.Tensor:
        """(K, *shape) int64 uniform on [0, high) (modulo bias < high / 2⁶³, negligible)."""
        return _shr(self.words(math.prod(shape)), 1).reshape(self.k, *shape) % high
