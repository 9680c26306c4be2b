"""Engine messages in the page's language.

The engine words its messages in English and gives each a code and its parameters
(engine/core/messages.py); ZH below holds the Chinese template of every code (tests/test_ui_language.py
checks that none is missing and that the parameters match). `say` and `say_html` take a Message, its
dict form (after a process boundary: status.json, the CLI's JSON) or plain text. A message without a
Chinese template is shown with a Chinese prefix and its English detail (after a colon in plain text,
folded in a <details> in HTML), so nothing is lost and nothing pretends to be translated.
"""
from __future__ import annotations

import html
import re

from engine.core.messages import Message, as_dict
from ui.lang import norm
from ui.states import state_name

ZH = {
    "joined": "{text}",
    # ---- data files
    "data.where_field": "字段 '{field}'",
    "data.file_not_found": "找不到文件",
    "data.not_a_file": "不是文件",
    "data.check_path": "请检查路径 {path}",
    "data.unsupported_type": "不支持的文件类型 {suffix}",
    "data.use_one_of": "请使用以下之一：{choices}",
    "data.too_large": "文件大小为 {size_mb:,.1f} MB，超过了 {limit_mb:,.0f} MB 的上限",
    "data.too_large_hint": "把它拆成较小的文件，或提高上限（环境变量 {env}={needed_mb}）",
    "data.empty_file": "文件是空的（0 字节）",
    "data.add_example": "请至少添加一个样例",
    "magic.zip": "ZIP 压缩包（Excel .xlsx、.docx 或压缩的数据集）",
    "magic.zip_todo": "请先解压，或把表格导出为 CSV",
    "magic.png": "PNG 图片",
    "magic.jpeg": "JPEG 图片",
    "magic.upload_data": "请上传数据文件本身",
    "magic.pdf": "PDF 文档",
    "magic.pdf_todo": "请把数据导出为 JSONL 或 CSV",
    "magic.gzip": "gzip 压缩文件",
    "magic.gzip_todo": "请先解压（gunzip）",
    "magic.parquet": "Parquet 文件",
    "magic.parquet_todo": "请把扩展名改为 .parquet",
    "magic.sqlite": "SQLite 数据库",
    "magic.sqlite_todo": "请把表导出为 CSV 或 JSONL",
    "magic.office": "旧版 Excel/Word 文件（.xls/.doc）",
    "magic.office_todo": "请把表格导出为 CSV",
    "data.wrong_kind": "这是{what}，不是 {kind} 文本",
    "data.utf16": "文件是 UTF-16 编码",
    "data.save_utf8": "请另存为 UTF-8（多数编辑器在“另存为”/“编码”中提供此选项）",
    "data.save_file_utf8": "请把文件另存为 UTF-8（多数编辑器在“另存为”/“编码”中提供此选项）",
    "data.binary": "这看起来是二进制文件，不是 {kind} 文本",
    "data.export_utf8": "请把数据导出为 UTF-8 文本（JSONL、JSON 或 CSV）",
    "data.no_rows": "没有找到样例（文件中没有任何行）",
    "data.bad_utf8": "第 {column} 列的字节 0x{byte:02x} 不是有效的 UTF-8",
    "data.not_object_line": "应为 JSON 对象，实际是 {got}",
    "data.one_object_per_line": "每行必须是一个 {{...}} 对象",
    "data.invalid_json": "第 {column} 列的 JSON 无效：{detail}",
    "data.fix_line": "修正这一行，或打开“跳过坏行”（--skip-bad-rows）把它略过",
    "data.fix_json": "请修正该处的 JSON 语法",
    "data.fix_json_jsonl": "请修正该处的 JSON 语法（如果是每行一个对象，请把文件命名为 .jsonl）",
    "data.only_whitespace": "文件里只有空白字符",
    "data.not_list": "应为样例列表，实际是 {got}",
    "data.list_hint": "文件内容应为 [ {{...}}, {{...}} ]",
    "data.not_object": "应为对象，实际是 {got}",
    "data.object_hint": "每个样例必须是一个 {{...}} 对象",
    "data.no_header": "没有表头行",
    "data.header_hint": "第一行必须写出各列的名称",
    "data.duplicate_columns": "列名重复：{columns}",
    "data.unique_columns": "请给每一列起不同的名字",
    "data.csv_count": "{values} 个值对应 {columns} 列（{names}）",
    "data.csv_quote": "含逗号的值请加引号，例如 \"a, b\"",
    "data.bad_csv": "不是有效的 CSV：{detail}",
    "data.csv_quoting": "请检查这一行的引号",
    "data.bad_parquet": "无法读取的 Parquet 文件（{detail}）",
    "data.reexport": "请重新导出该文件",
    "data.unknown_format": "无法根据字段 {fields} 判断数据格式",
    "data.unknown_format_hint": "{did_you_mean}应为以下之一：[{expected}]；请重命名字段、设置列映射（data.columns / "
                                "列映射），或手动选择格式",
    "data.did_you_mean": "你是不是想写 {pairs}？",
    "data.fields_found": "{did_you_mean}找到的字段：{fields}",
    "data.or_skip": "或打开“跳过坏行”",
    "data.none_usable": "{total} 行中没有一行可用",
    "data.first_problem": "第一个问题：{problem}",
    "field.missing": "缺失",
    "field.needs": "每个样例都需要 '{field}'",
    "field.expected_text": "应为文本，实际是 {got}",
    "field.make_string": "请改成字符串",
    "field.empty_conversation": "对话是空的",
    "field.add_turns": "请至少添加一轮用户发言和一轮助手回答",
    "field.role_order": "角色 '{role}' 顺序不对；此处应为 '{expected}'",
    "field.turn_order": "轮次顺序必须是 system（可选）、user、assistant、user、assistant……",
    "field.no_assistant": "没有助手（assistant）的回答",
    "field.add_answer": "请添加模型要学习的回答",
    "field.ends_with_user": "对话以用户发言结尾",
    "field.end_with_answer": "每段对话都应以助手的回答结尾",
    "field.history_type": "应为 [问题, 回答] 对的列表，实际是 {got}",
    "field.history_pair": "应为由两个字符串组成的 [问题, 回答] 对",
    "field.empty": "为空",
    "field.write_instruction": "请写出模型要遵循的指令",
    "field.turns_type": "应为轮次列表，实际是 {got}",
    "field.turn_type": "应为含 '{role_key}' 和 '{content_key}' 的对象，实际是 {got}",
    "field.missing_found": "缺失（找到的是：{found}）",
    "field.unknown_role": "未知角色 {role}",
    "field.use_role": "请使用以下之一：{choices}",
    "field.prompt_missing": "请以文本或 {{role, content}} 消息列表给出提示（或把整段对话放进 chosen 和 rejected）",
    "field.write_prompt": "请写出回答所针对的提示",
    "field.prompt_ends": "提示以 '{role}' 轮次结尾",
    "field.prompt_end_user": "提示应以 chosen 和 rejected 所回答的用户轮次结尾",
    "field.write_answer": "请写出回答",
    "field.answer_type": "应为文本或消息列表，实际是 {got}",
    "field.last_not_assistant": "最后一条消息不是助手的",
    "field.end_it": "请以助手的回答结尾",
    "field.answer_messages": "在 prompt 字段之外还有 {count} 条消息",
    "field.only_answer": "这里只写助手的回答（对话放在提示里）",
    "field.prompt_or_conversations": "请给出 prompt 字段，或在 {fields} 中给出完整对话",
    "field.differs": "在最后一个回答之前，它的对话与 {other} 的不同",
    "field.share_turns": "两者除最后一轮外必须完全相同，或单独给出提示",
    "field.same_as_chosen": "与 chosen 相同",
    "field.pair_differ": "一对回答必须不同：否则什么也学不到",
    "field.label": "应为 true 或 false，实际是 {label}",
    "field.label_hint": "true：好的回答，false：不好的回答",
    # tools, reasoning, media, detection (engine/data/turns.py, formats.py)
    "field.tool_arguments": "工具调用的参数不是有效的 JSON（{detail}）",
    "field.tool_arguments_type": "工具调用的参数必须是 JSON 对象，实际是 {got}",
    "field.tool_arguments_hint": "把参数写成 JSON 对象，例如 {{\"city\": \"Paris\"}}"
                                 "（OpenAI 文件中写成字符串：\"{{\\\"city\\\": \\\"Paris\\\"}}\"）",
    "field.tool_call_json": "函数调用不是有效的 JSON（{detail}）",
    "field.tool_call_type": "应为工具调用对象，实际是 {got}",
    "field.tool_call_name": "工具调用没有函数名",
    "field.tool_call_hint": "每个调用写成 {{\"name\": ..., \"arguments\": {{...}}}}（OpenAI：{{\"type\": \"function\", "
                            "\"function\": {{\"name\": ..., \"arguments\": \"...\"}}}}）",
    "field.tool_calls_type": "应为工具调用的列表，实际是 {got}",
    "field.tools_json": "工具列表不是有效的 JSON（{detail}）",
    "field.tools_type": "应为函数定义的列表，实际是 {got}",
    "field.tool_schema": "工具需要函数名",
    "field.tools_hint": "工具写成 {{\"type\": \"function\", \"function\": {{\"name\", \"description\", "
                        "\"parameters\"}}}} 的列表（或扁平的 {{name, description, parameters}}）",
    "field.weight": "weight 必须是 0 或 1，实际是 {value}",
    "field.weight_hint": "1 表示训练这条助手消息，0 表示只给模型看、不训练",
    "field.content_hint": "content 写成文本，或 {{\"type\": \"text\", \"text\": ...}} 片段的列表",
    "field.content_part": "不是文本的内容片段：{got}",
    "field.media_part": "'{kind}' 内容片段：文本模型无法训练图像、音频或视频",
    "field.tool_unanswered": "这条工具消息没有对应的工具调用",
    "field.tool_unanswered_hint": "把每条工具消息放在发出该调用的助手消息之后（每个调用一条工具消息），或删除它",
    "field.tool_call_id": "tool_call_id {id} 与前一条助手消息中尚未回复的调用都不匹配（其调用：{ids}）",
    "field.tool_turn_order": "顺序应为 system（可选）、user、assistant；调用工具的助手消息之后，每个调用跟一条工具消息"
                             "，再接助手消息",
    "field.label_boolean": "label 必须是 true 或 false，实际是 {label}",
    "field.preference_tools_hint": "提示和回答请只用 system、user、assistant 的文本消息",
    "field.preference_tools": "偏好数据不支持工具调用和工具消息",
    "data.media": "这份数据包含 {what}：文本模型无法训练图像、音频或视频，本应用也绝不会把它们当作文本训练",
    "data.media_hint": "删除 images/audios/videos 字段和 <image>/<audio>/<video> 占位符即可只训练文本；"
                       "支持的格式：alpaca、sharegpt（含工具）、OpenAI messages（含工具、推理）、"
                       "prompt/completion、偏好数据（DPO/KTO）和纯文本",
    "data.also_fits": "按 {chosen} 读取；该文件也符合 {others}：如需按那种方式读取，"
                      "请选择格式 {pick}（data.format / --format）",
    "drop.no_answer_tokens": "套用聊天模板后没有可训练的回答词元",
    "drop.answer_after_limit": "回答从最大序列长度（{max_seq_len} 个词元）之后才开始",
    "drop.prompt_fills": "仅提示就占满了最大序列长度（{max_seq_len} 个词元）",
    # ---- settings
    "config.empty": "{field}：为空；请输入一个值",
    "config.columns": "{field}：{reason}",
    "config.column_pair": "列映射 {item}：请写成 文件列=字段，例如 question=instruction",
    "config.bool": "{field}：应为 true 或 false，实际是 {value}",
    "config.whole": "{field}：应为整数，实际是 {value}",
    "config.number": "{field}：应为数字，实际是 {value}",
    "config.choice": "{field}：{value} 不在可选值 {choices} 之中",
    "config.below_min": "{field}：{value} 低于最小值 {min:g}",
    "config.above_max": "{field}：{value} 高于最大值 {max:g}",
    "config.unknown_param": "{field}：未知参数（已知：{known}）",
    "config.unknown_key": "{field}：未知的键（已知：{known}）",
    "config.unknown_method": "{field}：未知方法 {name}；请从以下选择：{known}",
    "config.epochs": "{field}：最大步数为 0 时轮数必须大于 0",
    "config.learning_rate": "{field}：{value} 必须大于 0（常用 1e-5 到 5e-4）",
    "config.machine_rank": "{field}：{rank} 不小于 train.num_machines（{machines}）；"
                           "机器编号从 0（主机器）到 num_machines - 1",
    "config.main_address": "{field}：多台机器训练需要主机器的地址（IP 或主机名）",
    "launch.no_deepspeed": "{field}：{value} 需要 DeepSpeed，但这里无法导入（{reason}）；"
                           "请安装（pip install deepspeed）或改用 ddp 或 fsdp",
    "launch.cpu_fsdp_checkpoints": "{field}：{value}：在 CPU 进程上 fsdp 只在结束时保存结果；请设为 0"
                                   "（训练中的检查点，以及停止和继续，需要 ddp 或 GPU）",
    "launch.cpu_fsdp_objective": "{field}：{value}：在 CPU 进程上 fsdp 只训练 sft 目标"
                                  "（偏好目标使用 TRL 自己的训练器）；请改用 ddp",
    "launch.cpu_fsdp_adapters": "{field}：在 CPU 进程上 fsdp 只分片训练模型自身权重的方法（full、freeze、bitfit 等）；"
                                "{method} 添加适配器：请改用 ddp",
    "config.no_train_file": "{field}：没有训练文件；请上传一个或选择示例数据集",
    "config.model_empty": "{field}：为空；请填写别名、本地文件夹或 Hub 模型 ID",
    "config.seq_len_limit": "{field}：{value} 超过了该模型 {limit} 个词元的上限（它的最大位置数，来自 {path}）；"
                            "请使用 {limit} 或更小的值",
    "config.data_not_found": "{field}：找不到 {path}；请重新上传文件或修正路径",
    "config.outside": "{field}：{value} 不在本服务器可读取的文件夹内（{allowed}，以及 {env}）；请上传文件、选择示例"
                      "或较早的训练，或请管理员把它所在的文件夹加入 {env}",
    "config.replay_missing": "{field}：请给出要回放的较早训练文件夹或数据文件，或把 replay_fraction 设为 0",
    "config.replay_zero": "{field}：0 表示不回放任何数据；请选择大于 0 的比例（例如 0.25）",
    "config.problems": "{source} 有 {count} 个问题：\n  - {problems}",
    # ---- models
    "model.not_folder": "{field}：{path} 不是文件夹（找不到）；请给出包含 config.json 的模型文件夹、Hub 模型 ID（例如 "
                        "HuggingFaceTB/SmolLM2-360M-Instruct）或 smollm2-135m-instruct",
    "model.no_config": "{field}：{path} 里没有 config.json，所以不是模型文件夹（Hugging Face 模型文件夹包含 "
                       "config.json、分词器文件和 *.safetensors）",
    "model.hub_unreachable": "{field}：{model} 不是本地文件夹，无法连接 Hugging Face Hub（{why}），{cache} 中也没有缓存"
                             "副本；请连接网络、把模型复制到那里，或给出本地模型文件夹",
    "model.not_prepared": "{field}：{model} 尚未准备好，而且 {why}",
    # ---- runs
    "run.out_of_memory": "内存不足{at}{settings}。建议：{advice}。（{detail}）",
    "run.at_step": "（第 {step} 步）",
    "run.oom_settings": "，设备 {device}，设置为 batch_size {batch_size}、max_seq_len {max_seq_len}、精度 {precision}、"
                        "梯度检查点 {checkpointing}",
    "run.disk_full": "磁盘{where}已满（写入检查点或日志{at}失败：{detail}）。请释放空间或把 TUNELOOM_HOME "
                     "设到更大的磁盘，然后从最后一个检查点继续训练。",
    "run.disk_where": "（{folder} 所在）",
    "run.interrupted": "已中断",
    "run.error": "训练出错（{type}）：{detail}",
    "run.reward_failed": "奖励 {reward} 在 {file} 的 {where} 出错：{reason}",
    "run.diverging": "训练正在发散：训练损失从 {start} 升到 {loss}（第 {step} 步）。学习率 {learning_rate} "
                     "对这种方法可能太高：请停止，并用 train.learning_rate {lower} 或更多预热步数"
                     "（train.warmup_steps）重新开始。",
    "run.diverging_spike": "训练正在发散：训练损失从 {start} 升到 {loss}，梯度范数跳到 {grad_norm}（第 {step} 步）。"
                           "学习率 {learning_rate} 对这种方法可能太高：请停止，并用 train.learning_rate {lower} "
                           "或更多预热步数（train.warmup_steps）重新开始。",
    "run.behind_base": "验证损失最终为 {final}，高于基础模型在同一批验证样本上的 {base}；但这次训练起点离基础模型很远"
                       "（第一步的训练损失为 {first}：这种方法从随机的虚拟词元或新模块开始），到最后损失仍在下降"
                       "（最后几步平均 {last}）：请多训练一些步数再下结论。",
    "run.worse_than_base": "验证损失最终为 {final}，高于基础模型在同一批验证样本上的 {base}：这次训练让模型在这些样本上"
                           "变差了。可能是学习率对这种方法太高，或在少量数据上训练了太多步；可试 train.learning_rate "
                           "{lower}（原为 {learning_rate}）或减少步数。",
    "run.loss_not_finite": "训练正在发散：第 {step} 步的训练损失变成了 {loss}。请停止，并用 train.learning_rate "
                           "{lower}（现为 {learning_rate}）重新开始；若用 fp16 训练，可改为 fp32 精度。",
    "run.machine_exit": "机器 {rank} 的训练进程以代码 {code} 退出；请查看这里的 train.log 和主机器上的运行文件夹",
    "run.gone": "训练进程（pid {pid}）未完成就结束了（被终止或崩溃）；继续训练会从最后一个检查点开始",
    "eval.gone": "评估进程（pid {pid}）未完成就结束了；请重新开始",
    "serve.gone": "服务进程（pid {pid}）已结束；详见训练文件夹中的 serve.log",
    "run.none_chosen": "没有选择训练；请从列表中选一个",
    "run.not_found": "{folder} 中没有名为 {run} 的训练",
    "run.stopped_queued": "在排队时被停止",
    "run.killed": "{seconds:.0f} 秒内没有停止；已强制结束",
    "run.active_resume": "{run} 正处于“{state}”状态；请先停止再继续训练",
    "run.nothing_to_resume": "{run} 已完成全部步数；没有可继续的内容",
    "run.no_checkpoint": "{run} 没有可继续的检查点（在第一次保存前就结束了）；请作为新训练重新开始",
    "run.active_delete": "{run} 正处于“{state}”状态；请先停止再删除",
    "run.eval_running": "{run} 的评估仍在运行；请等待它结束或先停止它",
    "run.server_running": "{run} 的服务仍在运行；请等待它结束或先停止它",
    "advice.halve_batch": "把 train.batch_size 减半，同时把 train.gradient_accumulation 加倍（有效批大小不变）",
    "advice.lower_seq_len": "调低 train.max_seq_len（长样例是激活内存的大头）",
    "advice.checkpointing": "打开 train.gradient_checkpointing（激活内存少很多，速度慢约 30%）",
    "advice.half_precision": "在 GPU 上用 bf16 或 fp16 精度代替 fp32",
    "advice.smaller_adapter": "用更小的 LoRA 秩、更少的目标模块，或 QLoRA（4 位基座权重）",
    "advice.free_disk": "释放磁盘空间（可以删除旧的训练和导出）",
    "advice.fewer_checkpoints": "调低 train.save_total_limit，少保留几个检查点",
    "advice.resume": "继续训练：会从最后一个完整的检查点接着训练",
    # ---- the memory estimate
    "option.checkpointing": "打开梯度检查点",
    "option.batch": "批大小 {batch} × 梯度累积 {accumulation}（总批大小不变）",
    "option.checkpointing_batch": "打开梯度检查点，批大小 {batch} × 梯度累积 {accumulation}",
    "option.seq_len": "max_seq_len {max_seq_len}（更长的样例会被截断或丢弃）",
    "option.bf16_pure": "纯 bf16（没有 fp32 主权重副本；小于权重 1/256 的更新会被舍去）",
    "option.bf16": "bf16 混合精度",
    "option.adamw_8bit": "8 位 AdamW",
    "option.quantised": "{method} + 梯度检查点",  # the method's Chinese title says 4 位基座
    "option.summary": "{label}：约 {gib:.2f} GiB",
    "note.paged": "分页优化器状态位于统一内存中，内存紧张时可能溢出到 CPU 内存",
    "note.system_malloc": "训练进程使用系统自带的 malloc，它会把释放的内存留在进程中：峰值更高，估算也不那么准"
                          "（Linux 上可安装：apt-get install libtcmalloc-minimal4）",
    "note.teacher_unknown": "无法得知教师模型的大小（{detail}）；估算中未包含它",
    "note.loading_peak": "峰值出现在加载时：量化时会读取完整精度的检查点",
    "note.sequences": "{objective}：每个样例每步前向计算 {sequences} 个序列",
    "note.sequences_reference": "{objective}：每个样例每步前向计算 {sequences} 个序列；已计入参考模型",
    "note.virtual_tokens": "每个序列都会加上 {virtual} 个虚拟词元（此方法不使用打包）",
    "structure.summary": "{architecture}：{layers} 层，隐藏维度 {hidden}；线性层 {linear}{experts}",
    "structure.experts": "；{experts} 个专家（每个词元 {per_token} 个）",
    "device.cpu": "CPU（系统内存）",
    "device.no_gpu": "GPU（本机未找到）",
    # ---- chat and generation
    "gen.not_number": "{field}：{value} 不是数字",
    "gen.not_whole": "{field}：必须是整数，而不是 {value}",
    "gen.outside": "{field}：{value} 超出范围 {low}..{high}",
    "gen.seed": "随机种子：{value} 不是整数；留空表示随机",
    "gen.min_max": "最少生成的词元数（{min}）大于最多生成的词元数（{max}）；请调低前者或调高后者",
    "gen.temperature": "开启采样时温度为 0：采样需要大于 0 的温度（或关闭采样，改用贪心解码）",
    "gen.beam_sampling": "{beams} 个束同时设置了采样限制（top-k {top_k}，top-p {top_p}）：束搜索保留最可能的序列，"
                         "top-k/top-p 则随机选词。采样请用 1 个束，或关闭采样以使用束搜索",
    "gen.too_many_sequences": "关闭采样时要求返回 {sequences} 个序列但只有 {beams} 个束：贪心或束搜索每个束最多返回一个"
                              "序列。请把束宽调到至少 {sequences}，或开启采样",
    "gen.no_stream": "{why}：束搜索和返回多个序列时无法逐词流式输出，回答会在完成后一次显示",
    "gen.beams": "{n} 个束",
    "gen.sequences": "{n} 个序列",
    "load.full": "完整权重",
    "load.merged": "适配器已合并进基础权重",
    "load.adapter": "此方法以适配器形式加载在基础模型之上",
    "load.base": "基础模型",
    "chat.no_model": "“模型”一栏是空的",
    "chat.busy": "训练 {runs} 正在这台设备上运行（估算 {training:.2f} GiB），这个对话模型还需要约 {needed:.2f} GiB，"
                 "而设备一共只有 {capacity:.2f} GiB。请等训练结束或先停止它，再加载模型",
    # ---- tools in chat and serving
    "tools.json": "tools：第 {line} 行第 {column} 列不是有效的 JSON：{detail}。请给出工具的 JSON 列表，例如 "
                  "[{{\"type\": \"function\", \"function\": {{\"name\": \"get_weather\", \"parameters\": "
                  "{{\"type\": \"object\", \"properties\": {{\"city\": {{\"type\": \"string\"}}}}}}}}}}]",
    "tools.not_list": "tools：应为工具的 JSON 列表，实际是 {got}",
    "tools.not_object": "tools[{index}]：应为 {{\"type\": \"function\", \"function\": {{\"name\": ..., "
                        "\"parameters\": ...}}}}，实际是 {got}",
    "tools.type": "tools[{index}].type：只能调用 \"function\" 类型的工具，而不是 {value}",
    "tools.name": "tools[{index}].function.name：{value} 不是有效的函数名（1-64 个字母、数字、_ 或 -）",
    "tools.duplicate": "tools[{index}].function.name：{name} 出现了两次；请给每个工具起不同的名字",
    "tools.parameters": "tools[{index}].function.parameters：应为 JSON Schema 对象（{{\"type\": \"object\", "
                        "\"properties\": {{...}}}}），实际是 {got}",
    "tools.named_template": "该模型自带的对话模板没有放置工具的位置，因此带工具的请求改用命名模板 {template} 渲染"
                            "（ChatML 格式加 <tool_call> JSON，轮次标记相同）；模型的工具调用也按该约定读取",
    "tools.unsupported": "该模型的对话模板没有放置工具的位置，也不使用 ChatML 轮次，"
                         "任何命名模板都无法在不改变模型所学格式的前提下加入工具。"
                         "请不带工具对话，或用 data.template: {template} 在工具调用数据上训练",
    # ---- evaluation
    "eval.busy": "{run} 的评估已经处于“{state}”状态（{done}/{total}）；请等它完成",
    "eval.ambiguous_data": "有 {count} 个数据文件名为 {name}；请给出其中一个的路径：{paths}",
    "eval.unknown_data": "{name} 不是本工作区的数据文件；请在“数据”页上传文件，或选择自带的示例：{files}",
    "eval.no_split": "该训练没有留出验证集：这些是训练样例，所以分数反映的是它学得怎么样，而不是在新数据上的表现",
    # ---- sweeps, merging runs, judged evaluation
    "sweep.gone": "搜索进程（pid {pid}）未完成就结束了；点“继续”可接着运行",
    "sweep.space_syntax": "--space {text}：应写成 KEY=下限:上限[:log] 或 KEY=A,B,C，例如 train.learning_rate=1e-5:1e"
                          "-3:log 或 method.r=8,16,32",
    "sweep.space_section": "--space {key}：请写出部分和设置名，例如 train.learning_rate 或 method.r",
    "sweep.method_name": "--space method.name：一次搜索只搜索一种方法的设置；每种方法各开一次搜索",
    "sweep.unknown_method_param": "--space {key}：{method} 没有参数“{name}”（已知：{known}）",
    "sweep.unknown_section": "--space {key}：未知的部分“{section}”（已知：{known}）",
    "sweep.unknown_setting": "--space {key}：{section} 中没有设置“{name}”（已知：{known}）",
    "sweep.value": "--space {key}：{problem}",
    "sweep.value_twice": "--space {key}：有取值重复列出（{spec}）",
    "sweep.range_syntax": "--space {key}={spec}：范围应写成 下限:上限 或 下限:上限:log",
    "sweep.range_type": "--space {key}：这是 {kind} 类型的设置；请列出取值，例如 {example}",
    "sweep.range_order": "--space {key}={spec}：下限（{low:g}）必须小于上限（{high:g}）",
    "sweep.log_low": "--space {key}={spec}：对数范围的下限必须大于 0",
    "sweep.key_twice": "--space {key}：给了两次",
    "sweep.no_space": "--space：至少给一个，例如 --space train.learning_rate=1e-5:1e-3:log",
    "sweep.grid_range": "--space {key}：网格采样器需要一组取值（例如 {key}={low:g},{high:g}），不能是范围",
    "sweep.sampler": "--sampler {sampler}：请使用 {choices} 之一",
    "sweep.trials": "--trials {trials}：至少为 1",
    "sweep.no_validation": "data.validation_split：0 表示不留出数据，试验就不会记录 {metric}；请设为大于 0（例如 0.1"
                           "）",
    "sweep.metric": "--metric {metric}：未知；请使用 eval_loss、reward，或试验训练在 metrics.jsonl 中记录的任一 eval"
                    "_* 指标",
    "sweep.judge_metric": "--metric judge：评审分数要在训练结束后用 `engine evaluate --judge` 测量，训练中没有，所以"
                          "搜索暂不能按它剪枝或排序；请使用 eval_loss",
    "sweep.not_found": "{sweep}：不是搜索文件夹（没有 sweep.json），位置 {folder}",
    "sweep.active": "{sweep} 已经处于“{state}”状态",
    "sweep.no_best": "{sweep} 还没有完成的试验；请等一个试验完成",
    "merge.how": "--how {how}：请使用 {choices} 之一",
    "merge.count": "请给出两个或更多要合并的训练（现在是 {count} 个）",
    "merge.weights": "--weights：{runs} 个训练给了 {weights} 个权重；每个训练一个",
    "merge.weights_syntax": "--weights {text}：应是用逗号分隔的数字，例如 0.5,0.5",
    "merge.density": "--density {density}：每个适配器保留的权重比例，须大于 0 且不超过 1",
    "merge.not_run": "{run}：不是训练文件夹（没有 config.yaml 和 status.json）",
    "merge.slerp_count": "--how slerp 只能合并两个训练（现在是 {count} 个）",
    "merge.full_how": "{run}：全量权重的训练（{method}）由 mergekit 合并，可用 --how {allowed}（不能用 {how}）",
    "merge.weights_sign": "--weights {weights}：slerp 需要两个不小于 0、且不同时为 0 的权重（第二个所占的比例是 t："
                          "0 得到第一个训练，1 得到第二个）",
    "merge.dropped": "mergekit 漏掉了这些训练过的 {count} 个张量（例如 {names}）：它的架构表不认识它们，"
                     "合并会悄悄丢掉这部分训练；请合并不新增张量的全量权重训练（full、freeze、layerwise）",
    "merge.adds_tensors": "{run}：它的模型有 {count} 个基础模型没有的张量（例如 {names}；由 {method} 添加），"
                          "mergekit 只合并它架构表中列出的张量，合并会丢掉这部分训练；请合并不新增张量的全量权重训练"
                          "（full、freeze、layerwise），或单独对话、导出这个训练",
    "merge.weights_sum": "--weights {weights}：mergekit 会用全量权重训练的权重之和去除它们，"
                         "所以总和必须大于 0（例如 0.5,0.5）",
    "merge.mergekit_failed": "mergekit 无法合并这些训练（{tail}）；完整输出在 {log}",
    "merge.no_result": "{run}：还没有结果（没有 adapter/ 或 model/）；请等它完成",
    "merge.not_peft": "{run}：方法 {method} 以自己的格式保存适配器，peft 的 add_weighted_adapter 无法合并；请合并 Lo"
                      "RA 类训练（lora、qlora、lora8bit、ia3）或全量权重的训练（full、freeze、bitfit、layerwise）",
    "merge.kind_how": "{run}：{kind} 适配器不能用 --how {how} 合并（可以用：{allowed}）",
    "merge.kind_none": "{run}：peft 的 add_weighted_adapter 无法合并 {kind} 适配器；只有 LoRA 与 IA3 适配器可以合并",
    "merge.dora": "{run}：DoRA 适配器；add_weighted_adapter 只合并 LoRA 矩阵而不合并 DoRA 的幅度，结果会是错的",
    "merge.bases": "这些训练的基础模型不同（{bases}）；请合并同一基础模型上的训练",
    "merge.kinds": "这些训练的类型不同（{kinds}）；请合并同一类型（适配器与适配器，全量权重与全量权重）",
    "merge.rank": "--how {how} 要求 LoRA 秩相同，而这些训练的秩为 {ranks}；请用 --how cat，或选秩相同的训练",
    "merge.modules_to_save": "{runs} 都在适配器之外训练了整个模块（modules_to_save），这些无法合并；请合并没有 modul"
                             "es_to_save 的训练",
    "judge.mode": "--judge-mode {mode}：请使用 rubric 或 pairwise",
    "judge.empty": "--judge：请给出一个接口（http://host:port/v1）、一个训练或一个模型",
    "judge.base": "--judge-mode pairwise 是把训练的回答与其基础模型的回答比较；请去掉 --base",
    "judge.unreachable": "--judge {url}：该接口没有响应 /models（{detail}）；请先启动它（例如 python -m engine serve"
                         " RUN），或给出 --judge-model",
}
UNTRANSLATED = "说明（英文）"  # the prefix of a message that has no Chinese template
PLACE = re.compile(r"^(line|row) (\d+)$")
JOIN_ZH = {"; ": "；", ", ": "、"}


