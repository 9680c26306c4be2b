"""The Train tab's words and its settings' Chinese labels (ui/train_tab.py builds the tab)."""
from __future__ import annotations

TEXT = {
    "en": {
        "method": "Method", "method_info": "What gets trained. Each method shows its own settings below.",
        "name": "Run name", "name_info": "Used in the run folder's name.",
        "method_settings": "**Method settings**", "train_settings": "**Training settings**",
        "advanced": "More settings: regularisation, speed, continual learning, distillation, several devices",
        "preview": "Preview command", "preview_label": "The command that runs this training (run it by hand "
                   "elsewhere, e.g. on a multi-GPU machine)",
        "start": "Start training", "stop": "Stop (keeps the result so far)", "resume": "Resume",
        "run": "Run", "run_info": "The run shown below; new runs are followed automatically.",
        "loss": "Loss", "lr": "Learning rate", "rewards": "Preference rewards and accuracy",
        "logps": "Log-probabilities of the answers", "log": "train.log (last lines)", "all_runs": "All runs",
        "need_attention": "{n} setting(s) need attention before training can start",
        "cannot_start": "Could not start the run",
        "started": "Started {run}. Loss points appear below once the model has loaded.",
        "chat_unloaded": "The chat models were unloaded: the memory estimate says training and chat do not fit "
                         "on this device together.",
        "cannot_stop": "Could not stop the run", "stopping": "Stopping {run}: the result is saved at the current step.",
        "cannot_resume": "Could not resume the run", "resuming": "Resuming {run} from its last checkpoint.",
        "failed": "{run} failed",
        "attention": "{run} needs your attention",
        "runs_cols": "run|method|data|started|state|step|final loss|final eval loss|best eval loss|note",
        "no_runs": "(no runs yet)", "stopped_early": "stopped early", "reproduces": "reproduces {run}",
        "delete": "Delete run…", "confirm_delete": "Delete {run} and all its files (result, checkpoints, "
        "evaluations)? This cannot be undone.", "delete_yes": "Delete for good", "delete_no": "Cancel",
        "deleted": "Deleted {run}.", "cannot_delete": "Could not delete the run",
        "method_switched": "Switched to {method}: {changes} (the method's starting values; settings you changed "
                           "stay).",
        "changed_setting": "{setting} {before} → {after}",
        "summary_model": "Model", "summary_method": "Method", "summary_data": "Data", "summary_memory": "Memory",
        "data_line": "{name} · {format} · {rows} rows · {trained} trained tokens",
        "data_unchecked": "{name} · not checked yet (Data tab)",
        "data_unusable": "{name} · cannot be used as it is (see the Data tab)",
        "checking_data": "Checking the data before the run starts…",
        "step": "step", "value": "value", "series": "series",
    },
    "zh": {
        "method": "方法", "method_info": "训练哪些参数。每种方法在下方显示自己的设置。",
        "name": "训练名称", "name_info": "用作训练文件夹名称的一部分。",
        "method_settings": "**方法设置**", "train_settings": "**训练设置**",
        "advanced": "更多设置：正则化、速度、持续学习、蒸馏、多设备",
        "preview": "预览命令", "preview_label": "运行这次训练的命令（可在别处手动运行，例如多 GPU 机器上）",
        "start": "开始训练", "stop": "停止（保留目前的结果）", "resume": "继续训练",
        "run": "训练", "run_info": "下方显示的训练；新开始的训练会自动跟随。",
        "loss": "损失", "lr": "学习率", "rewards": "偏好奖励与准确率", "logps": "回答的对数概率",
        "log": "train.log（最后几行）", "all_runs": "全部训练",
        "need_attention": "开始训练前有 {n} 项设置需要处理",
        "cannot_start": "无法开始训练",
        "started": "已开始 {run}。模型加载后，损失曲线会显示在下方。",
        "chat_unloaded": "已卸载对话模型：内存估算显示训练和对话无法同时放进这台设备。",
        "cannot_stop": "无法停止训练", "stopping": "正在停止 {run}：结果会保存在当前步。",
        "cannot_resume": "无法继续训练", "resuming": "正在从最后一个检查点继续 {run}。",
        "failed": "{run} 失败了",
        "attention": "{run} 需要你注意",
        "runs_cols": "运行|方法|数据|开始时间|状态|步数|最终损失|最终验证损失|最佳验证损失|备注",
        "no_runs": "（还没有运行）", "stopped_early": "提前停止", "reproduces": "复现 {run}",
        "delete": "删除训练…", "confirm_delete": "删除 {run} 及其所有文件（结果、检查点、评估）？此操作无法撤销。",
        "delete_yes": "永久删除", "delete_no": "取消",
        "deleted": "已删除 {run}。", "cannot_delete": "无法删除训练",
        "method_switched": "已切换到 {method}：{changes}（该方法的起始值；你改过的设置保持不变）。",
        "changed_setting": "{setting} {before} → {after}",
        "summary_model": "模型", "summary_method": "方法", "summary_data": "数据", "summary_memory": "内存",
        "data_line": "{name} · {format} · {rows} 行 · {trained} 个参与训练的词元",
        "data_unchecked": "{name} · 尚未检查（数据页）",
        "data_unusable": "{name} · 无法直接使用（见数据页）",
        "checking_data": "开始训练前正在检查数据…",
        "step": "步数", "value": "数值", "series": "曲线",
    },
}


