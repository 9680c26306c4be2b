"""Chinese titles, summaries and parameter texts of the fine-tuning methods (engine/methods/*).

Merged into ui/params.py METHOD_ZH; keyed by method key and parameter name like it.
"""
from __future__ import annotations

_TARGETS = ("目标模块", "加适配器的层：all-linear、attention、mlp、模型自己的模块名（q_proj,v_proj；query_key_value），"
            "或对完整名称的 re:<正则表达式>。")
_LORA = {
    "r": ("秩 r", "更新的秩，即适配器的容量。大多数任务用 8-16 即可。"),
    "alpha": ("alpha", "更新的缩放系数（alpha / r）。常用秩的两倍。"),
    "dropout": ("dropout", "适配器输入上的 dropout；可缓解小数据集上的过拟合。"),
    "target_modules": _TARGETS,
    "bias": ("偏置", "同时训练偏置：none、all（模型中所有偏置）或 lora_only（加了适配器的层的偏置）。"
                     "Llama 类模型没有偏置。"),
    "modules_to_save": ("整体训练的模块", "与适配器一起完整训练并保存的模块：embed_tokens、lm_head（例如新增词元时）。"
                                          "每个约 词表 x 隐藏维度 个参数。"),
    "use_rslora": ("rsLoRA", "按 alpha/sqrt(r) 而非 alpha/r 缩放；高秩时更稳定。"),
    "use_dora": ("DoRA", "学习每个输出的幅度和一个 LoRA 方向；更接近全量微调，每步更慢。"),
    "init": ("初始化", "适配器初始权重：default（B = 0）、gaussian、pissa（主奇异向量，收敛更快）"
                       "或 olora（基于 QR）。"),
    "loraplus_lr_ratio": ("LoRA+ 学习率比", "LoRA+：B 的学习率 = 该比值 x A 的学习率（常用 16）；0 表示关闭。"),
}
_DROPS = {
    "rank_dropout": ("秩 dropout", "训练时在秩维度上的 dropout。"),
    "module_dropout": ("模块 dropout", "每步整层跳过适配器的概率。"),
}
_TOKENS = ("虚拟词元数", "加在每个序列上的虚拟词元：越多容量越大，序列也越长（更慢）。")

