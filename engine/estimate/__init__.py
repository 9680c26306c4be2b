"""Peak training memory from the model's structure alone: the components (components.py), their sum over
the phases of a step (memory.py), and what that means for a device (options.py). Import-light."""
from engine.estimate.lengths import DataLengths
from engine.estimate.memory import (
    COMPONENTS,
    LABELS,
    Estimate,
    StructurePending,
    estimate,
    estimate_for_config,
    structure_for_config,
)
from engine.estimate.options import cheaper_options, ui_summary, verdict

__all__ = ["COMPONENTS", "LABELS", "DataLengths", "Estimate", "StructurePending", "structure_for_config", "estimate",
           "estimate_for_config", "cheaper_options", "ui_summary", "verdict"]
