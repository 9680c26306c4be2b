"""What LoHa and LoKr (peft's LyCORIS tuners) share: the layers they can adapt and the checks on them.

peft's LyCORIS tuners adapt torch's Linear / Conv1d / Conv2d only: neither transformers' Conv1D (GPT-2)
nor fused expert tensors.
"""
from __future__ import annotations

from engine.core.structure import Structure
from engine.methods import targets

NO_EXPERTS = "peft's {title} cannot adapt fused expert tensors (only LoRA can, through target_parameters)"


def chosen(structure: Structure, params: dict) -> targets.Targets:
    return targets.resolve(params["target_modules"], structure, experts_ok=False)


def problems_for(title: str):
    def problems(params: dict, train, structure: Structure | None, steps: int | None) -> list[str]:
        if structure is None:
            return []
        found = [f"method.target_modules: {p}" for p in targets.problems(params["target_modules"], structure, title)]
        conv = [name for name, lin in chosen(structure, params).modules if lin.conv1d] if not found else []
        if conv:
            found.append(f"method.target_modules: peft's {title} cannot adapt transformers' Conv1D layers, which this "
                         f"{structure.model_type} model uses ({conv[0]}, ...); use LoRA, AdaLoRA or IA3 on it")
        return found
    return problems


def hooks(title: str) -> dict:
    """The Method fields LoHa and LoKr fill the same way."""
    return dict(problems=problems_for(title),
                adapted=lambda structure, params: chosen(structure, params).module_names(),
                notes=lambda structure, params: targets.skipped_note(chosen(structure, params), structure,
                                                                     NO_EXPERTS.format(title=title)))
