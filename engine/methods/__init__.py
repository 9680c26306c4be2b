"""The method registry. Adding a method: one module here + one import line below."""
from engine.methods.base import METHODS, Method  # noqa: F401
from engine.methods import lora  # noqa: F401  (registers "lora")
from engine.methods import qlora  # noqa: F401
from engine.methods import lora8bit  # noqa: F401
from engine.methods import adalora  # noqa: F401
from engine.methods import loha  # noqa: F401
from engine.methods import lokr  # noqa: F401
from engine.methods import ia3  # noqa: F401
from engine.methods import prompt_tuning  # noqa: F401
from engine.methods import p_tuning  # noqa: F401
from engine.methods import prefix_tuning  # noqa: F401
from engine.methods import p_tuning_v2  # noqa: F401
from engine.methods import adapter  # noqa: F401
from engine.methods import bitfit  # noqa: F401
from engine.methods import freeze  # noqa: F401
from engine.methods import layerwise  # noqa: F401
from engine.methods import full  # noqa: F401