TRAIN_PARAM_ZH = {
    "learning_rate": ("学习率", "每步的更新幅度：适配器用 1e-4 到 1e-3，全量微调约 1e-5。"),
    "max_steps": ("最大步数", "要运行的优化步数；0 表示按下面的轮数训练。"),
    "epochs": ("轮数", "遍历数据的次数（最大步数为 0 时使用）。"),
    "batch_size": ("批大小", "每步的样例数；内存不够时调低。"),
    "gradient_accumulation": ("梯度累积", "累加这么多步的梯度后再更新一次：不增加内存就能得到更大的有效批。"),
    "max_seq_len": ("最大序列长度", "样例的最大词元数；更长的会被截断（截断后没有可学内容的样例会被丢弃并计数）。"),
    "warmup_steps": ("预热步数", "学习率从 0 逐渐升高所用的步数。"),
    "scheduler": ("学习率调度", "预热之后学习率如何变化。"),
    "validation_split": ("验证集比例", "留出用于计算评估损失的样例比例（0 表示不留）。"),
    "precision": ("精度", "auto 在支持的 GPU 上选 bf16/fp16，在有 AMX 的 CPU 上选 bf16，其他 CPU 上用 fp32。"
                  "bf16/fp16：混合精度（保留 fp32 主权重）。"
                  "bf16_pure：权重、梯度和优化器状态全部用 bf16，全参数微调的内存减半；小于权重 1/256 的更新会被舍去，"
                  "适合适配器方法和较大的学习率。"),
    "optimizer": ("优化器", "adamw 几乎适用于所有情况；8 位版本在 CUDA 上更省内存。"),
    "seed": ("随机种子", "相同的种子 + 相同的设置 = 相同的训练。"),
    "weight_decay": ("权重衰减", "解耦权重衰减（AdamW）；全量微调时 0.01-0.1 起正则作用。"),
    "max_grad_norm": ("最大梯度范数", "把梯度范数裁剪到此值（0 表示不裁剪）。"),
    "logging_steps": ("记录间隔步数", "损失曲线上两个点之间的步数。"),
    "eval_steps": ("评估间隔步数", "两次评估损失之间的步数（0 表示只在结束时评估）。"),
    "save_steps": ("保存间隔步数", "两个可恢复检查点之间的步数（0 表示只在结束时保存）。"),
    "save_total_limit": ("保留的检查点数", "保留的检查点个数；更早的会被删除。"),
    "packing": ("打包", "无填充批次：样例首尾相接打包，每个样例只关注自身（更快，损失相同）。"),
    "fused_loss": ("融合损失", "分块计算损失，从不保存整批的 logits（大词表时更省内存）。"),
    "torch_compile": ("torch.compile 编译", "用 torch.compile 编译模型：最初几步较慢（编译），之后在 GPU 上可能更快。"
                                           "使用普通损失（完整 logits）。"
                                           "本项目尚未测量其速度（bench/results/ 中没有结果）。"),
    "start_from": ("从此运行开始", "持续学习：以一个较早运行（文件夹或编号）的结果作为本次的起点。"),
    "ewc_lambda": ("EWC 强度", "相对起点运行的弹性权重巩固强度（0 表示关闭；常用 1e3-1e5）。"),
    "ewc_samples": ("EWC 样例数", "用于估计起点运行 Fisher 信息的样例数。"),
    "replay": ("回放来源", "经验回放：混入一个较早运行（或数据文件）的训练数据。"),
    "replay_fraction": ("回放比例", "混入的回放数据比例（0 表示关闭）。"),
    "teacher": ("教师模型", "蒸馏：与本模型共用分词器的教师模型（文件夹、Hub 编号或较早的运行）；留空表示关闭。"),
    "alpha": ("蒸馏 alpha", "对教师 KL 的权重；1 - alpha 是标签损失的权重。"),
    "temperature": ("蒸馏温度", "使两个分布更平滑（常用 1-4）。"),
    "num_processes": ("进程数", "用于训练的进程（设备）数；大于 1 时通过 `accelerate launch` 启动。"),
    "distributed": ("分布式方式", "多个进程如何分担工作：数据并行，或分片（FSDP、DeepSpeed ZeRO-2/3，需已安装）。"),
    "accelerate_config": ("accelerate 配置文件", "一个 `accelerate config` 文件（例如用于多台机器）；"
                                                 "留空则用上面的设置。"),
    "num_machines": ("机器数", "一起训练的机器数；上面的进程数按每台机器计。"
                             "在每台机器上运行同一命令，各用自己的机器编号。"),
    "machine_rank": ("机器编号", "本机的编号：主机器为 0，其他机器为 1 到机器数减 1。"),
    "main_address": ("主机器地址", "其他机器连接的主机器地址（IP 或主机名）。"),
    "main_port": ("主机器端口", "主机器为其他机器监听的端口。"),
    "gradient_checkpointing": ("梯度检查点", "反向传播时重新计算激活：内存少很多，速度慢约 30%。"),
    "objective": ("训练目标", "sft 学习回答；dpo、orpo、simpo 从偏好对（prompt / chosen / rejected）学习，kto 从标记为"
                              "好或不好的回答学习。"),
    "report_to": ("记录到", "同时记录到 TensorBoard（RUN/tensorboard）和/或 MLflow（本地文件存储 RUN/mlruns）；"
                            "已安装时可用 W&B。"),
    "beta": ("beta", "模型可偏离参考模型的程度（DPO、KTO），几率比项的权重（ORPO），"
                     "或奖励尺度（SimPO；论文中为 2-10）。"),
    "loss_type": ("DPO 损失", "DPO 的损失：sigmoid（论文原版）、ipo（平方，带正则）或 hinge（SLiC）。"),
    "simpo_gamma": ("SimPO gamma", "SimPO 的目标奖励间隔。"),
    "desirable_weight": ("KTO 好回答权重", "KTO：好回答的权重（好回答较少时调高）。"),
    "undesirable_weight": ("KTO 坏回答权重", "KTO：坏回答的权重。"),
    "split": ("数据划分", "从 datasets 文件夹或 Hub 数据集读取的划分（split）。"),
    "subset": ("子集", "有多个配置的 Hub 数据集要读取的配置（子集）；留空为默认。"),
    "reasoning": ("推理过程", "数据中的推理过程：auto 在对话模板有位置时按模板渲染，否则内联为思考块写在回答之前；"
                  "inline 总是写进回答；drop 删除。保留的推理过程会参与训练。"),
}
