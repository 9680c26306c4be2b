"""Which linear layers an adapter attaches to: one parser shared by every adapter method, resolved
against the model's own structure (engine/core/structure.py).

A target spec is
- `all-linear`: what peft's all-linear means, every nn.Linear / Conv1D except the output head, plus
  (for methods and settings peft supports them with) the fused expert tensors of a mixture of experts;
- `attention` / `mlp`: the linear layers of the attention / feed-forward blocks;
- a comma-separated list of module names as the model calls them (`q_proj,v_proj`, `query_key_value`,
  `mlp.c_proj`), matched as peft matches them: the full name, or its ending after a dot;
- a regular expression prefixed with `re:`, matched against full names such as
  `model.layers.3.self_attn.q_proj` (and `model.layers.3.mlp.experts.down_proj` for expert tensors).

The spec is resolved into explicit full names here, and those lists are what peft receives, so the
modules the count covers are by construction the modules peft adapts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.core.structure import ATTENTION, MLP, Linear, Structure

GROUPS = ("all-linear", ATTENTION, MLP)
SPEC_HELP = ("Layers that get an adapter: all-linear, attention, mlp, names as the model calls them "
             "(q_proj,v_proj; query_key_value), or re:<regex> on full names.")


def syntax_problems(spec: str) -> list[str]:
    """What is wrong with a spec whatever the model (the Param check; the model's names come later)."""
    spec = str(spec).strip()
    if not spec:
        return ["empty: use all-linear, attention, mlp, module names like q_proj,v_proj or re:<regex>"]
    if spec.startswith("re:"):
        try:
            re.compile(spec[3:])
        except re.error as err:
            return [f"regex {spec[3:]!r} does not compile: {err}"]
    return []


def names(spec: str) -> list[str]:
    return [n.strip() for n in str(spec).split(",") if n.strip()]


def _matches(full: str, token: str) -> bool:
    return full == token or full.endswith("." + token)


def select(spec: str, structure: Structure) -> list[tuple[str, Linear]]:
    """(full name, linear) of every linear layer or expert tensor the spec selects on this model."""
    spec = str(spec).strip()
    everything = structure.linears()
    if spec.startswith("re:"):
        pattern = re.compile(spec[3:])
        return [(n, lin) for n, lin in everything if pattern.fullmatch(n)]
    if spec == "all-linear":
        return everything
    if spec in (ATTENTION, MLP):
        return [(n, lin) for n, lin in everything if lin.block == spec]
    tokens = names(spec)
    return [(n, lin) for n, lin in everything if any(_matches(n, t) for t in tokens)]


def problems(spec: str, structure: Structure, method_title: str, experts_ok: bool = False) -> list[str]:
    """The spec against the model's real module names: unknown names are listed with the real ones."""
    found = syntax_problems(spec)
    if found:
        return found
    spec = str(spec).strip()
    available = ", ".join(structure.linear_names())
    if not (spec.startswith("re:") or spec in GROUPS):
        everything = [n for n, _ in structure.linears()]
        unknown = [t for t in names(spec) if not any(_matches(n, t) for n in everything)]
        if unknown:
            return [f"{', '.join(unknown)}: no such linear layer in this {structure.model_type} model; its linear "
                    f"layers are {available}"]
    chosen = select(spec, structure)
    if not chosen:
        return [f"{spec!r} selects no linear layer of this {structure.model_type} model; its linear layers are "
                f"{available}"]
    if not experts_ok and all(lin.experts for _, lin in chosen):
        return [f"{spec!r} selects only routed expert tensors, which {method_title} cannot adapt here (peft adapts "
                "fused expert tensors with LoRA only, without dropout or DoRA)"]
    return []


@dataclass
class Targets:
    """A spec resolved for peft: module names (target_modules), expert tensors (target_parameters), and the
    expert tensors left out because the method or its settings cannot adapt them."""

    modules: list[tuple[str, Linear]] = field(default_factory=list)
    parameters: list[tuple[str, Linear]] = field(default_factory=list)
    skipped: list[tuple[str, Linear]] = field(default_factory=list)

    @property
    def all(self) -> list[tuple[str, Linear]]:
        return self.modules + self.parameters

    def module_names(self) -> list[str]:
        return [n for n, _ in self.modules]

    def parameter_names(self) -> list[str]:
        return [n for n, _ in self.parameters]


def resolve(spec: str, structure: Structure, experts_ok: bool) -> Targets:
    targets = Targets()
    for name, lin in select(spec, structure):
        if not lin.experts:
            targets.modules.append((name, lin))
        elif experts_ok:
            targets.parameters.append((name, lin))
        else:
            targets.skipped.append((name, lin))
    return targets


def skipped_note(targets: Targets, structure: Structure, why: str) -> list[str]:
    """The panel's and the log's line about routed experts that stay unadapted."""
    if not targets.skipped:
        return []
    kinds = ", ".join(dict.fromkeys(lin.name for _, lin in targets.skipped))
    return [f"the routed experts ({kinds}, {structure.experts} experts per layer) are not adapted: {why}"]