METHOD_ZH = {
    "lora": {"title": "LoRA", "summary": "在冻结的权重旁训练小的低秩矩阵；大多数任务的默认选择。", "params": _LORA},
    "qlora": {
        "title": "QLoRA（4 位基座）",
        "summary": "在 4 位（NF4）基座模型上做 LoRA：权重内存约为四分之一，每步稍慢；用于 16 位放不下的模型。",
        "params": {**_LORA,
                   "quant_type": ("4 位数据类型", "nf4（正态浮点，适合正态分布的权重）或 fp4。"),
                   "double_quant": ("双重量化", "把量化常数也量化（每个权重约省 0.4 位）。"),
                   "compute_dtype": ("计算精度", "每次矩阵乘法时 4 位权重反量化成的类型："
                                                 "auto（GPU 支持时 bf16，否则 fp32）、bf16、fp16 或 fp32。")},
    },
    "lora8bit": {
        "title": "LoRA（8 位基座）",
        "summary": "在 LLM.int8 基座模型上做 LoRA：权重内存为 16 位的一半，量化误差比 4 位小；每步比普通 LoRA 慢。",
        "params": _LORA,
    },
    "adalora": {
        "title": "AdaLoRA",
        "summary": "训练中把秩预算移到最重要的层的 LoRA；适合参数预算紧的情况。需要确定的训练步数。",
        "params": {
            "target_r": ("目标秩", "最终保留的平均秩（预算）。"),
            "init_r": ("初始秩", "每个适配层开始时的秩（高于目标秩）。"),
            "alpha": _LORA["alpha"], "dropout": _LORA["dropout"], "target_modules": _TARGETS,
            "tinit": ("预热步数", "开始裁剪秩之前的步数。"),
            "tfinal": ("最终步数", "最后固定秩、只微调保留部分的步数。"),
            "deltaT": ("重新分配间隔", "两次预算重新分配之间的步数。"),
            "orth_reg_weight": ("正交正则权重", "P 和 Q 上正交正则项的权重。"),
        },
    },
    "loha": {
        "title": "LoHa",
        "summary": "两个低秩更新的 Hadamard 积：同样大小下比 LoRA 表达力更强（同 r 时参数是 LoRA 的两倍）；可合并。",
        "params": {"r": ("秩 r", "两个乘积各自的秩。"), "alpha": _LORA["alpha"], **_DROPS, "target_modules": _TARGETS},
    },
    "lokr": {
        "title": "LoKr",
        "summary": "Kronecker 积更新：用很少的参数得到满秩的变化；可合并。常用于扩散模型，也适合小适配器。",
        "params": {"r": ("秩 r", "较大的 Kronecker 因子（分解时）的秩。"), "alpha": _LORA["alpha"], **_DROPS,
                   "decompose_both": ("两个因子都分解", "把较小的因子也写成低秩乘积。"),
                   "decompose_factor": ("分解因子", "Kronecker 拆分的大小（-1：最接近平方根）。"),
                   "target_modules": _TARGETS},
    },
    "ia3": {
        "title": "IA3",
        "summary": "每个适配层学习一个缩放向量（每层几千个参数）；最小的适配器，可合并；"
                   "适合轻量调整和一个基座配多个适配器。",
        "params": {
            "target_modules": ("目标模块", "激活被缩放的层：auto（键、值和前馈输出投影，与论文相同）、all-linear、"
                               "attention、mlp、模块名或 re:<正则>。"),
            "feedforward_modules": ("前馈模块", "其中哪些是前馈层（缩放其输入而不是输出）：auto（前馈块的输出投影），"
                                    "或模块名 / re:<正则>；只算目标模块中的。"),
        },
    },
    "prompt_tuning": {
        "title": "提示微调（Prompt tuning）",
        "summary": "只学习放在每个输入前的几个虚拟词元的嵌入（几千个参数）；在大模型上效果最好，用于引导任务或格式。",
        "params": {"num_virtual_tokens": _TOKENS,
                   "init": ("初始化", "从随机嵌入开始，或从 init_text 的词元嵌入开始。"),
                   "init_text": ("初始化文本", "用于初始化虚拟词元的文本（init: text）；按词元数重复或截断。")},
    },
    "p_tuning": {
        "title": "P-tuning",
        "summary": "由小型 MLP/LSTM 提示编码器生成的虚拟词元；比提示微调训练更稳。编码器只在训练时需要。",
        "params": {"num_virtual_tokens": _TOKENS,
                   "encoder": ("提示编码器", "MLP（推荐）或 LSTM。"),
                   "encoder_hidden_size": ("编码器隐藏维度", "提示编码器的隐藏宽度。"),
                   "encoder_num_layers": ("编码器层数", "LSTM 层数（MLP 固定为 3 个线性层）。"),
                   "encoder_dropout": ("编码器 dropout", "LSTM 编码器内部的 dropout。")},
    },
    "prefix_tuning": {
        "title": "前缀微调（Prefix tuning）",
        "summary": "为每个注意力层学习键/值前缀（训练时经过一个 MLP）；比提示微调容量更大，模型本身不变。",
        "params": {"num_virtual_tokens": _TOKENS,
                   "prefix_projection": ("前缀投影", "通过两层 MLP 生成前缀（论文的重参数化）；"
                                                     "关闭则直接学习前缀（即 P-tuning v2）。"),
                   "encoder_hidden_size": ("MLP 隐藏维度", "前缀 MLP 的隐藏宽度。")},
    },
    "p_tuning_v2": {
        "title": "P-tuning v2（深度提示）",
        "summary": "每一层上的可学习提示，直接训练（无 MLP）；在许多任务上接近 LoRA，模型本身不变。",
        "params": {"num_virtual_tokens": _TOKENS,
                   "init": ("初始化", "从模型自己在 init_text 上的键和值开始，或从随机值开始（peft 的默认）。"),
                   "init_text": ("初始化文本", "其键和值作为前缀起点的文本（init: text）；按虚拟词元数重复或截断。")},
    },
    "adapter": {
        "title": "瓶颈适配器（Adapter）",
        "summary": "在注意力和/或前馈块之后插入小的瓶颈 MLP（Houlsby / Pfeiffer）；经典的适配器，便于按任务切换。"
                   "作为适配器提供，不合并。",
        "params": {
            "style": ("位置", "houlsby（注意力之后和前馈块之后）或 pfeiffer（仅前馈块之后；参数减半）。"),
            "reduction_factor": ("缩减系数", "隐藏维度 / 瓶颈宽度：16 表示 576 宽的模型得到 36 宽的适配器。"
                                             "越小容量越大。"),
            "non_linearity": ("激活函数", "瓶颈内部的激活函数。"),
        },
    },
    "bitfit": {
        "title": "BitFit（仅偏置）",
        "summary": "只训练偏置项（远少于 0.1% 的权重）；轻量、便宜的更新。"
                   "没有偏置的模型（Llama 类）在配置允许时加上初始为零的偏置。",
        "params": {"biases": ("偏置", "训练哪些偏置：all、attention（注意力块的线性层）、mlp（前馈块的）或 norm"
                              "（LayerNorm 偏置）。缺少的 attention/mlp 偏置在模型配置有开关时以零加上。")},
    },
    "freeze": {
        "title": "冻结微调（顶层）",
        "summary": "只训练最上面的 N 层（和选定的模块）；因为下层不需要梯度，内存远少于全量微调。适合调整风格或格式。",
        "params": {
            "layers": ("层数", "从顶层往下数，训练多少个解码器层。"),
            "modules": ("层内模块", "这些层中训练哪些部分：all、attention、mlp，或模型自己的模块名（self_attn、"
                        "q_proj,v_proj,input_layernorm；GPT-2：attn、c_attn、ln_1……）。"),
            "extra": ("额外模块", "层外也训练的模块：norm（最终归一化）、embed_tokens、"
                                  "lm_head（许多小模型中与嵌入共享）；留空表示无。"),
        },
    },
    "layerwise": {
        "title": "逐层解冻",
        "summary": "先训练顶层，每 K 步或每个 epoch 再往下解冻一层；"
                   "比全量微调更少破坏模型已有的知识（小数据、灾难性遗忘）。",
        "params": {
            "schedule": ("解冻时机", "每 every 个优化步（steps）或每个 epoch 解冻下一批层。"),
            "every": ("间隔步数", "两次解冻之间的优化步数（schedule: steps）。"),
            "layers_per_stage": ("每阶段层数", "开始时和每个阶段解冻的层数。"),
            "max_layers": ("最多层数", "训练到这么多顶层后停止解冻（0：全部层）。"),
        },
    },
    "full": {
        "title": "全量微调",
        "summary": "训练所有权重；容量最大，内存也最多（整个模型的权重、梯度和优化器状态）。适合小模型或大显存。",
        "params": {},
    },
}
