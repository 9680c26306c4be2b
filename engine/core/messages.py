"""Messages a user reads, each with a code and its parameters, so the page can word them in its language.

The engine keeps the English template of every code (CATALOGUE); the UI keeps the Chinese one
(ui/messages.py) and a test checks that every code has one with the same parameters. A `Message` is a
str (its English text), so code that prints, joins, compares or raises messages needs no change; what
crosses a process boundary (status.json, the CLI's JSON) carries `as_dict(...)`: {code, params, message}.
A parameter may itself be a Message (a reason inside a sentence) or a list of them (`joined`).
Import-light: nothing here imports anything but the standard library.
"""
from __future__ import annotations

CATALOGUE = {
    # ---- several messages in one line (`joined`) -----------------------------------------------------
    "joined": "{text}",
    # ---- data files (engine/data): what is wrong, then what to do ------------------------------------
    "data.where_field": "field '{field}'",
    "data.file_not_found": "file not found",
    "data.not_a_file": "not a file",
    "data.check_path": "check the path {path}",
    "data.unsupported_type": "unsupported file type {suffix}",
    "data.use_one_of": "use one of {choices}",
    "data.too_large": "the file is {size_mb:,.1f} MB, above the {limit_mb:,.0f} MB limit",
    "data.too_large_hint": "split it into smaller files, or raise the limit (environment variable {env}={needed_mb})",
    "data.empty_file": "the file is empty (0 bytes)",
    "data.add_example": "add at least one example",
    "data.wrong_kind": "this is {what}, not {kind} text",
    "magic.zip": "a ZIP archive (an Excel .xlsx, a .docx or a zipped dataset)",
    "magic.zip_todo": "unzip it, or export the sheet as CSV",
    "magic.png": "a PNG image",
    "magic.jpeg": "a JPEG image",
    "magic.upload_data": "upload the data file itself",
    "magic.pdf": "a PDF document",
    "magic.pdf_todo": "export the data as JSONL or CSV",
    "magic.gzip": "a gzip-compressed file",
    "magic.gzip_todo": "decompress it first (gunzip)",
    "magic.parquet": "a Parquet file",
    "magic.parquet_todo": "rename it to .parquet",
    "magic.sqlite": "an SQLite database",
    "magic.sqlite_todo": "export the table as CSV or JSONL",
    "magic.office": "an old Excel/Word file (.xls/.doc)",
    "magic.office_todo": "export the sheet as CSV",
    "data.utf16": "the file is UTF-16 encoded",
    "data.save_utf8": "save it as UTF-8 (most editors offer this under 'Save as' / 'Encoding')",
    "data.save_file_utf8": "save the file as UTF-8 (most editors offer this under 'Save as' / 'Encoding')",
    "data.binary": "this looks like a binary file, not {kind} text",
    "data.export_utf8": "export the data as UTF-8 text (JSONL, JSON or CSV)",
    "data.no_rows": "no examples found (the file holds no rows)",
    "data.bad_utf8": "byte 0x{byte:02x} at column {column} is not valid UTF-8",
    "data.not_object_line": "expected a JSON object, got {got}",
    "data.one_object_per_line": "each line must be one {{...}} object",
    "data.invalid_json": "invalid JSON at column {column}: {detail}",
    "data.fix_line": "fix this line, or turn on 'skip bad rows' (--skip-bad-rows) to drop it",
    "data.fix_json": "fix the JSON syntax there",
    "data.fix_json_jsonl": "fix the JSON syntax there (if this is one object per line, name the file .jsonl)",
    "data.only_whitespace": "the file holds only whitespace",
    "data.not_list": "expected a list of examples, got {got}",
    "data.list_hint": "the file should hold [ {{...}}, {{...}} ]",
    "data.not_object": "expected an object, got {got}",
    "data.object_hint": "each example must be a {{...}} object",
    "data.no_header": "no header row",
    "data.header_hint": "the first line must name the columns",
    "data.duplicate_columns": "duplicate column name(s): {columns}",
    "data.unique_columns": "give every column its own name",
    "data.csv_count": "{values} values for {columns} columns ({names})",
    "data.csv_quote": "quote values that contain commas, e.g. \"a, b\"",
    "data.bad_csv": "not valid CSV: {detail}",
    "data.csv_quoting": "check the quoting on this line",
    "data.bad_parquet": "not a readable Parquet file ({detail})",
    "data.reexport": "re-export the file",
    "data.unknown_format": "cannot tell the data format from the fields {fields}",
    "data.unknown_format_hint": "{did_you_mean}expected one of [{expected}]; rename the fields, map columns "
                                "(data.columns / the column mapping), or choose the format",
    "data.did_you_mean": "did you mean {pairs}? ",
    "data.fields_found": "{did_you_mean}fields found: {fields}",
    "data.or_skip": "or turn on 'skip bad rows'",
    "data.none_usable": "none of the {total} rows is usable",
    "data.first_problem": "the first problem: {problem}",
    # one field of one record (engine/data/formats.py)
    "field.missing": "missing",
    "field.needs": "every example needs '{field}'",
    "field.expected_text": "expected text, got {got}",
    "field.make_string": "make it a string",
    "field.empty_conversation": "the conversation is empty",
    "field.add_turns": "add at least one user and one assistant turn",
    "field.role_order": "role '{role}' out of order; expected '{expected}'",
    "field.turn_order": "turns must go system (optional), user, assistant, user, assistant, ...",
    "field.no_assistant": "no assistant turn",
    "field.add_answer": "add the answer the model should learn",
    "field.ends_with_user": "the conversation ends with a user turn",
    "field.end_with_answer": "end every conversation with the assistant's answer",
    "field.history_type": "expected a list of [question, answer] pairs, got {got}",
    "field.history_pair": "expected a [question, answer] pair of strings",
    "field.empty": "empty",
    "field.write_instruction": "write the instruction the model should follow",
    "field.turns_type": "expected a list of turns, got {got}",
    "field.turn_type": "expected an object with '{role_key}' and '{content_key}', got {got}",
    "field.missing_found": "missing (found: {found})",
    "field.unknown_role": "unknown role {role}",
    "field.use_role": "use one of: {choices}",
    "field.prompt_missing": "give the prompt as text or as a list of {{role, content}} messages (or put the whole "
                            "conversation in chosen and rejected)",
    "field.write_prompt": "write the prompt the answers reply to",
    "field.prompt_ends": "the prompt ends with a '{role}' turn",
    "field.prompt_end_user": "end the prompt with the user turn that chosen and rejected answer",
    "field.write_answer": "write the answer",
    "field.answer_type": "expected text or a list of messages, got {got}",
    "field.last_not_assistant": "the last message is not the assistant's",
    "field.end_it": "end it with the assistant's answer",
    "field.answer_messages": "{count} messages beside a prompt field",
    "field.only_answer": "give only the assistant's answer here (the prompt holds the conversation)",
    "field.prompt_or_conversations": "give a prompt field, or whole conversations in {fields}",
    "field.differs": "its conversation differs from {other}'s before the last answer",
    "field.share_turns": "both must share every turn but the last, or give the prompt separately",
    "field.same_as_chosen": "the same as chosen",
    "field.pair_differ": "a pair must differ: nothing can be learned from it",
    "field.label": "expected true or false, got {label}",
    "field.label_hint": "true: a desirable completion, false: an undesirable one",
    # tools, reasoning, media, detection (engine/data/turns.py, formats.py)
    "field.tool_arguments": "the tool call's arguments are not valid JSON ({detail})",
    "field.tool_arguments_type": "the tool call's arguments must be a JSON object, got {got}",
    "field.tool_arguments_hint": "write the arguments as a JSON object, e.g. {{\"city\": \"Paris\"}} (as a string in"
                                 " OpenAI files: \"{{\\\"city\\\": \\\"Paris\\\"}}\")",
    "field.tool_call_json": "the function call is not valid JSON ({detail})",
    "field.tool_call_type": "expected a tool call object, got {got}",
    "field.tool_call_name": "the tool call has no function name",
    "field.tool_call_hint": "write each call as {{\"name\": ..., \"arguments\": {{...}}}} (OpenAI: {{\"type\": \"fun"
                            "ction\", \"function\": {{\"name\": ..., \"arguments\": \"...\"}}}})",
    "field.tool_calls_type": "expected a list of tool calls, got {got}",
    "field.tools_json": "the tools list is not valid JSON ({detail})",
    "field.tools_type": "expected a list of function schemas, got {got}",
    "field.tool_schema": "a tool needs a function name",
    "field.tools_hint": "give tools as a list of {{\"type\": \"function\", \"function\": {{\"name\", \"description\""
                        ", \"parameters\"}}}} (or the flat {{name, description, parameters}})",
    "field.weight": "weight must be 0 or 1, got {value}",
    "field.weight_hint": "1 trains this assistant turn, 0 shows it to the model without training it",
    "field.content_hint": "give the content as text or as a list of {{\"type\": \"text\", \"text\": ...}} parts",
    "field.content_part": "a content part that is not text: {got}",
    "field.media_part": "a '{kind}' content part: images, audio and video cannot be trained by a text model",
    "field.tool_unanswered": "a tool turn that answers no tool call",
    "field.tool_unanswered_hint": "put each tool turn right after the assistant turn whose call it answers (one tool"
                                  " turn per call), or remove it",
    "field.tool_call_id": "tool_call_id {id} matches no open call of the assistant turn before it (its calls: {ids})",
    "field.tool_turn_order": "turns must go system (optional), user, assistant; an assistant turn that calls tools i"
                             "s followed by one tool turn per call, then an assistant turn",
    "field.label_boolean": "label must be true or false, got {label}",
    "field.preference_tools_hint": "give the prompt and the answers as system, user and assistant text turns",
    "field.preference_tools": "tool calls and tool turns are not supported in preference data",
    "data.media": "this data holds {what}: a text model cannot train on images, audio or video, and the app never tr"
                  "ains them as text",
    "data.media_hint": "remove the images/audios/videos fields and <image>/<audio>/<video> placeholders to train on "
                       "the text only; supported: alpaca, sharegpt (tools), OpenAI messages (tools, reasoning), prom"
                       "pt/completion, preference (DPO/KTO) and raw text",
    "data.also_fits": "read as {chosen}; the file also fits {others}: to read it that way choose the format {pick} ("
                      "data.format / --format)",
    # why an example is dropped (engine/data/masking.py, pairwise.py)
    "drop.no_answer_tokens": "no trainable answer tokens after rendering the chat template",
    "drop.answer_after_limit": "the answer starts after max_seq_len ({max_seq_len} tokens)",
    "drop.prompt_fills": "the prompt alone fills max_seq_len ({max_seq_len} tokens)",
    # ---- settings (engine/core/config.py, registry.py, preflight.py, security.py) --------------------
    "config.empty": "{field}: empty; enter a value",
    "config.columns": "{field}: {reason}",
    "config.column_pair": "column mapping {item}: write it as file_column=field, e.g. question=instruction",
    "config.bool": "{field}: expected true or false, got {value}",
    "config.whole": "{field}: expected a whole number, got {value}",
    "config.number": "{field}: expected a number, got {value}",
    "config.choice": "{field}: {value} is not one of {choices}",
    "config.below_min": "{field}: {value} is below the minimum {min:g}",
    "config.above_max": "{field}: {value} is above the maximum {max:g}",
    "config.unknown_param": "{field}: unknown parameter (known: {known})",
    "config.unknown_key": "{field}: unknown key (known: {known})",
    "config.unknown_method": "{field}: unknown method {name}; choose one of: {known}",
    "config.epochs": "{field}: must be above 0 when max_steps is 0",
    "config.learning_rate": "{field}: {value} must be above 0 (typical: 1e-5 to 5e-4)",
    "config.machine_rank": "{field}: {rank} is not below train.num_machines ({machines}); ranks go from 0 (the "
                           "main machine) to num_machines - 1",
    "config.main_address": "{field}: several machines need the main machine's address (IP or host name)",
    "launch.no_deepspeed": "{field}: {value} needs DeepSpeed, which does not import here ({reason}); install it "
                           "(pip install deepspeed) or choose ddp or fsdp",
    "launch.cpu_fsdp_checkpoints": "{field}: {value}: fsdp on CPU processes saves its result at the end only; set "
                                   "it to 0 (checkpoints during the run, and so Stop and Resume, need ddp or GPUs)",
    "launch.cpu_fsdp_objective": "{field}: {value}: fsdp on CPU processes trains the sft objective only (the "
                                  "preference objectives use TRL's own trainers); choose ddp for it",
    "launch.cpu_fsdp_adapters": "{field}: fsdp on CPU processes shards methods that train the model's own weights "
                                "(full, freeze, bitfit, ...); {method} adds adapters: choose ddp for it",
    "config.no_train_file": "{field}: no training file given; upload one or pick a sample dataset",
    "config.model_empty": "{field}: empty; give an alias, a local folder or a Hub id",
    "config.seq_len_limit": "{field}: {value} is above this model's limit of {limit} tokens (its maximum positions, "
                            "from {path}); use {limit} or less",
    "config.data_not_found": "{field}: {path} not found; upload the file again or fix the path",
    "config.outside": "{field}: {value} is outside the folders this server may read ({allowed}, and {env}); "
                      "upload the file, pick a sample or an earlier run, or ask the operator to add its folder to "
                      "{env}",
    "config.replay_missing": "{field}: give an earlier run folder or a data file to replay, or set replay_fraction "
                             "to 0",
    "config.replay_zero": "{field}: 0 replays nothing; choose a fraction above 0 (e.g. 0.25)",
    # ---- models (engine/core/model_source.py) -------------------------------------------------------
    "model.not_folder": "{field}: {path} is not a folder (not found); give a model folder that holds config.json, "
                        "a Hub id such as HuggingFaceTB/SmolLM2-360M-Instruct, or smollm2-135m-instruct",
    "model.no_config": "{field}: {path} has no config.json, so it is not a model folder (a Hugging Face model "
                       "folder holds config.json, the tokenizer files and *.safetensors)",
    "model.hub_unreachable": "{field}: {model} is not a local folder, the Hugging Face Hub is not reachable "
                             "({why}), and no cached copy exists in {cache}; connect to the network, copy the model "
                             "there, or give a local model folder",
    "model.not_prepared": "{field}: {model} is not prepared, and {why}",
    # ---- runs (engine/core/runs.py, engine/training/failures.py) -------------------------------------
    "run.out_of_memory": "Out of memory{at}{settings}. Try: {advice}. ({detail})",
    "run.at_step": " at step {step}",
    "run.oom_settings": " on {device} with batch_size {batch_size}, max_seq_len {max_seq_len}, precision {precision}, "
                        "gradient_checkpointing {checkpointing}",
    "run.disk_full": "The disk{where} is full (writing a checkpoint or log{at} failed: {detail}). Free some space "
                     "or set TUNELOOM_HOME to a bigger disk, then resume the run from its last checkpoint.",
    "run.disk_where": " holding {folder}",
    "run.interrupted": "interrupted",
    "run.error": "{type}: {detail}",
    "run.reward_failed": "reward {reward} failed on {where} of {file}: {reason}",
    # a run that diverges, said while it trains (engine/training/divergence.py)
    "run.diverging": "The run is diverging: the training loss rose from {start} to {loss} (step {step}). The "
                     "learning rate {learning_rate} is likely too high for this method: stop, and start again with "
                     "train.learning_rate {lower} or more warm-up steps (train.warmup_steps).",
    "run.diverging_spike": "The run is diverging: the training loss rose from {start} to {loss} and the gradient "
                           "norm jumped to {grad_norm} (step {step}). The learning rate {learning_rate} is likely too "
                           "high for this method: stop, and start again with train.learning_rate {lower} or more "
                           "warm-up steps (train.warmup_steps).",
    "run.behind_base": "Its eval loss ended at {final}, above the base model's {base} on the same held-out "
                       "examples, but the run started far from the base (training loss {first} at the first step: "
                       "the method begins from random virtual tokens or new modules) and its loss was still falling "
                       "({last} over the last steps): train it for more steps before judging it.",
    "run.worse_than_base": "Its eval loss ended at {final}, above the base model's {base} on the same held-out "
                           "examples: the run made the model worse there. Likely a learning rate too high for this "
                           "method, or too many steps on little data; try train.learning_rate {lower} (was "
                           "{learning_rate}) or fewer steps.",
    "run.loss_not_finite": "The run is diverging: the training loss became {loss} at step {step}. Stop, and start "
                           "again with train.learning_rate {lower} (now {learning_rate}), or precision fp32 if it "
                           "trains in fp16.",
    "run.machine_exit": "machine {rank}'s training processes exited with code {code}; see train.log here and the "
                        "main machine's run folder",
    "run.gone": "the trainer process (pid {pid}) ended without finishing (killed or crashed); resume continues from "
                "the last checkpoint",
    "eval.gone": "the evaluation process (pid {pid}) ended without finishing; start it again",
    "serve.gone": "the server (pid {pid}) ended; see serve.log in the run folder",
    "run.none_chosen": "no run chosen; pick one from the list",
    "run.not_found": "no run named {run} in {folder}",
    "run.stopped_queued": "stopped while queued",
    "config.problems": "{source} has {count} problem(s):\n  - {problems}",
    "run.killed": "did not stop within {seconds:.0f} s; killed",
    "run.active_resume": "{run} is {state}; stop it before resuming",
    "run.nothing_to_resume": "{run} finished all its steps; there is nothing left to resume",
    "run.no_checkpoint": "{run} has no checkpoint to resume from (it ended before its first save); start it again as "
                         "a new run",
    "run.active_delete": "{run} is {state}; stop it before deleting it",
    "run.eval_running": "an evaluation of {run} is still running; wait for it or stop it first",
    "run.server_running": "a server of {run} is still running; wait for it or stop it first",
    "advice.halve_batch": "halve train.batch_size and double train.gradient_accumulation (same effective batch)",
    "advice.lower_seq_len": "lower train.max_seq_len (long examples dominate activation memory)",
    "advice.checkpointing": "turn on train.gradient_checkpointing (less activation memory, about 30% slower)",
    "advice.half_precision": "use precision bf16 or fp16 on a GPU instead of fp32",
    "advice.smaller_adapter": "use a smaller LoRA rank, fewer target modules, or QLoRA (4-bit base weights)",
    "advice.free_disk": "free disk space (old runs and exports can be deleted)",
    "advice.fewer_checkpoints": "lower train.save_total_limit to keep fewer checkpoints",
    "advice.resume": "resume the run: it continues from the last complete checkpoint",
    # ---- the memory estimate (engine/estimate) -------------------------------------------------------
    "option.checkpointing": "gradient checkpointing on",
    "option.batch": "batch {batch} x accumulation {accumulation} (same global batch)",
    "option.checkpointing_batch": "gradient checkpointing on, batch {batch} x accumulation {accumulation}",
    "option.seq_len": "max_seq_len {max_seq_len} (longer examples are truncated or dropped)",
    "option.bf16_pure": "pure bf16 (no fp32 master copy; updates under 1/256 of a weight round away)",
    "option.bf16": "bf16 mixed precision",
    "option.adamw_8bit": "8-bit AdamW",
    "option.quantised": "{method} (4-bit base) + gradient checkpointing",
    "option.summary": "{label}: about {gib:.2f} GiB",
    "note.paged": "paged optimizer states live in unified memory and can spill to CPU RAM under pressure",
    "note.system_malloc": "the trainer runs on the system malloc, which keeps freed memory resident: a higher peak "
                          "and a less precise estimate (on Linux: apt-get install libtcmalloc-minimal4)",
    "note.teacher_unknown": "the teacher's size is unknown ({detail}); it is not included",
    "note.loading_peak": "the peak is while loading: the full-precision checkpoint is read while it is quantised",
    "note.sequences": "{objective}: each step forwards {sequences} sequences per example",
    "note.sequences_reference": "{objective}: each step forwards {sequences} sequences per example; the reference "
                                "model is counted",
    "note.virtual_tokens": "{virtual} virtual tokens are added to every sequence (packing is off for this method)",
    "structure.summary": "{architecture}: {layers} layers, hidden {hidden}; linear layers {linear}{experts}",
    "structure.experts": "; {experts} experts ({per_token} per token)",
    "device.cpu": "CPU (system RAM)",
    "device.no_gpu": "GPU (not found here)",
    # ---- chat and generation (engine/inference) ------------------------------------------------------
    "gen.not_number": "{field}: {value} is not a number",
    "gen.not_whole": "{field}: must be a whole number, not {value}",
    "gen.outside": "{field}: {value} is outside {low}..{high}",
    "gen.seed": "seed: {value} is not a whole number; leave it empty for a random seed",
    "gen.min_max": "min_new_tokens ({min}) is larger than max_new_tokens ({max}); lower it or raise max new tokens",
    "gen.temperature": "temperature 0 with sampling on: sampling needs a temperature above 0 (or turn sampling off "
                       "for greedy decoding)",
    "gen.beam_sampling": "{beams} beams with sampling limits (top-k {top_k}, top-p {top_p}): beam search keeps the "
                         "likeliest sequences, top-k/top-p pick tokens at random. Use 1 beam to sample, or turn "
                         "sampling off to use beams",
    "gen.too_many_sequences": "{sequences} returned sequences with {beams} beam(s) and sampling off: greedy or beam "
                              "search can return at most one sequence per beam. Raise the beams to at least "
                              "{sequences} or turn sampling on",
    "gen.no_stream": "{why}: beam search and several returned sequences cannot stream token by token, so the "
                     "answer appears whole when it is ready",
    "gen.beams": "{n} beams",
    "gen.sequences": "{n} sequences",
    "load.full": "full weights",
    "load.merged": "adapter merged into the base weights",
    "load.adapter": "this method is served as an adapter on the base model",
    "load.base": "base model",
    "chat.no_model": "the Model field is empty",
    "chat.busy": "run {runs} is training on this device (estimated {training:.2f} GiB) and this chat model needs "
                 "about {needed:.2f} GiB more, but the device has {capacity:.2f} GiB in all. Wait for the run to "
                 "finish or stop it, then load the model again",
    # ---- tools in chat and serving (engine/inference/tools.py) ---------------------------------------
    "tools.json": "tools: not valid JSON at line {line}, column {column}: {detail}. Give a JSON list of tools, e.g. "
                  "[{{\"type\": \"function\", \"function\": {{\"name\": \"get_weather\", \"parameters\": "
                  "{{\"type\": \"object\", \"properties\": {{\"city\": {{\"type\": \"string\"}}}}}}}}}}]",
    "tools.not_list": "tools: expected a JSON list of tools, got {got}",
    "tools.not_object": "tools[{index}]: expected {{\"type\": \"function\", \"function\": {{\"name\": ..., "
                        "\"parameters\": ...}}}}, got {got}",
    "tools.type": "tools[{index}].type: only \"function\" tools can be called, not {value}",
    "tools.name": "tools[{index}].function.name: {value} is not a function name (1-64 letters, digits, _ or -)",
    "tools.duplicate": "tools[{index}].function.name: {name} is named twice; give each tool its own name",
    "tools.parameters": "tools[{index}].function.parameters: expected a JSON Schema object ({{\"type\": "
                        "\"object\", \"properties\": {{...}}}}), got {got}",
    "tools.named_template": "this model's own chat template has no place for tools, so requests with tools are "
                            "rendered with the named template {template} (ChatML with <tool_call> JSON, the same turn "
                            "markers); its tool calls are read in that convention",
    "tools.unsupported": "this model's chat template has no place for tools and does not use ChatML turns, so no "
                         "named template can add them without changing the format the model knows. Chat without "
                         "tools, or train a run with data.template: {template} on tool-calling data",
    # ---- evaluation (engine/evaluation) --------------------------------------------------------------
    "eval.busy": "an evaluation of {run} is already {state} ({done}/{total}); wait for it to finish",
    "eval.ambiguous_data": "{count} data files are named {name}; give one's path: {paths}",
    "eval.unknown_data": "{name} is not a data file of this workspace; evaluate on a file uploaded in the Data tab or "
                         "a bundled sample: {files}",
    "eval.no_split": "the run held out no validation split: these are training examples, so the scores show how "
                     "well it learned them, not how it does on new ones",
    # ---- sweeps, merging runs, judged evaluation (engine/sweep, engine/inference/merge_runs.py, judge.py) ----
    "sweep.gone": "the sweep process (pid {pid}) ended without finishing; Resume continues it",
    "sweep.space_syntax": "--space {text}: expected KEY=LOW:HIGH[:log] or KEY=A,B,C, e.g. "
                          "train.learning_rate=1e-5:1e-3:log or method.r=8,16,32",
    "sweep.space_section": "--space {key}: give a section and a setting, e.g. train.learning_rate or method.r",
    "sweep.method_name": "--space method.name: a sweep searches one method's settings; start one sweep per method",
    "sweep.unknown_method_param": "--space {key}: {method} has no parameter '{name}' (known: {known})",
    "sweep.unknown_section": "--space {key}: unknown section '{section}' (known: {known})",
    "sweep.unknown_setting": "--space {key}: unknown setting '{name}' of {section} (known: {known})",
    "sweep.value": "--space {key}: {problem}",
    "sweep.value_twice": "--space {key}: a value is listed twice ({spec})",
    "sweep.range_syntax": "--space {key}={spec}: a range is LOW:HIGH or LOW:HIGH:log",
    "sweep.range_type": "--space {key}: a {kind} setting; list its values instead, e.g. {example}",
    "sweep.range_order": "--space {key}={spec}: LOW ({low:g}) must be below HIGH ({high:g})",
    "sweep.log_low": "--space {key}={spec}: a log range needs LOW above 0",
    "sweep.key_twice": "--space {key}: given twice",
    "sweep.no_space": "--space: give at least one, e.g. --space train.learning_rate=1e-5:1e-3:log",
    "sweep.grid_range": "--space {key}: the grid sampler needs a list of values (e.g. {key}={low:g},{high:g}), not "
                        "a range",
    "sweep.sampler": "--sampler {sampler}: use one of {choices}",
    "sweep.trials": "--trials {trials}: give 1 or more",
    "sweep.no_validation": "data.validation_split: 0 holds nothing out, so the trials log no {metric}; set it above "
                           "0 (e.g. 0.1)",
    "sweep.metric": "--metric {metric}: unknown; use eval_loss, reward, or any eval_* key the trial runs log in "
                    "metrics.jsonl",
    "sweep.judge_metric": "--metric judge: a judged score is measured by `engine evaluate --judge` after a run, not "
                          "during training, so a sweep cannot prune or rank on it yet; use eval_loss",
    "sweep.not_found": "{sweep}: not a sweep folder (no sweep.json) in {folder}",
    "sweep.active": "{sweep} is already {state}",
    "sweep.no_best": "{sweep} has no finished trial yet; wait for one to finish",
    "merge.how": "--how {how}: use one of {choices}",
    "merge.count": "give two or more runs to merge (got {count})",
    "merge.weights": "--weights: {weights} weight(s) for {runs} runs; give one per run",
    "merge.weights_syntax": "--weights {text}: numbers separated by commas, e.g. 0.5,0.5",
    "merge.density": "--density {density}: the share of each adapter's weights kept, above 0 and at most 1",
    "merge.not_run": "{run}: not a run folder (no config.yaml and status.json)",
    "merge.slerp_count": "--how slerp merges exactly two runs (got {count})",
    "merge.full_how": "{run}: a full-weight run ({method}) is merged by mergekit, which takes --how {allowed} "
                      "(not {how})",
    "merge.weights_sign": "--weights {weights}: slerp takes two weights of 0 or more, not both 0 (the second's "
                          "share is t: 0 gives the first run, 1 the second)",
    "merge.dropped": "mergekit left out {count} tensor(s) the runs trained (e.g. {names}): its architecture "
                     "table does not know them, so the merge would silently lose that training; merge full-weight "
                     "runs that add no tensors (full, freeze, layerwise)",
    "merge.adds_tensors": "{run}: its model has {count} tensor(s) its base model lacks (e.g. {names}; {method} "
                          "added them), and mergekit merges only the tensors its architecture table lists, so the "
                          "merge would lose that training; merge full-weight runs that add no tensors (full, "
                          "freeze, layerwise), or chat with and export this run on its own",
    "merge.weights_sum": "--weights {weights}: mergekit divides full-weight runs' weights by their sum, so it must be "
                         "above 0 (e.g. 0.5,0.5)",
    "merge.mergekit_failed": "mergekit could not merge the runs ({tail}); its whole output is in {log}",
    "merge.no_result": "{run}: has no result yet (no adapter/ or model/); wait for it to finish",
    "merge.not_peft": "{run}: method {method} saves its own adapter format, which peft's add_weighted_adapter "
                      "cannot merge; merge LoRA-family runs (lora, qlora, lora8bit, ia3) or full-weight runs "
                      "(full, freeze, bitfit, layerwise)",
    "merge.kind_how": "{run}: a {kind} adapter cannot be merged with --how {how} (it can with: {allowed})",
    "merge.kind_none": "{run}: a {kind} adapter cannot be merged by peft's add_weighted_adapter; only LoRA and IA3 "
                       "adapters merge",
    "merge.dora": "{run}: a DoRA adapter; add_weighted_adapter merges the LoRA matrices but not DoRA's magnitudes, "
                  "so the result would be wrong",
    "merge.bases": "the runs are on different base models ({bases}); merge runs of one base",
    "merge.kinds": "the runs are of different kinds ({kinds}); merge one kind (adapters with adapters, "
                   "full-weight runs with full-weight runs)",
    "merge.rank": "--how {how} needs one LoRA rank, the runs have {ranks}; use --how cat, or runs of one rank",
    "merge.modules_to_save": "{runs} each train whole modules beside the adapter (modules_to_save), which cannot be "
                             "merged; merge runs without modules_to_save",
    "judge.mode": "--judge-mode {mode}: use rubric or pairwise",
    "judge.empty": "--judge: give an endpoint (http://host:port/v1), a run, or a model",
    "judge.base": "--judge-mode pairwise compares the run's answers with its base model's; drop --base",
    "judge.unreachable": "--judge {url}: the endpoint did not answer /models ({detail}); start it (e.g. python -m "
                         "engine serve RUN) or give --judge-model",
}


