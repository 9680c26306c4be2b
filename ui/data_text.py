"""The Data tab's words, in English and Chinese (ui/data_tab.py builds the tab)."""
from __future__ import annotations

MASK_HELP = ("assistant: learn every assistant reply · last_assistant: only the final reply · "
             "none: learn the prompt too (continued pre-training)")

TEXT = {
    "en": {
        "sample": "Sample dataset", "sample_info": "Bundled examples to start from.",
        "upload": "Or upload a file (max {mb} MB)",
        "source": "Or a datasets folder / Hub dataset",
        "source_info": "A folder written by save_to_disk or of Parquet/Arrow shards (inside the workspace, presets or "
                       "TUNELOOM_DATA_DIRS), or hub:owner/name; the split is set under Train, more settings. Press "
                       "Enter to read it.",
        "path": "Training file",
        "path_info": "What Train uses: JSON, JSONL, CSV, Parquet, or raw text (.txt, .md). The quickstart sample "
                     "until you pick another.",
        "format": "Format", "format_info": "auto detects alpaca, sharegpt, messages (tools, reasoning), TRL "
                                           "prompt_completion, text, or preference data (pairwise: "
                                           "prompt/chosen/rejected; unpaired: prompt/completion/label; kto: "
                                           "messages + label).",
        "columns": "Column mapping (CSV or renamed fields)",
        "columns_info": "file_column=field pairs, comma separated; press Enter to apply.",
        "mask": "Train on", "mask_info": MASK_HELP,
        "skip_bad": "Skip bad rows", "skip_bad_info": "Leave broken rows out (they are counted) instead of stopping.",
        "check": "Check data", "first_rows": "First rows", "example": "Example to preview",
        "tokens": "Tokens (highlighted = trained)",
        "chosen_tokens": "Chosen answer: tokens (highlighted = trained)",
        "rejected_tokens": "Rejected answer: tokens (highlighted = trained)",
        "preference_note": "Preference data ({kind}): train it with a preference objective (Train tab: objective "
                           "{objectives}). Only the answers are trained; 'Train on' does not apply.",
        "prompt_note": "Prompts without answers: train them with objective grpo (Train tab). The model samples "
                       "answers to each prompt while it trains and the rewards you pick score them; nothing in the "
                       "file is trained, and 'Train on' does not apply.",
        "prompt_caption": "{where}: a prompt of {tokens} tokens, as the model reads it before answering (none "
                          "trained). Reference columns for the rewards: {references}.",
        "no_references": "none",
        "pair_caption": "{where}: prompt {prompt} tokens (plain), chosen {chosen} and rejected {rejected} answer "
                        "tokens (highlighted): the model learns to prefer the first over the second.",
        "unpaired_caption": "{where}: prompt {prompt} tokens (plain), a {label} answer of {answer} tokens "
                            "(highlighted).",
        "start_note": "Pick a sample dataset or upload a file to see what will be trained.",
        "pick": "Pick a sample dataset or upload a file.",
        "column_mapping": "Column mapping",
        "checking": "Checking {file} with the {model} tokenizer…",
        "cannot_check": "Could not check the data",
        "unusable": "This data cannot be used as it is",
        "ready": "Read {file}: ready to train.",
        "all_dropped": "{file}: every example was dropped ({reasons}); raise max_seq_len (Train tab) or shorten "
                       "the prompts.",
        "example_of": "Example to preview (first {count} of {total})",
        "hub_placeholder": "hub:owner/name or a folder",
        "trained": "trained",
        "file_line": "**{file}** · format **{format}** · fields: {fields}",
        "counts": "**{examples}** examples · **{tokens}** tokens · **{trained}** trained tokens{share} · longest "
                  "{longest} tokens",
        "share": " ({pct} of all)",
        "dropped": "**{n} example(s) dropped** (never trained): {reasons}",
        "skipped": "**{n} bad row(s) skipped**:",
        "none_dropped": "No rows dropped: every example has tokens to learn.",
        "dropped_one": "{where}: dropped ({why})",
        "caption": "{where}: {tokens} tokens, {trained} trained (highlighted). Plain tokens are the prompt and "
                   "template: seen, not learned.",
        "desirable": "desirable", "undesirable": "undesirable",
        "no_file": "no file received", "bad_type": "{name}: use one of {types}",
        "too_big": "{name} is {size} MB; the limit is {limit} MB (set TUNELOOM_MAX_UPLOAD_MB to raise it)",
        "refused": "Upload refused: {why}",
        "no_folder": "{value}: no such folder (give a datasets folder, or hub:owner/name for a Hub dataset)",
    },
    "zh": {
        "sample": "示例数据集", "sample_info": "自带的示例，可以直接开始。",
        "upload": "或上传文件（最大 {mb} MB）",
        "source": "或 datasets 文件夹 / Hub 数据集",
        "source_info": "save_to_disk 写出的文件夹或 Parquet/Arrow 分片文件夹（须在工作区、presets 或 "
                       "TUNELOOM_DATA_DIRS 中），"
                       "或 hub:owner/name；数据划分（split）在训练页的更多设置中。按回车读取。",
        "path": "训练文件",
        "path_info": "训练使用的文件：JSON、JSONL、CSV、Parquet 或纯文本（.txt、.md）。"
                     "在选择其他文件之前是快速入门示例。",
        "format": "格式", "format_info": "auto 会根据字段自动识别 alpaca、sharegpt、messages（工具、推理）、"
                                         "prompt_completion、text 或偏好数据（pairwise、unpaired、kto）。",
        "columns": "列映射（CSV 或改名的字段）",
        "columns_info": "文件列=字段，用逗号分隔；按回车生效。",
        "mask": "训练内容",
        "mask_info": "assistant：学习所有助手回复 · last_assistant：只学最后一条回复 · "
                     "none：连提示一起学（继续预训练）",
        "skip_bad": "跳过坏行", "skip_bad_info": "跳过有问题的行（会计数），而不是停下来。",
        "check": "检查数据", "first_rows": "前几行", "example": "预览的样例",
        "tokens": "词元（高亮 = 参与训练）",
        "chosen_tokens": "选中的回答：词元（高亮 = 参与训练）",
        "rejected_tokens": "被拒绝的回答：词元（高亮 = 参与训练）",
        "preference_note": "偏好数据（{kind}）：请用偏好目标训练（训练页：目标 {objectives}）。只训练回答；"
                           "“训练内容”不适用。",
        "prompt_note": "只有提示、没有回答的数据：请用目标 grpo 训练（训练页）。训练时模型为每个提示采样回答，由你选的"
                       "奖励打分；文件中的内容都不参与训练，“训练内容”不适用。",
        "prompt_caption": "{where}：一个 {tokens} 个词元的提示，即模型回答前读到的内容（不参与训练）。"
                          "供奖励使用的参考列：{references}。",
        "no_references": "无",
        "pair_caption": "{where}：提示 {prompt} 个词元（未高亮），选中回答 {chosen} 个、被拒绝回答 {rejected} 个词元"
                        "（高亮）：模型学习更偏好前者。",
        "unpaired_caption": "{where}：提示 {prompt} 个词元（未高亮），一个{label}回答，{answer} 个词元（高亮）。",
        "start_note": "选择示例数据集或上传文件，查看哪些内容会被训练。",
        "pick": "请选择示例数据集或上传文件。",
        "column_mapping": "列映射",
        "checking": "正在用 {model} 的分词器检查 {file}…",
        "cannot_check": "无法检查数据",
        "unusable": "这份数据无法直接使用",
        "ready": "已读取 {file}：可以开始训练。",
        "all_dropped": "{file}：所有样例都被丢弃了（{reasons}）；请调大最大序列长度（训练页）或缩短提示。",
        "example_of": "预览的样例（共 {total} 个中的前 {count} 个）",
        "hub_placeholder": "hub:owner/name 或文件夹",
        "trained": "参与训练",
        "file_line": "**{file}** · 格式 **{format}** · 字段：{fields}",
        "counts": "**{examples}** 个样例 · **{tokens}** 个词元 · **{trained}** 个训练词元{share} · "
                  "最长 {longest} 个词元",
        "share": "（占全部的 {pct}）",
        "dropped": "**丢弃了 {n} 个样例**（不会被训练）：{reasons}",
        "skipped": "**跳过了 {n} 个坏行**：",
        "none_dropped": "没有丢弃任何行：每个样例都有可学习的词元。",
        "dropped_one": "{where}：已丢弃（{why}）",
        "caption": "{where}：{tokens} 个词元，其中 {trained} 个参与训练（高亮）。"
                   "未高亮的是提示和模板：模型会看到，但不学习。",
        "desirable": "好的", "undesirable": "不好的",
        "no_file": "没有收到文件", "bad_type": "{name}：请使用以下类型之一：{types}",
        "too_big": "{name} 大小为 {size} MB；上限是 {limit} MB（可设置 TUNELOOM_MAX_UPLOAD_MB 提高上限）",
        "refused": "上传被拒绝：{why}",
        "no_folder": "{value}：没有这个文件夹（请给出 datasets 文件夹，或用 hub:owner/name 指定 Hub 数据集）",
    },
}
