"""Every choice of every method parameter runs at least once: the ones the per-method tests
(tests/test_methods.py: defaults, TEST_PARAMS, LORA_VARIANTS, E2E) do not reach run here, on the tiny model,
through the same contract (the loss falls; exactly the parameters the method claims change; the count is the
pure count; the result reloads). A checker sees any registered choice that no test runs."""
from __future__ import annotations

import pytest
from families import build_family, drive
from test_methods import (  # noqa: F401
    E2E,
    LORA_VARIANTS,
    TEST_PARAMS,
    batches,
    check_method,
    home,
    load_applied,
    model_for,
    resolved,
    snapshot,
    tiny_qwen,
    training_args,
)

from engine.core.describe import structure_of
from engine.methods import METHODS

# (method, the parameters that differ from the defaults): the choices nothing else runs, a few per run
CHOICE_RUNS = [
    ("adapter", {"style": "pfeiffer", "non_linearity": "gelu"}),
    ("adapter", {"non_linearity": "silu"}),
    ("adapter", {"style": "pfeiffer", "non_linearity": "tanh"}),
    ("p_tuning", {"encoder": "LSTM", "encoder_num_layers": 1}),
    ("qlora", {"quant_type": "fp4", "bias": "all", "init": "gaussian"}),
    ("qlora", {"bias": "lora_only"}),
    ("prompt_tuning", {"init": "random"}),
    ("p_tuning_v2", {"init": "random"}),
    ("lora", {"bias": "lora_only", "init": "gaussian"}),
    ("lora8bit", {"bias": "all", "init": "gaussian"}),
    ("lora8bit", {"bias": "lora_only"}),
    ("bitfit", {"biases": "attention"}),
    ("bitfit", {"biases": "mlp"}),  # on the Llama-style tiny model: zero MLP biases added (its config's switch)
    ("bitfit", {"biases": "norm"}),  # on a GPT-NeoX-style tiny model: its LayerNorms have biases
]
# the model a choice needs, where the per-method one (tests/test_methods.py model_for) lacks what it trains
CHOICE_MODELS = {("bitfit", "mlp"): "llama", ("bitfit", "norm"): "gpt_neox"}
# run by their own tests below
OWN_TESTS = {("layerwise", "schedule", "epoch"), ("qlora", "compute_dtype", "bf16"),
             ("qlora", "compute_dtype", "fp16"), ("qlora", "compute_dtype", "auto")}


def run_choices(runs: list[tuple[str, dict]]) -> set[tuple[str, str, object]]:
    """(method, parameter, value) of every choice parameter the given runs use (defaults filled in)."""
    used = set()
    for key, params in runs:
        full = {**{p.name: p.default for p in METHODS.get(key).params}, **params}
        used |= {(key, p.name, full[p.name]) for p in METHODS.get(key).params if p.choices}
    return used


def missing_choices(runs: list[tuple[str, dict]], extra: set) -> list[tuple[str, str, object]]:
    registered = {(key, p.name, c) for key, m in METHODS.items() for p in m.params for c in (p.choices or ())}
    return sorted(registered - run_choices(runs) - extra, key=str)


def all_runs() -> list[tuple[str, dict]]:
    """Every method configuration a test trains: each method's defaults (and TEST_PARAMS), the LoRA variants,
    the end-to-end runs and the runs here."""
    runs = [(key, TEST_PARAMS.get(key, {})) for key in METHODS]
    runs += [("lora", variant) for variant in LORA_VARIANTS.values()]
    runs += [(key, {**TEST_PARAMS.get(key, {}), **method_over}) for key, (method_over, _, _) in E2E.items()]
    return runs + [(key, {**TEST_PARAMS.get(key, {}), **params}) for key, params in CHOICE_RUNS]


def test_every_choice_of_every_method_parameter_is_run():
    assert missing_choices(all_runs(), OWN_TESTS) == []


def test_the_choice_checker_sees_a_choice_nobody_runs():
    without_lstm = [run for run in all_runs() if run[1].get("encoder") != "LSTM"]
    assert missing_choices(without_lstm, OWN_TESTS) == [("p_tuning", "encoder", "LSTM")]


@pytest.mark.parametrize("key,params", CHOICE_RUNS,
                         ids=[f"{k}-{'-'.join(map(str, p.values()))}" for k, p in CHOICE_RUNS])