class Message(str):
    """The English text of catalogue entry `code` with `params`; `.code` and `.params` keep the structure."""

    def __new__(cls, code: str, **params):
        if code == "joined":
            text = params.get("sep", "; ").join(str(p) for p in params.get("parts", ()))
        else:
            text = CATALOGUE[code].format(**params)
        self = super().__new__(cls, text)
        self.code, self.params = code, params
        return self

    def __reduce__(self):  # copies and pickles keep the code (str's own would call Message(text))
        return _rebuild, (type(self), self.code, self.params)

    def within(self, prefix: str) -> Message:
        """The same problem one level down: field 'r' of section 'method' is 'method.r'."""
        return Message(self.code, **{**self.params, "field": f"{prefix}.{self.params['field']}"})


def _rebuild(kind: type, code: str, params: dict) -> Message:
    return kind(code, **params)


def message(code: str, **params) -> Message:
    return Message(code, **params)


def joined(parts, sep: str = "; ") -> Message | str:
    """Several messages as one (a hint with two pieces of advice); empty parts are left out."""
    parts = [p for p in parts if p]
    if len(parts) == 1:
        return parts[0]
    return Message("joined", parts=parts, sep=sep)


def prefixed(prefix: str, problem: str) -> str:
    """`prefix.problem`, keeping a Message's code (its field gains the prefix)."""
    if isinstance(problem, Message) and "field" in problem.params:
        return problem.within(prefix)
    return f"{prefix}.{problem}"


def as_dict(text) -> dict:
    """{code, params, message} of a Message (or of an exception carrying one); code None for plain text."""
    if isinstance(text, BaseException):
        text = text.args[0] if text.args and isinstance(text.args[0], Message) else str(text)
    if isinstance(text, Message):
        return {"code": text.code, "params": {k: _plain(v) for k, v in text.params.items()}, "message": str(text)}
    return {"code": None, "params": {}, "message": "" if text is None else str(text)}


def from_dict(data) -> Message | str:
    """A message back from `as_dict` (after a process boundary); plain text when it has no known code."""
    if not isinstance(data, dict):
        return "" if data is None else str(data)
    if data.get("code") not in CATALOGUE:
        return str(data.get("message") or "")
    return Message(data["code"], **{k: _rebuilt(v) for k, v in (data.get("params") or {}).items()})


def _rebuilt(value):
    if isinstance(value, dict) and "code" in value and "message" in value:
        return from_dict(value)
    if isinstance(value, list):
        return [_rebuilt(v) for v in value]
    return value


def _plain(value):
    """A parameter as JSON: nested messages as dicts, paths and other objects as text."""
    if isinstance(value, Message):
        return as_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
