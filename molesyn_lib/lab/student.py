"""Lab students: small causal LMs trained from scratch (or SmolLM2-135M) with TRL's ``SFTTrainer``.

* :data:`STUDENT_SPECS`: named sizes of a Qwen2 (or Llama) config initialised from scratch with the character
  tokenizer of :mod:`.tokenizer` (``micro`` 13k params for tests, ``tiny`` 0.13M for the CPU smoke profile,
  ``small`` 1.0M = the feasibility study's model, ``base`` 14M for a GPU) and ``smollm2``: SmolLM2-135M-Instruct from
  :func:`molesyn_lib.models.smollm2_path` (its own BPE tokenizer; imported lazily).
* :func:`sft_rows`: prompt/completion rows (``Q:1+8-3>`` -> ``step;step;A 6``) from lab traces.
* :func:`train_student`: SFT on those rows for a budget of **supervised completion tokens** (the EOS TRL appends
  included), not steps, so teachers with longer traces get the same amount of supervision; the step count is
  ``ceil(budget / (batch_size * mean completion tokens))``. CPU settings as the project requires (fp32, no
  activation checkpointing, no checkpoints written, no reporting); batches are grouped by length to cut padding.
* :class:`Student`: model + tokenizer, batched generation (greedy or sampled, seeded without touching the global RNG
  state), :meth:`Student.save` / :func:`load_student`.
"""
from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PrinterCallback,
    Qwen2Config,
    Qwen2ForCausalLM,
    TrainerCallback,
)
from transformers import set_seed as hf_set_seed
from transformers.utils import logging as hf_logging

from ..errors import InputError, MolesynError, lookup
from ..models import load_causal_lm, smollm2_path
from ..traces import Trace
from .grammar import ANSWER_PREFIX, render_completion
from .tasks import task_from_question
from .tokenizer import char_tokenizer

STUDENT_META_FILE = "lab_student.json"


@dataclass(frozen=True)
class StudentSpec:
    """Architecture of a from-scratch student (ignored for ``pretrained`` ones).

    Attributes:
        name: the size's name.
        architecture: ``qwen2`` or ``llama``.
        hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size: the transformer's shape.
        max_positions: longest prompt + completion in tokens.
        pretrained: load SmolLM2-135M-Instruct instead of initialising from scratch.
    """

    name: str
    architecture: str = "qwen2"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 256
    max_positions: int = 512
    pretrained: bool = False


STUDENT_SPECS: dict[str, StudentSpec] = {
    "micro": StudentSpec("micro", hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64),
    "tiny": StudentSpec("tiny", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256),
    "small": StudentSpec("small", hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=512),
    "base": StudentSpec("base", hidden_size=384, num_layers=8, num_heads=8, num_kv_heads=4, intermediate_size=1536),
    "smollm2": StudentSpec("smollm2", pretrained=True),
}


def get_student_spec(spec: str | StudentSpec) -> StudentSpec:
    if isinstance(spec, StudentSpec):
        return spec
    return lookup(STUDENT_SPECS, spec, "student")


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """Silence transformers' and datasets' info logging and datasets' progress bars for the duration."""
    import datasets

    previous = hf_logging.get_verbosity()
    bars_were_on = datasets.utils.logging.is_progress_bar_enabled()
    hf_bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if hf_bars_were_on:
            hf_logging.enable_progress_bar()
        if bars_were_on:
            datasets.utils.logging.enable_progress_bar()


class Student:
    """A causal LM and its tokenizer, with batched generation and save/load.

    Attributes:
        model: the ``PreTrainedModel``.
        tokenizer: its tokenizer (left padding).
        spec: the size it was built with.
        meta: training provenance (teacher, budget, ...); ``max_completion_tokens`` sizes generation.
    """

    def __init__(self, model: Any, tokenizer: Any, spec: StudentSpec, meta: dict[str, Any] | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def save(self, directory: str | Path) -> Path:
        """Write the model, tokenizer and ``lab_student.json`` (spec + meta) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with quiet_hf():
            self.model.save_pretrained(directory)
            self.tokenizer.save_pretrained(directory)
        (directory / STUDENT_META_FILE).write_text(json.dumps({"spec": asdict(self.spec), "meta": self.meta},
                                                              indent=2, default=str) + "\n")
        return directory

    def default_max_new_tokens(self) -> int:
        longest = int(self.meta.get("max_completion_tokens") or 160)
        return int(1.5 * longest) + 8

    @torch.no_grad()
    def generate(self, prompts: Sequence[str], temperature: float = 0.0, max_new_tokens: int | None = None,
                 batch_size: int = 256, seed: int = 0) -> list[str]:
        """Continue each prompt; greedy when ``temperature == 0`` else pure sampling (no top-k/top-p) at that
        temperature, seeded by ``seed`` without disturbing the caller's global RNG state."""
        max_new_tokens = max_new_tokens or self.default_max_new_tokens()
        was_training = self.model.training
        self.model.eval()
        outputs: list[str] = []
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id,
                                  "eos_token_id": self.tokenizer.eos_token_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                for start in range(0, len(prompts), batch_size):
                    batch = list(prompts[start:start + batch_size])
                    encoded = self.tokenizer(batch, return_tensors="pt", padding=True,
                                             add_special_tokens=False).to(self.model.device)
                    generated = self.model.generate(**encoded, **kwargs)
                    outputs += self.tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1]:],
                                                           skip_special_tokens=True)
        finally:
            if was_training:
                self.model.train()
        return outputs


