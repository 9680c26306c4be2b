"""What a model is made of, as plain data: its decoder layers, their linear layers (names, shapes,
biases, which block and role), norms, embeddings, heads and experts.

The description is read from the model itself (built on the meta device from its config, no weights:
engine/core/describe.py) and cached as JSON keyed by the content of its config.json, so the estimate,
every method's parameter count and validation, and the UI's module choices all work from one
description without importing torch. This module is pure: data, JSON and file look-ups only.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.core.messages import Message

FORMAT = 1  # bump when the description changes shape: older cached files are then ignored

ATTENTION, MLP = "attention", "mlp"


@dataclass(frozen=True)
class Linear:
    """A linear map the methods can adapt: an nn.Linear / Conv1D module, or a fused tensor of experts."""

    name: str  # inside a decoder layer ("self_attn.q_proj"), or the full name outside the layers
    inputs: int
    outputs: int
    bias: bool
    block: str  # ATTENTION or MLP ("" outside the decoder layers)
    role: str  # "in": reads the block's input; "out": writes back to the residual stream
    experts: int = 0  # > 0: a 3-D parameter holding this many experts' matrices (peft: target_parameters)
    conv1d: bool = False  # transformers' Conv1D (GPT-2): a linear layer whose weight is stored transposed

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def weights(self) -> int:
        return max(self.experts, 1) * self.inputs * self.outputs


@dataclass(frozen=True)
class LayerKind:
    """One kind of decoder layer (most models have a single kind)."""

    params: dict[str, int]  # parameter name inside the layer -> number of elements
    linears: tuple[Linear, ...]
    norms: tuple[str, ...]  # norm modules inside the layer
    attention: str  # the attention module inside the layer
    mlp: str  # the feed-forward module ("" when its linears sit in the layer itself, as in OPT)
    # where a bottleneck adapter reads the sublayer's output: {"attention": module, "mlp": module}
    adapter_points: dict[str, str] = field(default_factory=dict)

    @property
    def linear_weights(self) -> int:
        return sum(lin.weights for lin in self.linears)

    @property
    def total(self) -> int:
        return sum(self.params.values())

    def of(self, block: str, role: str | None = None) -> list[Linear]:
        return [lin for lin in self.linears if lin.block == block and (role is None or lin.role == role)]


@dataclass(frozen=True)
class Structure:
    model_type: str
    architecture: str
    layers_prefix: str  # "model.layers": decoder layer i is f"{layers_prefix}.{i}"
    kinds: tuple[LayerKind, ...]
    layer_kind: tuple[int, ...]  # per decoder layer: its index into kinds
    outside: dict[str, int]  # parameters outside the decoder layers (a tied head is listed once, as the embedding)
    outside_linears: tuple[Linear, ...]  # linear layers outside the decoder layers (never the output head)
    outside_norms: tuple[str, ...]  # norm modules outside the layers (the final norm)
    embedding: str  # the input embedding's weight
    head: str  # the output head module ("lm_head")
    lm_head: str  # the output head's weight; "" when tied to the embedding
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    prefix_width: int  # width of one layer's prefix keys (or values) as peft sizes them; 0: peft cannot
    prompt_width: int  # width of a virtual token's embedding as peft sizes it
    experts: int = 0
    experts_per_token: int = 0
    # config key -> linear layers (inside a layer) that get a bias when the key is set True
    bias_switches: dict[str, tuple[str, ...]] = field(default_factory=dict)
    checkpoint_dtype_bytes: int = 2
    unmappable: str = ""  # why the methods cannot be mapped onto this model ("" when they can)
    key: str = ""  # the cache key it was made for

    # ---- shape ----------------------------------------------------------------------------------
    @property
    def layers(self) -> int:
        return len(self.layer_kind)

    @property
    def first(self) -> LayerKind:
        return self.kinds[0]

    def kind(self, layer: int) -> LayerKind:
        return self.kinds[self.layer_kind[layer]]

    def layer_name(self, layer: int, name: str = "") -> str:
        return f"{self.layers_prefix}.{layer}" + (f".{name}" if name else "")

    @property
    def tie_embeddings(self) -> bool:
        return not self.lm_head

    @property
    def embedding_params(self) -> int:
        return self.outside[self.embedding]

    @property
    def total_params(self) -> int:
        return sum(self.outside.values()) + sum(self.kind(i).total for i in range(self.layers))

    @property
    def intermediate(self) -> int:
        """Width inside the feed-forward block (per expert for MoE): the input of its output projection."""
        outs = [lin.inputs for lin in self.first.of(MLP, "out")]
        return max(outs) if outs else self.hidden

    def linears(self) -> list[tuple[str, Linear]]:
        """(full name, linear) of every adaptable linear: the decoder layers' and the ones outside."""
        found = [(self.layer_name(i, lin.name), lin) for i in range(self.layers) for lin in self.kind(i).linears]
        return found + [(lin.name, lin) for lin in self.outside_linears]

    def linear_weights(self) -> int:
        """Weights held in linear layers (what 4/8-bit quantisation stores compressed; experts excluded)."""
        return sum(lin.weights for _, lin in self.linears() if not lin.experts)

    def largest_linear(self) -> int:
        return max((lin.inputs * lin.outputs for _, lin in self.linears()), default=self.hidden * self.hidden)

    def param_sizes(self) -> dict[str, int]:
        """Full name -> numel of every parameter, as `model.named_parameters()` lists them."""
        sizes = {}
        for i in range(self.layers):
            sizes.update({self.layer_name(i, n): size for n, size in self.kind(i).params.items()})
        sizes.update(self.outside)
        return sizes

    # ---- names, for validation messages and the UI ---------------------------------------------------
    def linear_names(self) -> list[str]:
        """The short names of the linear layers (and expert tensors), in model order, once each."""
        return list(dict.fromkeys(lin.short for _, lin in self.linears()))

    def layer_module_names(self) -> list[str]:
        """Names of the modules inside a decoder layer a user can pick (blocks, norms, linears)."""
        names = []
        for kind in self.kinds:
            names += [kind.attention, kind.mlp, *kind.norms, *(lin.name for lin in kind.linears)]
        return [n for n in dict.fromkeys(names) if n]

    def summary(self) -> str:
        experts = Message("structure.experts", experts=self.experts, per_token=self.experts_per_token) \
            if self.experts else ""
        return Message("structure.summary", architecture=self.architecture, layers=self.layers, hidden=self.hidden,
                       linear=", ".join(self.linear_names()), experts=experts)

    # ---- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Structure:
        raw = json.loads(text)
        if raw.pop("format", None) != FORMAT:
            raise ValueError("structure description of an older format")
        kinds = tuple(LayerKind(**{**k, "linears": tuple(Linear(**lin) for lin in k["linears"]),
                                   "norms": tuple(k["norms"])}) for k in raw.pop("kinds"))
        return cls(kinds=kinds, layer_kind=tuple(raw.pop("layer_kind")),
                   outside_linears=tuple(Linear(**lin) for lin in raw.pop("outside_linears")),
                   outside_norms=tuple(raw.pop("outside_norms")),
                   bias_switches={k: tuple(v) for k, v in raw.pop("bias_switches").items()}, **raw)