def test_choice_trains_exactly_its_parameters_and_reloads(key, params, batches, tiny_model, tiny_qwen,  # noqa: F811
                                                          tmp_path):
    family = CHOICE_MODELS.get((key, params.get("biases")))
    model = tiny_model if family == "llama" else str(build_family(family, tiny_model)) if family else \
        model_for(key, tiny_model, tiny_qwen)
    check_method(key, resolved(key, params), model, batches["alpaca"], tmp_path)


def test_pfeiffer_adapters_sit_after_the_feed_forward_block_only(tiny_model):
    """Houlsby adds an adapter after attention and after the feed-forward block; Pfeiffer only the second:
    half the parameters, and none in the attention block."""
    arch = structure_of(tiny_model)
    adapter = METHODS.get("adapter")
    houlsby = adapter.count_trainable(arch, resolved("adapter"))
    pfeiffer = adapter.count_trainable(arch, resolved("adapter", {"style": "pfeiffer"}))
    assert 2 * pfeiffer == houlsby
    model = load_applied("adapter", resolved("adapter", {"style": "pfeiffer"}), tiny_model)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and not any("self_attn" in name for name in trainable), trainable[:4]


def test_p_tuning_with_an_lstm_encoder_builds_an_lstm(tiny_model):
    import torch

    model = load_applied("p_tuning", resolved("p_tuning", {"encoder": "LSTM"}), tiny_model)
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    assert len(lstms) == 1 and lstms[0].bidirectional and all(p.requires_grad for p in lstms[0].parameters())


def test_qlora_fp4_stores_fp4_weights(tiny_model):
    model = load_applied("qlora", resolved("qlora", {"quant_type": "fp4"}), tiny_model)
    kinds = {p.quant_state.quant_type for p in model.parameters() if getattr(p, "quant_state", None) is not None}
    assert kinds == {"fp4"}


@pytest.mark.parametrize("compute", ["auto", "bf16", "fp16"])
def test_qlora_compute_dtypes_run_a_step(compute, batches, tiny_model):  # noqa: F811
    """The 4-bit layers' matrix products in each compute dtype: two steps change exactly the LoRA weights."""
    import torch

    params = resolved("qlora", {"compute_dtype": compute})
    torch.manual_seed(0)
    model = load_applied("qlora", params, tiny_model)
    before = snapshot(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = drive(model, optimizer, [], training_args(1e-2), batches["alpaca"], steps=2)
    assert all(loss == loss for loss in losses), losses
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora_" in k for k in changed), sorted(changed)[:4]


def test_layerwise_epoch_schedule_unfreezes_one_more_layer_each_epoch(batches, tiny_model):  # noqa: F811
    """schedule: epoch. Epoch 1 trains the top layer and the final norm; epoch 2 the next layer down too
    (the tiny model has two layers). One step per epoch; after each, exactly those parameters changed."""
    from types import SimpleNamespace

    import torch

    params = resolved("layerwise", {"schedule": "epoch"})
    method, arch = METHODS.get("layerwise"), structure_of(tiny_model)
    torch.manual_seed(0)
    model = load_applied("layerwise", params, tiny_model)
    args = training_args(2e-3)
    optimizer = method.optimizer(model, params, args, arch)
    (callback,) = method.callbacks(model, params, arch)
    state = SimpleNamespace(global_step=0, max_steps=2, epoch=0.0)
    callback.on_train_begin(args, state, None)
    layers = arch.layers_prefix
    changed_by_epoch = []
    for epoch in range(2):
        state.epoch = float(epoch)
        callback.on_epoch_begin(args, state, None)
        callback.on_step_begin(args, state, None)  # the steps schedule's hook: a no-op under schedule epoch
        before = snapshot(model)
        model.train()
        model(**batches["alpaca"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state.global_step += 1
        after = model.state_dict()
        changed_by_epoch.append({k for k in before if not torch.equal(before[k], after[k])})
    first, second = changed_by_epoch
    assert first and all(f"{layers}.1." in k or k.endswith("norm.weight") and f"{layers}." not in k for k in first), \
        sorted(first)
    assert any(f"{layers}.0." in k for k in second) and all(f"{layers}.0." not in k for k in first)
    assert {k for k in second if f"{layers}.0." not in k} == first  # the top layer and the norm train on
