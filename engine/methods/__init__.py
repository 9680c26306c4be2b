"""The method registry. Adding a method: one module here + one import line below."""
from engine.methods import (
    adalora,  # noqa: F401
    adapter,  # noqa: F401
    bitfit,  # noqa: F401
    freeze,  # noqa: F401
    full,  # noqa: F401
    ia3,  # noqa: F401
    layerwise,  # noqa: F401
    loha,  # noqa: F401
    lokr,  # noqa: F401
    lora,  # noqa: F401  (registers "lora")
    lora8bit,  # noqa: F401
    p_tuning,  # noqa: F401
    p_tuning_v2,  # noqa: F401
    prefix_tuning,  # noqa: F401
    prompt_tuning,  # noqa: F401
    qlora,  # noqa: F401
)
from engine.methods.base import METHODS, Method  # noqa: F401
