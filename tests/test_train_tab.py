"""The Train tab's settings: every training key is on the page, advanced fields reach the config,
earlier runs are picked by id, and Preview command shows what Start would run (the UI process,
real handlers, no torch)."""
from __future__ import annotations

import yaml

from engine.core.config import RunConfig
from ui import train_tab
from ui.train_tab import SETTINGS, build_raw, on_preview


def page_values(**changed) -> list:
    """The controls' values as the page sends them: the preset's, with some changed."""
    defaults = RunConfig.load(train_tab.PRESET)
    values = []
    for section, param in SETTINGS:
        value = getattr(getattr(defaults, section), param.name)
        values.append(changed.get(param.name, value))
    return values


def raw_config(**changed) -> tuple[dict, list]:
    return build_raw("smollm2-135m-instruct", "presets/data/identity.jsonl", "auto", "", "assistant", False,
                     "tab", "lora", page_values(**changed), {"r": 8})


def fake_run(workspace, name: str, metrics: str = "", **status):
    """A run folder as a trainer leaves it: its config, its status and its metrics lines (JSON, one a line)."""
    from engine.core import runs

    run = workspace / "runs" / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(RunConfig().to_dict()))
    runs.update_status(run, created_at=1.0, **status)
    if metrics:
        (run / "metrics.jsonl").write_text(metrics)
    return run


def test_every_training_and_distillation_key_is_a_control():
    shown = {(section, p.name) for section, p in SETTINGS}
    config = RunConfig().to_dict()
    missing = [f"{s}.{k}" for s in ("train", "distill") for k in config[s] if (s, k) not in shown]
    assert not missing, missing
    assert {("data", "replay"), ("data", "replay_fraction"), ("data", "validation_split")} <= shown


def test_advanced_settings_reach_the_config(workspace):
    run = workspace / "runs" / "task-a"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(RunConfig().to_dict()))
    raw, problems = raw_config(start_from="task-a", ewc_lambda=1000.0, replay="task-a", replay_fraction=0.25,
                               teacher="some/hub-model", alpha=0.7, temperature=3.0, weight_decay=0.05,
                               num_processes=2, packing=False)
    assert not problems
    cfg = RunConfig.from_dict(raw)
    assert cfg.train.start_from == str(run.resolve()) and cfg.data.replay == str(run.resolve())  # id -> folder
    assert (cfg.distill.teacher, cfg.distill.alpha, cfg.distill.temperature) == ("some/hub-model", 0.7, 3.0)
    assert (cfg.train.ewc_lambda, cfg.train.weight_decay, cfg.train.num_processes) == (1000.0, 0.05, 2)
    assert cfg.data.replay_fraction == 0.25 and cfg.train.packing is False
    # empty free-text fields mean "off", not a missing value
    raw, problems = raw_config(start_from="", teacher="  ")
    assert not problems and raw["train"]["start_from"] == "" and raw["distill"]["teacher"] == ""


def preview(**changed):
    """Preview command as the page calls it: the real method controls, each at its shown value."""
    import gradio as gr

    with gr.Blocks():
        controls = train_tab.params.build("lora", {})
    method_values = [control.value for control in controls.inputs]
    return on_preview(controls, "smollm2-135m-instruct", "presets/data/identity.jsonl", "auto", "", "assistant",
                      False, "tab", "lora", "en", *page_values(**changed), *method_values)


def test_preview_command_shows_the_accelerate_launch_for_two_processes(workspace):
    code, message = preview(num_processes=2)
    assert message == "" and code["visible"]
    assert "accelerate" in code["value"] and "--num_processes 2" in code["value"]
    assert "-m engine train presets/quickstart.yaml" in code["value"] and "RUN_DIR" not in code["value"]
    assert "--set train.num_processes=2" in code["value"]
    code, _ = preview()
    assert "accelerate" not in code["value"] and "-m engine train" in code["value"]
    code, message = preview(batch_size=0, learning_rate=-1.0)
    assert not code["visible"] and "batch_size" in message and "learning_rate" in message


