"""The method registry. Adding a method: one module here + one import line below."""
from engine.methods.base import METHODS, Method  # noqa: F401
from engine.methods import lora  # noqa: F401  (registers "lora")