def summarise(names: list[str], prefix: str) -> list[str]:
    """Full names -> short lines: the layer index folded into a range ("self_attn.q_proj in layers 0-29")."""
    by_name: dict[str, list[int]] = {}
    outside = []
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.(.+)$")
    for name in names:
        match = pattern.match(name)
        if match:
            by_name.setdefault(match.group(2), []).append(int(match.group(1)))
        else:
            outside.append(name)
    lines = []
    for inner, layers in by_name.items():
        layers = sorted(set(layers))
        span = f"{layers[0]}-{layers[-1]}" if layers == list(range(layers[0], layers[-1] + 1)) and len(layers) > 1 \
            else ",".join(map(str, layers))
        lines.append(f"{inner} (layer{'s' if len(layers) > 1 else ''} {span})")
    return lines + outside


# ---- the cache --------------------------------------------------------------------------------------
def config_key(config_text: str, transformers_version: str) -> str:
    """The cache key of a description: the config.json's content and the transformers that built it."""
    digest = hashlib.sha256(config_text.encode("utf-8")).hexdigest()[:24]
    return f"{digest}-t{transformers_version}-f{FORMAT}"


def installed_transformers() -> str:
    """transformers' version without importing it (the description depends on its modeling code)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transformers")
    except PackageNotFoundError:
        return "none"


def cache_dir() -> Path:
    """Where descriptions are cached: TUNELOOM_STRUCTURES (several workspaces, e.g. the tests, can share
    one: a description depends only on the config.json's content and transformers' version), else the
    workspace's cache."""
    from engine.core.workspace import subdir

    shared = os.environ.get("TUNELOOM_STRUCTURES")
    return Path(shared).expanduser() if shared else subdir("cache") / "structures"


def config_path(model: str) -> Path | None:
    from engine.core.workspace import resolve_model

    path = Path(resolve_model(model)) / "config.json"
    return path if path.is_file() else None


def key_for(model: str) -> str | None:
    path = config_path(model)
    if path is None:
        return None
    return config_key(path.read_text(encoding="utf-8"), installed_transformers())


def cached(model: str) -> Structure | None:
    """The cached description of `model`, or None when it has not been read yet (or config.json is missing)."""
    key = key_for(model)
    if key is None:
        return None
    path = cache_dir() / f"{key}.json"
    try:
        return Structure.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store(structure: Structure) -> Path:
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{structure.key}.json"
    tmp = path.with_suffix(f".{os.getpid()}.partial")  # one per process: two may store the same model at once
    tmp.write_text(structure.to_json(), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


class NotReadYet(LookupError):
    """A model's structure is still being read (in a child process): ask again in a moment."""
