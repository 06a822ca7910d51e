"""Benchmark RL in the lab: rollout generation tokens/s (batched vs one prompt at a time) and DAPO optimiser steps/s.

Usage::

    python benchmarks/bench_rl.py [--student small] [--init DIR] [--steps 10] [--prompts 8] [--generations 8]
                                  [--max-new-tokens 96] [--repeats 3] [--threads 1] [--json OUT]

* **Generation**: ``prompts x generations`` sampled completions (T=1) of up to ``--max-new-tokens`` tokens, once as
  one batched ``model.generate`` call (what TRL's GRPOTrainer does per step) and once one prompt at a time; new
  tokens per second (EOS-terminated completions count their real length).
* **RL**: :func:`molesyn_lib.rl.train_rl` for ``--steps`` steps (evaluation on 8 held-out tasks at the start and
  the end only); optimiser steps per second (evaluation excluded), rollout tokens per second inside the trainer, and
  the split of a step into generation, update and the monitor's KL pass.

Without ``--init`` the student is untrained, so every completion runs to the budget (a clean upper bound on work
per step); with an SFT checkpoint completions stop at EOS, as in the chapter. Medians over ``--repeats``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


def load(args: argparse.Namespace):
    from molesyn_lib.lab.student import build_student, load_student

    return load_student(args.init) if args.init else build_student(args.student, seed=0)


def new_tokens(tokenizer, sequences, prompt_width: int) -> int:
    import torch

    completion = sequences[:, prompt_width:]
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    count = 0
    for row in completion:
        ids = row.tolist()
        n = ids.index(eos) + 1 if eos in ids else len([t for t in ids if t != pad])
        count += n
    return count if count else int(torch.numel(completion))


def bench_generation(student, prompts: list[str], max_new_tokens: int, batched: bool) -> tuple[float, int]:
    import torch

    model, tokenizer = student.model.eval(), student.tokenizer
    kwargs = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_new_tokens": max_new_tokens,
                  "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(0)
    started = time.perf_counter()
    tokens = 0
    with torch.no_grad():
        groups = [prompts] if batched else [[p] for p in prompts]
        for group in groups:
            encoded = tokenizer(group, return_tensors="pt", padding=True, add_special_tokens=False)
            out = model.generate(**encoded, **kwargs)
            tokens += new_tokens(tokenizer, out, encoded["input_ids"].shape[1])
    return time.perf_counter() - started, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="small")
    parser.add_argument("--init", default=None, help="SFT checkpoint directory (default: an untrained student)")
    parser.add_argument("--task-length", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    from molesyn_lib.lab.student import load_student
    from molesyn_lib.lab.tasks import TaskConfig, make_splits
    from molesyn_lib.rl.trainer import RLConfig, train_rl

    torch.set_num_threads(args.threads)
    splits = make_splits(2000, 8, TaskConfig(length=args.task_length))
    prompts = [t.prompt for t in splits.train[: args.prompts] for _ in range(args.generations)]
    student = load(args)
    results: dict[str, object] = {"student": args.init or args.student, "params": student.n_params,
                                  "completions_per_step": len(prompts), "max_new_tokens": args.max_new_tokens,
                                  "threads": args.threads, "torch": torch.__version__}
    for mode in ("batched", "one_at_a_time"):
        rates, secs = [], []
        for _ in range(args.repeats):
            seconds, tokens = bench_generation(student, prompts, args.max_new_tokens, mode == "batched")
            rates.append(tokens / seconds)
            secs.append(seconds)
        results[f"generate_{mode}_tokens_per_s"] = statistics.median(rates)
        results[f"generate_{mode}_seconds"] = statistics.median(secs)
        print(f"generation {mode:>14}: {statistics.median(rates):10,.0f} new tokens/s "
              f"({statistics.median(secs):.2f} s for {len(prompts)} completions)", flush=True)
    results["batched_speedup"] = (results["generate_batched_tokens_per_s"]
                                  / results["generate_one_at_a_time_tokens_per_s"])

    rows = []
    for repeat in range(args.repeats):
        fresh = load(args) if args.init else student
        if args.init is None:
            fresh = load_student(student.save(f"/tmp/bench_rl_student_{os.getpid()}"))
        config = RLConfig(steps=args.steps, prompts_per_step=args.prompts, num_generations=args.generations,
                          max_completion_length=args.max_new_tokens, eval_every=10_000, eval_greedy=False,
                          seed=repeat, threads=args.threads)
        result = train_rl(fresh, splits.train, splits.test, config)
        steps = result.steps
        rows.append({"steps_per_s": result.steps_per_second,
                     "rollout_tokens_per_s": result.rollout_tokens_per_second,
                     "generate_s_per_step": statistics.mean(s["generate_seconds"] for s in steps),
                     "update_s_per_step": statistics.mean(s["update_seconds"] for s in steps),
                     "tokens_per_step": statistics.mean(s["rollout_tokens"] for s in steps),
                     "seconds": result.seconds, "eval_seconds": result.eval_seconds})
        print(f"RL repeat {repeat}: {rows[-1]['steps_per_s']:.2f} steps/s, "
              f"{rows[-1]['rollout_tokens_per_s']:,.0f} rollout tokens/s", flush=True)
    for key in rows[0]:
        results[f"rl_{key}"] = statistics.median(r[key] for r in rows)
    results["rl_repeats"] = rows
    print(json.dumps({k: v for k, v in results.items() if k != "rl_repeats"}, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