def _fields(message) -> dict:
    """{code, params, message} of a Message, of its dict form, or of plain text."""
    if isinstance(message, dict):
        return message
    return as_dict(message)


def translated(message, lang) -> str | None:
    """The message in `lang`, or None when it has no template in that language."""
    data = _fields(message)
    if norm(lang) != "zh":
        return str(data.get("message") or "")
    code, params = data.get("code"), data.get("params") or {}
    if code == "joined":
        parts = [say(p, lang) for p in params.get("parts") or []]
        return JOIN_ZH.get(params.get("sep", "; "), params.get("sep", "; ")).join(parts)
    if code not in ZH:
        return None
    return ZH[code].format(**{name: _param(name, value, lang) for name, value in params.items()})


def _param(name: str, value, lang):
    if isinstance(value, dict) and "code" in value:
        return say(value, lang)
    if isinstance(value, Message):
        return say(value, lang)
    if name == "state" and isinstance(value, str):
        return state_name(value, lang)
    if name == "method" and isinstance(value, str):  # a method's title
        from ui.params import METHODS, method_text

        key = next((key for key, method in METHODS.items() if method.title == value), None)
        return method_text(key, lang)[0] if key else value
    if name == "checkpointing" and value in ("on", "off"):
        return {"on": "开", "off": "关"}[value] if norm(lang) == "zh" else value
    return value


