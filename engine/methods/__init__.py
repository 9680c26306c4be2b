"""The method registry. Adding a method: one module here + its key in MODULES (the order the UI lists them)."""
import importlib

from engine.methods.base import METHODS, Method  # noqa: F401  (the registry and the type, for importers)

MODULES = ("lora", "qlora", "lora8bit", "adalora", "loha", "lokr", "ia3", "prompt_tuning", "p_tuning",
           "prefix_tuning", "p_tuning_v2", "adapter", "bitfit", "freeze", "layerwise", "full")
for _module in MODULES:
    importlib.import_module(f"engine.methods.{_module}")  # each module registers its method
