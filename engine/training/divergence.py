"""Is the run diverging? Watched row by row while it trains, so the page says so before the run ends.

A diverging run is reported as done like any other, with a loss several times where it started: prefix tuning on
alpaca data went 1.97 -> 3.21 (step 9) -> 11.28 (step 13, gradient norm 104 before clipping) and stayed near 8
(issue 27). The watch sees the logged training loss and gradient norm of each step and says, once:
- the loss is not a number (nan / inf), or
- the loss stayed above RISE x its starting value (the mean of the first START_ROWS logged losses) on SUSTAINED
  logged rows in a row,
with the gradient norm of that step and, when it spiked (SPIKE x the median of the earlier ones), that too.
What to change comes with it: the learning rate (a quarter of it) or a warm-up.

Written here by hand: transformers stops on nothing but nan/inf (and only with a flag); this is a report, it does
not stop the run.
"""
from __future__ import annotations

import math
from statistics import median

from engine.core.messages import Message

START_ROWS = 3  # logged losses averaged as the starting value
RISE = 1.5  # a loss this many times the start ...
SUSTAINED = 2  # ... on this many logged rows in a row is divergence, not a noisy batch
SPIKE = 20.0  # a gradient norm this many times the median of the earlier ones is an explosion


class DivergenceWatch:
    """Feed it every logged training row (`see`); it returns the warning once, when the run starts diverging."""

    def __init__(self):
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self.above = 0  # logged rows in a row above RISE x the start
        self.warned = False

    @property
    def start(self) -> float | None:
        return sum(self.losses[:START_ROWS]) / START_ROWS if len(self.losses) >= START_ROWS else None

    def see(self, step: int, loss: float, grad_norm: float | None = None,
            learning_rate: float | None = None) -> Message | None:
        if self.warned or loss is None:
            return None
        spiked = self._grad_spike(grad_norm)
        if not math.isfinite(loss):
            return self._warn("run.loss_not_finite", step=step, loss=str(loss), **self._advice(learning_rate))
        start = self.start
        self.losses.append(loss)
        if start is None or start <= 0:
            return None
        self.above = self.above + 1 if loss > RISE * start else 0
        if self.above < SUSTAINED:
            return None
        found = dict(start=f"{start:.3f}", loss=f"{loss:.3f}", step=step, **self._advice(learning_rate))
        if spiked:
            return self._warn("run.diverging_spike", grad_norm=f"{grad_norm:.3g}", **found)
        return self._warn("run.diverging", **found)

    def _grad_spike(self, grad_norm: float | None) -> bool:
        if grad_norm is None or not math.isfinite(grad_norm):
            return grad_norm is not None
        earlier = list(self.grad_norms)
        self.grad_norms.append(grad_norm)
        return len(earlier) >= START_ROWS and grad_norm > SPIKE * max(median(earlier), 1e-12)

    @staticmethod
    def _advice(learning_rate: float | None) -> dict:
        lr = learning_rate or 0.0
        return {"learning_rate": f"{lr:.2g}", "lower": f"{lr / 4:.2g}"}

    def _warn(self, code: str, **params) -> Message:
        self.warned = True
        return Message(code, **params)