def say(message, lang) -> str:
    """Plain text in `lang`; without a translation, a Chinese prefix and the English after a colon."""
    text = translated(message, lang)
    return text if text is not None else f"{UNTRANSLATED}：{_fields(message).get('message') or ''}"


def say_html(message, lang) -> str:
    """Escaped HTML in `lang`; without a translation, a Chinese prefix and the English folded in a <details>."""
    text = translated(message, lang)
    if text is not None:
        return html.escape(text)
    english = str(_fields(message).get("message") or "")
    return f"<details><summary>{UNTRANSLATED}</summary>{html.escape(english)}</details>"


def where(text: str, lang) -> str:
    """A place in a data file ("line 3", "row 2") in `lang`."""
    found = PLACE.match(text or "")
    if not found or norm(lang) != "zh":
        return text or ""
    return f"第 {found.group(2)} 行" if found.group(1) == "line" else f"第 {found.group(2)} 条"


def status_error(status: dict):
    """A status file's error as a message: its catalogue form while it belongs to the error, else the text."""
    i18n = status.get("error_i18n")
    if isinstance(i18n, dict) and i18n.get("message") == status.get("error"):
        return i18n
    return status.get("error") or ""


def data_error(err: dict, lang) -> list[str]:
    """The lines of a data error ({file, where, field, message, hint} + their codes): where, what, what to do."""
    field = err.get("field")
    place = ("，" if norm(lang) == "zh" else ", ").join(
        p for p in (err.get("file"), where(err.get("where", ""), lang),
                    field and say(Message("data.where_field", field=field), lang)) if p)
    message = say(err.get("message_i18n") or err.get("message", ""), lang)
    hint = err.get("hint_i18n") or err.get("hint")
    lines = [f"{place}: {message}" if norm(lang) != "zh" else f"{place}：{message}"]
    if _fields(hint).get("message"):
        lines.append(("怎么办：" if norm(lang) == "zh" else "What to do: ") + say(hint, lang))
    return lines