# ---- one declaration per setting (engine/core/config.py) -----------------------------------------------
def test_every_control_is_drawn_from_the_schema():
    import gradio as gr

    from engine.core.config import schema_param

    with gr.Blocks():
        c = train_tab.build(RunConfig())
    assert len(c.train_inputs) == len(SETTINGS)
    for (section, param), control in zip(SETTINGS, c.train_inputs):
        declared = schema_param(section, param.name)
        assert param is declared, f"{section}.{param.name} is declared again in the UI"
        assert control.label == declared.title and control.info == declared.help, declared.name
        assert control.value == declared.default or control.value == str(declared.default), declared.name
        if declared.choices is not None:
            assert [value for _, value in control.choices] == list(declared.choices), declared.name
        if isinstance(control, (gr.Number, gr.Slider)):
            assert (control.minimum, control.maximum) == (declared.min, declared.max), declared.name


def test_switching_method_on_the_page_follows_the_command_lines_rule():
    import gradio as gr

    from ui.train_tab import on_method_change

    with gr.Blocks():
        c = train_tab.build(RunConfig())
    index = [p.name for _, p in SETTINGS].index("learning_rate")
    batch = [p.name for _, p in SETTINGS].index("batch_size")
    values = page_values()
    out = on_method_change(c, "lora", "full", "en", *values)
    updates = out[len(c.method_controls.groups):len(c.method_controls.groups) + len(SETTINGS)]
    assert updates[index]["value"] == 5e-5  # lora's starting rate was untouched: full's applies
    assert all(u == gr.skip() for i, u in enumerate(updates) if i != index)
    assert out[-2] == "full" and "learning rate 0.001 → 5e-05" in out[-1]
    shown = out[:len(c.method_controls.groups)]
    assert [u["visible"] for u in shown] == [key == "full" for key in c.method_controls.groups]

    # a rate the user typed stays; so does every other setting
    out = on_method_change(c, "lora", "full", "zh", *page_values(learning_rate=2e-4, batch_size=2))
    updates = out[len(c.method_controls.groups):len(c.method_controls.groups) + len(SETTINGS)]
    assert updates[index] == gr.skip() and updates[batch] == gr.skip() and out[-1] == ""
    out = on_method_change(c, "lora", "ia3", "zh", *values)
    assert "已切换到" in out[-1] and "学习率 0.001 → 0.01" in out[-1]


