"""Which linear layers an adapter attaches to: one parser shared by every adapter method.

A target spec is `all-linear`, `attention`, `mlp`, a comma-separated list of module names
(`q_proj,v_proj`) or a regular expression prefixed with `re:` matched against full module
names such as `model.layers.3.self_attn.q_proj`.
"""
from __future__ import annotations

import re

from engine.core.arch import ATTENTION, MLP, Arch

GROUPS = {"all-linear": ATTENTION + MLP, "attention": ATTENTION, "mlp": MLP}


def full_names(arch: Arch) -> list[str]:
    """Full module names of every targetable linear layer of a Llama-style model."""
    names = []
    for layer in range(arch.layers):
        names += [f"model.layers.{layer}.self_attn.{n}" for n in ATTENTION]
        names += [f"model.layers.{layer}.mlp.{n}" for n in MLP]
    return names


def problems(spec: str) -> list[str]:
    spec = spec.strip()
    if not spec:
        return ["empty: use all-linear, attention, mlp, names like q_proj,v_proj or re:<regex>"]
    if spec.startswith("re:"):
        try:
            re.compile(spec[3:])
        except re.error as err:
            return [f"regex {spec[3:]!r} does not compile: {err}"]
        return []
    if spec in GROUPS:
        return []
    unknown = [n for n in _names(spec) if n not in ATTENTION + MLP]
    if unknown:
        return [f"unknown module name(s) {', '.join(unknown)}; "
                f"this model family has {', '.join(ATTENTION + MLP)}"]
    return []


def _names(spec: str) -> list[str]:
    return [n.strip() for n in spec.split(",") if n.strip()]


def for_peft(spec: str) -> str | list[str]:
    """The `target_modules` value peft expects for this spec."""
    spec = spec.strip()
    if spec.startswith("re:"):
        return spec[3:]  # peft treats a str as a full-match regex
    if spec in GROUPS:
        return list(GROUPS[spec])
    return _names(spec)


def matched(spec: str, arch: Arch) -> list[str]:
    """Full names of the modules a spec selects on `arch` (same rule peft applies)."""
    spec = spec.strip()
    if spec.startswith("re:"):
        pattern = re.compile(spec[3:])
        return [n for n in full_names(arch) if pattern.fullmatch(n)]
    wanted = set(GROUPS.get(spec, _names(spec)))
    return [n for n in full_names(arch) if n.rsplit(".", 1)[1] in wanted]


def shape(name: str, arch: Arch) -> tuple[int, int]:
    return arch.linear_shapes()[name.rsplit(".", 1)[1]]
