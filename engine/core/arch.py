"""A pure description of a decoder-only model, read from its `config.json` alone.

The estimator and the methods' parameter counts work from this, so nothing here loads weights
or imports torch. Llama-style decoders (llama, mistral, qwen2/3, gemma-like MLPs) are covered:
per layer, attention q/k/v/o projections, a gated MLP (gate/up/down) and two norms.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Arch:
    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tie_embeddings: bool
    max_positions: int
    attention_bias: bool = False
    mlp_bias: bool = False
    checkpoint_dtype_bytes: int = 2  # bytes per weight in the saved files (config.json "dtype"; most are bf16)

    @classmethod
    def from_config(cls, cfg: dict) -> "Arch":
        missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size") if k not in cfg]
        if missing:
            raise ValueError(f"config.json lacks {', '.join(missing)}; is this a decoder-only language model?")
        heads = cfg["num_attention_heads"]
        hidden = cfg["hidden_size"]
        return cls(
            model_type=cfg.get("model_type", "llama"),
            hidden=hidden,
            intermediate=cfg.get("intermediate_size", 4 * hidden),
            layers=cfg["num_hidden_layers"],
            heads=heads,
            kv_heads=cfg.get("num_key_value_heads") or heads,
            head_dim=cfg.get("head_dim") or hidden // heads,
            vocab=cfg["vocab_size"],
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            max_positions=cfg.get("max_position_embeddings", 2048),
            attention_bias=bool(cfg.get("attention_bias", cfg.get("model_type") == "qwen2")),
            mlp_bias=bool(cfg.get("mlp_bias", False)),
            checkpoint_dtype_bytes=4 if str(cfg.get("dtype") or cfg.get("torch_dtype")) == "float32" else 2,
        )

    @classmethod
    def from_folder(cls, folder: str | Path) -> "Arch":
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: a model folder needs its config.json")
        return cls.from_config(json.loads(path.read_text()))

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer inside one decoder layer."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {
            "q_proj": (self.hidden, q), "k_proj": (self.hidden, kv), "v_proj": (self.hidden, kv),
            "o_proj": (q, self.hidden),
            "gate_proj": (self.hidden, self.intermediate), "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }

    def has_bias(self, name: str) -> bool:
        if name in ("q_proj", "k_proj", "v_proj"):
            return self.attention_bias
        if name == "o_proj":
            return self.attention_bias and self.model_type != "qwen2"
        return self.mlp_bias

    def layer_linear_params(self) -> int:
        return sum(i * o + (o if self.has_bias(n) else 0) for n, (i, o) in self.linear_shapes().items())

    def layer_params(self) -> int:
        return self.layer_linear_params() + 2 * self.hidden  # + input and post-attention RMSNorm

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def total_params(self) -> int:
        head = 0 if self.tie_embeddings else self.embedding_params
        return self.embedding_params + self.layers * self.layer_params() + self.hidden + head