def test_buttons_follow_the_runs_state_also_after_a_reload(workspace):
    """Stop only while a run runs; Resume only where a checkpoint exists and the run does not run; Delete only
    when nothing uses the folder. A reload is a first tick with nothing seen yet."""
    import os

    from ui.train_tab import tick

    def make(name, checkpoint=False, **status):
        run = fake_run(workspace, name, **status)
        if checkpoint:
            (run / "checkpoints" / "checkpoint-3").mkdir(parents=True)
            (run / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text("{}")
        return name

    def buttons(run_id):
        view = tick(run_id, {})  # a fresh page: nothing seen yet
        return view.stop["interactive"], view.resume["interactive"], view.delete["interactive"]

    alive = os.getpid()  # a live process stands in for the trainer
    assert buttons(make("failed-early", state="failed", error="killed")) == (False, False, True)
    assert buttons(make("failed-later", checkpoint=True, state="failed", error="killed")) == (False, True, True)
    # a resumed run still running (the status of its stop before it was resumed must not enable Resume)
    assert buttons(make("resumed", checkpoint=True, state="running", pid=alive, stopped_early=True)) == \
        (True, False, False)
    assert buttons(make("stopped", checkpoint=True, state="done", stopped_early=True)) == (False, True, True)
    assert buttons(make("finished", checkpoint=True, state="done", stopped_early=False)) == (False, False, True)
    assert buttons(make("queued", state="queued", pid=alive)) == (True, False, False)
    assert buttons(make("stopping", checkpoint=True, state="stopping", pid=alive)) == (False, False, False)


def test_a_tick_names_what_it_changes_and_re_sends_nothing_twice(workspace):
    """The timer's update is a RunView by field name: the first tick of a run fills its view, the next with
    nothing new leaves every field gr.skip(), and the fields map one to one onto the tab's components."""
    from dataclasses import fields
    from types import SimpleNamespace

    import gradio as gr

    from ui.follow import RunView
    from ui.train_tab import tick

    fake_run(workspace, "followed", '{"step": 1, "loss": 2.5, "learning_rate": 0.001}\n', state="done", step=3,
             max_steps=3)

    first = tick("followed", {})
    assert "3/3" in first.progress and first.log is not None and first.failure == ""
    assert first.choices["choices"] == ["followed"] and first.loss_plot is not None
    again = tick("followed", first.seen)
    assert [f.name for f in fields(again) if getattr(again, f.name) != gr.skip()] == ["seen"]

    tab = SimpleNamespace(**{name: object() for name in RunView.component_names()})
    outputs = first.outputs(tab)
    assert len(outputs) == len(fields(RunView)) and outputs[tab.follow] is first.choices
    assert outputs[tab.stop] == first.stop and outputs[tab.seen] is first.seen


def test_the_timer_slows_while_no_run_is_active_and_the_tick_carries_grpos_view(workspace):
    """Each tick is an event the whole page handles (bench/results/page_idle_cpu.md): with no run active the Train
    tab's timer asks every IDLE_TICK_S, with one active every TICK_S, and the interval is sent only when it changes.
    GRPO's rewards and sampled answers come with the same tick (no timer of their own), and again when more
    answers are written after their metrics row."""
    import os

    import gradio as gr

    from engine.core import runs
    from ui.train_tab import IDLE_TICK_S, TICK_S, tick

    assert TICK_S < IDLE_TICK_S
    run = fake_run(workspace, "grpo", '{"step": 1, "loss": 0.1, "reward": 0.5, "rewards/exact/mean": 0.5}\n',
                   state="done", step=1, max_steps=2)

    idle = tick("grpo", {})
    assert isinstance(idle.timer, gr.Timer) and idle.timer.value == IDLE_TICK_S
    assert idle.grpo_rewards["visible"] is True and idle.grpo_samples["visible"] is True
    assert len(idle.grpo_samples["value"]) == 0  # no answers written yet
    (run / "completions.jsonl").write_text('{"step": 1, "prompt": "2+2?", "completion": "4", "reward": 1.0}\n')
    more = tick("grpo", idle.seen)  # nothing else changed: only the answers' table and its plots are sent again
    assert more.timer == gr.skip() and list(more.grpo_samples["value"].iloc[0])[:3] == [1, "2+2?", "4"]

    runs.update_status(run, state="running", pid=os.getpid())  # a live process stands in for the trainer
    active = tick("grpo", more.seen)
    assert isinstance(active.timer, gr.Timer) and active.timer.value == TICK_S
    assert tick("grpo", active.seen).timer == gr.skip()


def test_the_evaluate_and_sweep_timers_tick_only_while_their_tab_is_shown():
    """On the built page the Evaluate and Sweep timers start off (the page opens on Data), and showing a tab
    turns its own timer on and the other one off; the Train tab's timer starts on."""
    from ui.app import build_ui

    demo = build_ui()
    config = demo.get_config_file()
    by_id = {c["id"]: c for c in config["components"]}
    timers = {c["id"]: c["props"]["active"] for c in config["components"] if c["type"] == "timer"}
    tabs = {c["props"].get("elem_id"): c["id"] for c in config["components"] if c["type"] == "tabitem"}
    switches = {}
    for dep in config["dependencies"]:
        outputs = [o for o in dep["outputs"] if by_id[o]["type"] == "timer"]
        if outputs and any(t[1] == "select" and t[0] in tabs.values() for t in dep["targets"]):
            tab = next(t[0] for t in dep["targets"])
            switches[next(k for k, v in tabs.items() if v == tab)] = (dep["id"], outputs)
    assert set(switches) == {"tab-data", "tab-train", "tab-chat", "tab-eval", "tab-compare", "tab-export",
                             "tab-sweep"}
    gated = switches["tab-eval"][1]
    assert len(gated) == 2 and not any(timers[t] for t in gated)  # Evaluate's and Sweep's: off at first
    assert [t for t, active in timers.items() if t not in gated and active]  # the Train tab's: on

    def own_timer(name):  # the timer whose ticks run the same update as showing the tab
        for dep in config["dependencies"]:
            targets = {tuple(t) for t in dep["targets"]}
            if (tabs[name], "select") in targets:
                ticking = [t for t, event in targets if event == "tick" and t in timers]
                if ticking:
                    return ticking[0]
        return None

    for name in ("tab-eval", "tab-sweep", "tab-data", "tab-train"):
        dep_id, outputs = switches[name]
        on = [timer for timer, update in zip(outputs, demo.fns[dep_id].fn()) if update.active]
        assert on == ([own_timer(name)] if name in ("tab-eval", "tab-sweep") else []), name
