"""Benchmark: lab-student training throughput under TRL vs a plain PyTorch loop, and batched generation throughput.

Training: the same student (fresh init, same seed), the same prompt/completion rows (R1-style lab traces), the same
batch size, learning rate schedule and number of optimiser steps, one torch thread. The plain loop tokenizes once,
samples random batches, pads each batch to its longest row (right padding, prompt tokens masked with -100) and runs
forward/backward/AdamW/cosine schedule; TRL runs :func:`molesyn_lib.lab.student.train_student` (``SFTTrainer``).
Both count supervised completion tokens (EOS included) per second of the training loop only (model building and
dataset preparation excluded: TRL's preparation is reported separately as ``setup``). Batching is compared both
ways: the project's TRL setting groups rows by length (``train_sampling_strategy="group_by_length"``), so the plain
loop runs with uniformly random batches and with the same length grouping, and TRL also runs with random batches.
Each variant runs ``--repeats`` times; the median is reported.

Generation: greedy decoding of held-out prompts, batched (``--gen-batch``) vs one prompt at a time (a subset),
as new tokens per second.

Run: ``python benchmarks/bench_lab_train.py [--student tiny] [--steps 150] [--repeats 3] [--out FILE.json]``
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import TrainerCallback, get_cosine_schedule_with_warmup

from molesyn_lib import lab
from molesyn_lib.lab.student import (
    TrainConfig,
    build_student,
    completion_token_counts,
    sft_rows,
    train_student,
)


class LoopTimer(TrainerCallback):
    """Times the training loop proper (first step begin to train end) inside ``Trainer.train``."""

    def __init__(self) -> None:
        self.start = 0.0
        self.end = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.end = time.perf_counter()


def encode_rows(tokenizer, rows):
    examples = []
    for row in rows:
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        completion = tokenizer(row["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        examples.append((prompt + completion, [-100] * len(prompt) + completion))
    return examples


def batch_order(examples, batch_size: int, steps: int, grouped: bool, rng: random.Random) -> list[list[int]]:
    """Index batches: uniform random, or like transformers' LengthGroupedSampler (shuffle, then sort each
    megabatch of 50 batches by length) when ``grouped``."""
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = list(range(len(examples)))
        rng.shuffle(order)
        if grouped:
            mega = 50 * batch_size
            order = [i for s in range(0, len(order), mega)
                     for i in sorted(order[s:s + mega], key=lambda i: -len(examples[i][0]))]
        batches += [order[s:s + batch_size] for s in range(0, len(order) - batch_size + 1, batch_size)]
    return batches[:steps]


def plain_loop(student, rows, config: TrainConfig, steps: int, grouped: bool = False) -> tuple[float, int, int]:
    """Returns (seconds, supervised tokens, total tokens incl. padding) of a hand-written training loop."""
    examples = encode_rows(student.tokenizer, rows)
    pad = student.tokenizer.pad_token_id
    model = student.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    order = batch_order(examples, config.batch_size, steps, grouped, random.Random(config.seed))
    supervised = padded = 0
    started = time.perf_counter()
    for indices in order:
        batch = [examples[i] for i in indices]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, labs) in enumerate(batch):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            labels[row, :len(labs)] = torch.tensor(labs)
            mask[row, :len(ids)] = 1
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        supervised += int((labels != -100).sum())
        padded += input_ids.numel()
    return time.perf_counter() - started, supervised, padded


def trl_run(student, rows, config: TrainConfig) -> tuple[float, float, int]:
    """Returns (loop seconds, total seconds incl. setup, supervised tokens) of ``train_student``."""
    timer = LoopTimer()
    started = time.perf_counter()
    result = train_student(student, rows, config, callbacks=[timer])
    total = time.perf_counter() - started
    return timer.end - timer.start, total, result.completion_tokens


def generation(student, prompts, batch_size: int, max_new_tokens: int) -> float:
    """New tokens per second of greedy decoding (every prompt runs to ``max_new_tokens``: EOS disabled)."""
    model = student.model
    model.eval()
    new_tokens = 0
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start:start + batch_size]
            encoded = student.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**encoded, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=student.tokenizer.pad_token_id)
            new_tokens += (out.shape[1] - encoded["input_ids"].shape[1]) * len(batch)
    return new_tokens / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="tiny")
    parser.add_argument("--teacher", default="r1")
    parser.add_argument("--task-length", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gen-batch", type=int, default=256)
    parser.add_argument("--gen-prompts", type=int, default=256)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    task_config = lab.TaskConfig(length=args.task_length)
    splits = lab.make_splits(2000, args.gen_prompts, task_config)
    rows = sft_rows(lab.Teacher(args.teacher).traces(splits.train, seed=0, task_config=task_config))
    config = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, seed=0, threads=args.threads)
    probe_student = build_student(args.student)
    mean_tokens = statistics.mean(completion_token_counts(probe_student.tokenizer, rows))
    results: dict[str, Any] = {"student": args.student, "params": probe_student.n_params,
                                  "teacher": args.teacher, "task_length": args.task_length, "steps": args.steps,
                                  "batch_size": args.batch_size, "threads": args.threads,
                                  "mean_completion_tokens": round(mean_tokens, 1),
                                  "torch": torch.__version__}
    trl_loop, trl_total, plain, grouped, trl_random = [], [], [], [], []
    random_config = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, seed=0, threads=args.threads,
                                group_by_length=False)
    for repeat in range(args.repeats):
        loop_s, total_s, tokens = trl_run(build_student(args.student, seed=0), rows, config)
        trl_loop.append(tokens / loop_s)
        trl_total.append(tokens / total_s)
        loop_s, _, tokens = trl_run(build_student(args.student, seed=0), rows, random_config)
        trl_random.append(tokens / loop_s)
        seconds, supervised, padded = plain_loop(build_student(args.student, seed=0), rows, config, args.steps)
        plain.append(supervised / seconds)
        seconds, supervised_g, padded_g = plain_loop(build_student(args.student, seed=0), rows, config, args.steps,
                                                     grouped=True)
        grouped.append(supervised_g / seconds)
        print(f"repeat {repeat}: TRL {trl_loop[-1]:.0f} tok/s (loop, grouped), {trl_total[-1]:.0f} (with setup), "
              f"{trl_random[-1]:.0f} (random batches); plain {plain[-1]:.0f} (random, padding share "
              f"{1 - supervised / padded:.2f}), {grouped[-1]:.0f} (grouped, padding share "
              f"{1 - supervised_g / padded_g:.2f})", file=sys.stderr)
    results.update(trl_tokens_per_s=statistics.median(trl_loop),
                   trl_with_setup_tokens_per_s=statistics.median(trl_total),
                   trl_random_batches_tokens_per_s=statistics.median(trl_random),
                   plain_tokens_per_s=statistics.median(plain), plain_grouped_tokens_per_s=statistics.median(grouped))
    results["trl_over_plain"] = results["trl_tokens_per_s"] / results["plain_tokens_per_s"]
    results["trl_over_plain_same_batching"] = results["trl_tokens_per_s"] / results["plain_grouped_tokens_per_s"]
    results["trl_random_over_plain_random"] = (results["trl_random_batches_tokens_per_s"]
                                               / results["plain_tokens_per_s"])

    student = build_student(args.student, seed=0)
    prompts = [t.prompt for t in splits.test]
    batched = [generation(student, prompts, args.gen_batch, args.gen_tokens) for _ in range(args.repeats)]
    single = [generation(student, prompts[:16], 1, args.gen_tokens) for _ in range(args.repeats)]
    results.update(gen_batched_tokens_per_s=statistics.median(batched), gen_single_tokens_per_s=statistics.median(
        single), gen_batch=args.gen_batch, gen_prompts=len(prompts), gen_tokens=args.gen_tokens)
    text = json.dumps({k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else v)
                       for k, v in results.items()}, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
