"""``molesyn lab rl``: DAPO-style RL (TRL's GRPOTrainer) of a lab student from a checkpoint, with per-step logs.

``molesyn lab rl --init DIR --steps N --seed S --out DIR`` loads a lab student (a directory written by
``molesyn lab train``, or ``untrained:SIZE`` for a fresh one), runs RL on fresh tasks of its training family with
the verified-correctness reward (``--format-weight`` adds the format term, ``--overlong`` DAPO's soft overlong
punishment), evaluates held-out accuracy every ``--eval-every`` steps, and writes to ``--out``: the trained student,
``rl_steps.jsonl`` (one record per step: reward, reward spread within groups, length, answer share, behaviour shares,
KL to the initial policy, ...), ``rl_evals.json`` (held-out accuracy and transfer-graph drift) and
``rl_summary.json`` (final accuracy, collapses, monotonicity, drift; also printed to stdout).

The subcommand is added to the ``lab`` command registered by :mod:`molesyn_lib.commands.lab` (modules register in
name order, so ``lab`` exists when this runs); without it, it falls back to a top-level ``molesyn rl``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError, MolesynError
from . import TRAIN_PROMPTS_FILE, student_task_config


def _load_init(spec: str):
    from ..lab.student import build_student, load_student

    if spec.startswith("untrained:"):
        return build_student(spec.split(":", 1)[1] or "tiny", seed=0), None
    directory = Path(spec)
    if not directory.is_dir():
        raise InputError("no such checkpoint directory (expected a `molesyn lab train` output or untrained:SIZE)",
                         directory)
    return load_student(directory), directory


def run_rl_command(args: argparse.Namespace) -> int:
    from ..lab.tasks import generate_tasks
    from ..reporting import jsonable
    from ..rl.stability import run_stability
    from ..rl.trainer import RLConfig, train_rl

    if args.prompts < 1 or args.eval_n < 1:
        raise MolesynError("--prompts and --eval-n must be at least 1")
    config = RLConfig(steps=args.steps, prompts_per_step=args.batch_prompts, num_generations=args.generations,
                      learning_rate=args.lr, epsilon=args.epsilon, epsilon_high=args.epsilon_high, beta=args.beta,
                      temperature=args.temperature, max_completion_length=args.max_completion_length,
                      format_weight=args.format_weight, overlong=args.overlong, overlong_cache=args.overlong_cache,
                      num_iterations=args.num_iterations, steps_per_generation=args.steps_per_generation,
                      dynamic_sampling=args.dynamic_sampling,
                      eval_every=args.eval_every, eval_samples=args.eval_samples, seed=args.seed,
                      threads=args.threads, progress=not args.quiet)
    student, init_dir = _load_init(args.init)
    task = student_task_config(student.meta, args.task_length)
    exclude: list[str] = []
    if init_dir is not None and (init_dir / TRAIN_PROMPTS_FILE).is_file():
        exclude = (init_dir / TRAIN_PROMPTS_FILE).read_text().split()
    held_out = generate_tasks(args.eval_n, task, seed=args.eval_seed, exclude=exclude)
    prompts = generate_tasks(args.prompts, task, seed=args.seed + 1, exclude={t.prompt for t in held_out})
    result = train_rl(student, prompts, held_out, config)
    out = Path(args.out)
    student.meta.update(task=task.to_dict(), rl_init=str(init_dir or args.init))
    student.save(out)
    with (out / "rl_steps.jsonl").open("w") as handle:
        for record in result.steps:
            handle.write(json.dumps(jsonable(record)) + "\n")
    (out / "rl_evals.json").write_text(json.dumps(jsonable(result.evals), indent=2) + "\n")
    stability = run_stability([e["step"] for e in result.evals],
                              [e.get("acc_sampled", float("nan")) for e in result.evals], args.collapse_margin)
    last = result.evals[-1] if result.evals else {}
    summary = {"init": str(init_dir or args.init), "steps": args.steps, "seed": args.seed,
               "metric": "acc_sampled", **stability.to_dict(),
               "greedy_initial": result.evals[0].get("acc_greedy") if result.evals else None,
               "greedy_final": last.get("acc_greedy"),
               "drift_pearson": last.get("drift_pearson"), "drift_js": last.get("drift_js"),
               "seconds": result.seconds, "steps_per_second": result.steps_per_second,
               "rollout_tokens_per_second": result.rollout_tokens_per_second, "config": config.to_dict()}
    text = json.dumps(jsonable(summary), indent=2)
    (out / "rl_summary.json").write_text(text + "\n")
    print(text)
    print(f"RL {args.steps} steps in {result.seconds:.1f} s: held-out sampled accuracy {stability.initial:.3f} -> "
          f"{stability.final:.3f} ({stability.collapses} collapses); saved to {out}", file=sys.stderr)
    return 0


def add_lab_subcommand(lab_commands: argparse._SubParsersAction) -> None:
    """Add ``rl`` to the sub-commands of ``molesyn lab`` (called by :func:`molesyn_lib.commands.lab.register`; this
    module has no top-level ``register``, so the CLI does not list it on its own)."""
    parser = lab_commands.add_parser("rl", help="DAPO-style RL (TRL GRPO) of a lab student, with per-step stability logs")
    parser.add_argument("--init", required=True, help="checkpoint directory (`molesyn lab train`) or untrained:SIZE")
    parser.add_argument("--steps", type=int, required=True, help="RL optimiser steps")
    parser.add_argument("--seed", type=int, default=0, help="RL seed (prompt order, sampling, RL prompts)")
    parser.add_argument("--out", required=True, help="output directory (student, rl_steps.jsonl, rl_evals.json, "
                        "rl_summary.json)")
    parser.add_argument("--task-length", type=int, default=None, help="K (default: the checkpoint's)")
    parser.add_argument("--prompts", type=int, default=2000, help="RL prompt pool size")
    parser.add_argument("--batch-prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--generations", type=int, default=8, help="completions per prompt (group size, >= 2)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epsilon", type=float, default=0.2, help="lower clip range")
    parser.add_argument("--epsilon-high", type=float, default=0.28, help="upper clip range (DAPO clip-higher)")
    parser.add_argument("--beta", type=float, default=0.0, help="KL coefficient (0: none, as in DAPO)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-completion-length", type=int, default=None, help="generation budget in tokens")
    parser.add_argument("--format-weight", type=float, default=0.0, help="weight of the format reward")
    parser.add_argument("--overlong", action=argparse.BooleanOptionalAction, default=True,
                        help="DAPO's soft overlong punishment (default on)")
    parser.add_argument("--num-iterations", type=int, default=2,
                        help="policy updates per generation batch (DAPO/GRPO's mu; > 1 lets the clip range bind)")
    parser.add_argument("--steps-per-generation", type=int, default=1,
                        help="optimiser steps one generation batch is split into")
    parser.add_argument("--dynamic-sampling", action=argparse.BooleanOptionalAction, default=True,
                        help="filter groups whose rewards are all equal out of the loss (default on)")
    parser.add_argument("--overlong-cache", type=int, default=16, help="soft zone of the overlong punishment")
    parser.add_argument("--eval-every", type=int, default=10, help="held-out evaluation interval in steps")
    parser.add_argument("--eval-n", type=int, default=200, help="held-out tasks")
    parser.add_argument("--eval-seed", type=int, default=4321, help="seed of the held-out tasks")
    parser.add_argument("--eval-samples", type=int, default=1, help="sampled completions per held-out task")
    parser.add_argument("--collapse-margin", type=float, default=0.1,
                        help="accuracy drop below the running best that counts as a collapse")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_rl_command)