def build_student(spec: str | StudentSpec = "tiny", seed: int = 0) -> Student:
    """A freshly initialised student (``torch`` seeded with ``seed``), or SmolLM2-135M for ``smollm2``."""
    spec = get_student_spec(spec)
    hf_set_seed(seed)
    if spec.pretrained:
        path = smollm2_path()
        with quiet_hf():  # a private copy (reuse=False): training changes its weights
            model, tokenizer = load_causal_lm(path, reuse=False)
        return Student(model, tokenizer, spec, {"init": str(path)})
    tokenizer = char_tokenizer()
    common = {"vocab_size": len(tokenizer), "hidden_size": spec.hidden_size,
              "intermediate_size": spec.intermediate_size, "num_hidden_layers": spec.num_layers,
              "num_attention_heads": spec.num_heads, "num_key_value_heads": spec.num_kv_heads,
              "max_position_embeddings": spec.max_positions, "tie_word_embeddings": True,
              "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
              "eos_token_id": tokenizer.eos_token_id}
    if spec.architecture == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    elif spec.architecture == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    else:
        raise MolesynError(f"unknown student architecture {spec.architecture!r} (qwen2 or llama)")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return Student(model, tokenizer, spec, {"init": "scratch", "seed": seed})


def load_student(directory: str | Path) -> Student:
    """Load a student written by :meth:`Student.save` (raises :class:`InputError` if it is not one)."""
    directory = Path(directory)
    meta_path = directory / STUDENT_META_FILE
    if not meta_path.is_file():
        raise InputError(f"not a lab student checkpoint (no {STUDENT_META_FILE})", directory)
    try:
        record = json.loads(meta_path.read_text())
        spec = StudentSpec(**record["spec"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable {STUDENT_META_FILE} ({exc})", meta_path) from None
    with quiet_hf():  # an absolute path, never taken for a model alias such as "smollm2"
        model, tokenizer = load_causal_lm(directory.resolve(), reuse=False)
    return Student(model, tokenizer, spec, record.get("meta") or {})


# ----------------------------------------------------------------------------------------------------- data
def final_answer_line(trace: Trace) -> str | None:
    """The trace's answer as ``A <n>`` (from ``final`` as ``A n`` or ``\\boxed{n}``), else ``None``."""
    import re

    final = (trace.final or "").strip()
    if final.startswith(ANSWER_PREFIX):
        return final
    boxed = re.search(r"\\boxed\{\s*(-?\d+)\s*\}", final)
    if boxed:
        return f"{ANSWER_PREFIX}{boxed.group(1)}"
    return None


def sft_rows(traces: Sequence[Trace]) -> list[dict[str, str]]:
    """Prompt/completion rows from lab traces: ``Q:<chain>>`` -> ``step;...;A n``.

    Answer steps inside ``steps`` (``\\boxed{..}`` or ``A n``, as MOLE-SYN traces carry) are dropped; a trace
    without a parseable question or final answer raises :class:`InputError` naming its source.
    """
    import re

    rows = []
    for trace in traces:
        where = trace.source or trace.trace_id
        task = task_from_question(trace.question, where)
        final = final_answer_line(trace)
        if final is None:
            raise InputError(f"trace {trace.trace_id} has no final answer ('final': 'A n' or '\\boxed{{n}}')", where)
        steps = [s for s in trace.steps if not re.search(r"\\boxed\{|^A -?\d+$", s.strip())]
        rows.append({"prompt": task.prompt, "completion": render_completion(steps, final)})
    return rows


def completion_token_counts(tokenizer: Any, rows: Sequence[dict[str, str]]) -> list[int]:
    """Supervised tokens per row: the completion's tokens plus the EOS TRL appends."""
    encoded = tokenizer([r["completion"] for r in rows], add_special_tokens=False)["input_ids"]
    return [len(ids) + 1 for ids in encoded]


# ------------------------------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """SFT settings.

    Attributes:
        token_budget: supervised completion tokens to train on (sets the number of steps). ``None``: use ``epochs``.
        epochs: passes over the rows when ``token_budget`` is ``None``.
        max_steps: explicit number of optimiser steps (overrides both).
        batch_size: rows per step.
        learning_rate: peak AdamW learning rate; ``warmup_ratio`` of the steps warm up, then ``lr_scheduler``.
        weight_decay: AdamW weight decay.
        seed: data order (and, through :func:`build_student`, initialisation) seed.
        threads: torch threads for this process (``None``: leave as is). Parallel runs use 1 each.
        group_by_length: batch rows of similar length (less padding; order still random).
        logging_steps: how often the loss is logged into ``TrainResult.history``.
        progress: show the trainer's progress bar.
        bf16: bfloat16 mixed precision (GPU full profile; the CPU default is fp32 for exact reproducibility).
    """

    token_budget: int | None = 200_000
    epochs: float | None = None
    max_steps: int | None = None
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_ratio: float = 0.05
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    seed: int = 0
    threads: int | None = 1
    group_by_length: bool = True
    logging_steps: int = 25
    progress: bool = False
    bf16: bool = False

    def steps_for(self, tokens_per_row: Sequence[int]) -> int:
        if self.max_steps is not None:
            return max(1, int(self.max_steps))
        mean = sum(tokens_per_row) / max(1, len(tokens_per_row))
        if self.token_budget is not None:
            return max(1, math.ceil(self.token_budget / (self.batch_size * mean)))
        epochs = self.epochs if self.epochs is not None else 1.0
        return max(1, math.ceil(epochs * len(tokens_per_row) / self.batch_size))


@dataclass
class TrainResult:
    """What a training run did: optimiser steps, supervised tokens (expected from the mean row), wall seconds,
    mean training loss, the trainer's log history, and throughput."""

    steps: int
    completion_tokens: int
    seconds: float
    train_loss: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else float("nan")


def sft_config(config: TrainConfig, steps: int, output_dir: str, max_length: int) -> Any:
    """The TRL ``SFTConfig`` for ``config`` with the project's CPU settings."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir, max_steps=steps, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=int(config.warmup_ratio * steps), weight_decay=config.weight_decay, max_length=max_length,
        use_cpu=not torch.cuda.is_available(), bf16=config.bf16, activation_checkpointing=False, save_strategy="no",
        report_to="none", logging_steps=config.logging_steps, dataloader_num_workers=0, seed=config.seed,
        data_seed=config.seed, disable_tqdm=not config.progress,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
    )


def train_student(student: Student, rows: Sequence[dict[str, str]], config: TrainConfig | None = None,
                  callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """SFT ``student`` in place on prompt/completion ``rows`` with TRL's ``SFTTrainer``.

    The number of steps follows the token budget (see :class:`TrainConfig`); ``student.meta`` records the longest
    completion (for generation) and appends this phase to ``meta["phases"]``. Call it again with other rows for
    sequential (A-then-B) training; each call has its own warm-up and schedule.
    """
    from datasets import Dataset
    from trl import SFTTrainer

    config = config or TrainConfig()
    if not rows:
        raise MolesynError("no training rows")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    tokens = completion_token_counts(student.tokenizer, rows)
    prompt_tokens = [len(ids) for ids in student.tokenizer([r["prompt"] for r in rows],
                                                           add_special_tokens=False)["input_ids"]]
    max_length = max(p + t for p, t in zip(prompt_tokens, tokens)) + 1
    steps = config.steps_for(tokens)
    student.meta["max_completion_tokens"] = max(int(student.meta.get("max_completion_tokens") or 0), max(tokens))
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    with tempfile.TemporaryDirectory(prefix="molesyn-lab-") as tmp, quiet_hf():
        trainer = SFTTrainer(model=student.model, args=sft_config(config, steps, tmp, max_length),
                             train_dataset=dataset, processing_class=student.tokenizer, callbacks=list(callbacks))
        if not config.progress:
            trainer.remove_callback(PrinterCallback)
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
    student.model = trainer.model
    student.model.eval()
    mean_tokens = sum(tokens) / len(tokens)
    result = TrainResult(steps=steps, completion_tokens=round(steps * config.batch_size * mean_tokens),
                         seconds=seconds, train_loss=float(output.training_loss),
                         history=[dict(h) for h in trainer.state.log_history])
    student.meta.setdefault("phases", []).append({"rows": len(rows), "steps": steps,
                                                  "completion_tokens": result.completion_tokens,
                                                  "seconds": round(seconds, 2), "train_loss": result.train_loss})
    return result
