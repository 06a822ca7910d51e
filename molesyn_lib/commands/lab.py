"""``molesyn lab traces | train | eval``: write lab teacher traces, train a lab student on a trace file, evaluate it.

* ``molesyn lab traces --teacher r1|qwq|oss|instruct|control|human|icl|GRAPH.json --n N --seed S --out TRACES.jsonl``
  writes traces in the project's trace format (``steps``, ``gold``, ``question``, ``answer``, ``model``, ``final``),
  so they load with ``load_traces`` and go through ``molesyn label`` / ``molesyn graph`` like real traces.
* ``molesyn lab train --data TRACES.jsonl --out DIR [--student tiny|small|smollm2] [--steps N | --tokens N]``
  SFTs a student (TRL) on any lab-format trace file (teacher traces, MOLE-SYN lab traces) and saves it to DIR.
* ``molesyn lab eval DIR --n N`` decodes N held-out tasks (disjoint from the training prompts) and prints accuracy,
  step errors, self-correction and the student's transfer graph as JSON (``--out``/``--graph-out`` write files).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError, MolesynError
from ..safeio import check_output, dumps_strict, write_text
from ..traces import load_traces, save_traces
from . import TRAIN_PROMPTS_FILE, student_task_config
from . import rl as rl_command


def _task_config(args: argparse.Namespace):
    from ..lab.tasks import TaskConfig

    try:
        return TaskConfig(length=args.task_length, operand_max=args.operand_max, operators=args.operators,
                          modulus=args.modulus)
    except ValueError as exc:
        raise MolesynError(str(exc)) from None


def run_traces(args: argparse.Namespace) -> int:
    from ..lab.keywords import replace_keywords
    from ..lab.tasks import generate_tasks
    from ..lab.teachers import Teacher, get_teacher, teacher_stats

    if args.n < 1:
        raise MolesynError("--n must be at least 1")
    check_output(args.out, [args.teacher] if args.teacher.endswith(".json") else [])
    config = _task_config(args)
    spec = get_teacher(args.teacher)
    tasks = generate_tasks(args.n, config, seed=args.task_seed)
    traces = Teacher(spec).traces(tasks, seed=args.seed, task_config=config)
    if args.keywords != "original":
        traces = replace_keywords(traces, args.keywords, seed=args.seed)
    count = save_traces(traces, args.out)
    stats = teacher_stats(traces, spec.name)
    print(f"wrote {count} {spec.name} traces to {args.out} (graph: {spec.source}; mean {stats.mean_steps:.1f} steps, "
          f"R in {stats.share_with_R:.0%}, E in {stats.share_with_E:.0%}, answers right {stats.answer_accuracy:.0%})",
          file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ..lab.student import TrainConfig, build_student, sft_rows, train_student
    from ..lab.tasks import task_from_question

    corpus = load_traces(args.data)
    if not corpus:
        raise InputError(f"no usable traces ({corpus.summary()})", args.data)
    rows = sft_rows(corpus)
    if args.steps is not None and args.steps < 1:
        raise MolesynError("--steps must be at least 1")
    config = TrainConfig(max_steps=args.steps, token_budget=args.tokens if args.steps is None else None,
                         epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                         threads=args.threads, progress=not args.quiet)
    student = build_student(args.student, seed=args.seed)
    result = train_student(student, rows, config)
    tasks = [task_from_question(t.question, t.source or str(args.data)) for t in corpus]
    student.meta.update(data=str(args.data), task={
        "length": max(len(t.ops) for t in tasks), "modulus": tasks[0].modulus,
        "operand_max": max(max([b for _, b in t.ops] + [t.start]) for t in tasks),
        "operators": "".join(op for op in "+-*" if any(o == op for t in tasks for o, _ in t.ops))})
    out = student.save(args.out)
    (out / TRAIN_PROMPTS_FILE).write_text("\n".join(sorted({row["prompt"] for row in rows})) + "\n")
    print(f"trained {args.student} ({student.n_params:,} params) for {result.steps} steps on {len(rows)} traces "
          f"({result.completion_tokens:,} supervised tokens, {result.seconds:.1f} s, loss {result.train_loss:.3f}); "
          f"saved to {out}", file=sys.stderr)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from ..lab.evaluate import EvalConfig, evaluate_student
    from ..lab.student import load_student
    from ..lab.tasks import generate_tasks
    from ..lab.teachers import Teacher
    from ..reporting import jsonable

    directory = Path(args.student_dir)
    for out in (args.out, args.graph_out):
        if out:
            check_output(out)
    student = load_student(directory)
    config = student_task_config(student.meta, args.task_length)
    prompts_file = directory / TRAIN_PROMPTS_FILE
    exclude = prompts_file.read_text().split() if prompts_file.is_file() else []
    tasks = generate_tasks(args.n, config, seed=args.seed, exclude=exclude)
    references = {}
    for name in [r for r in args.references.split(",") if r]:
        references[name] = Teacher(name).target_graph()
    report = evaluate_student(student, tasks, EvalConfig(inject=min(args.n, args.inject), seed=args.seed),
                              references, name=directory.name)
    record = {"student": str(directory), "n": args.n, "task": config.to_dict(),
              "accuracy": report.metrics.get("acc_greedy"), **report.metrics,
              "graph": report.student_graph.to_dict()}
    text = dumps_strict(jsonable(record), indent=2)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    if args.graph_out:
        report.student_graph.save(args.graph_out)
    return 0



def register(subparsers: argparse._SubParsersAction) -> None:
    lab = subparsers.add_parser("lab", help="the reasoning lab: teacher traces, student training and evaluation")
    commands = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab.set_defaults(func=lambda args: (lab.print_help(), 2)[1])

    traces = commands.add_parser("traces", help="write lab teacher traces (JSONL with gold behaviours)")
    traces.add_argument("--teacher", required=True,
                        help="r1, qwq, oss, instruct, control, human, icl, or a GRAPH.json to match")
    traces.add_argument("--n", type=int, required=True, help="number of traces (one per task)")
    traces.add_argument("--seed", type=int, default=0, help="teacher seed (slips, choices, cue words)")
    traces.add_argument("--task-seed", type=int, default=1234, help="seed of the tasks")
    traces.add_argument("--task-length", type=int, default=5, help="operations per chain (K)")
    traces.add_argument("--operand-max", type=int, default=9)
    traces.add_argument("--operators", default="+-*")
    traces.add_argument("--modulus", type=int, default=10)
    traces.add_argument("--keywords", default="original", choices=("original", "replace1", "replace2", "removed"),
                        help="cue-word variant")
    traces.add_argument("--out", required=True, help="output JSONL")
    traces.set_defaults(func=run_traces)

    train = commands.add_parser("train", help="SFT a lab student (TRL) on a lab trace file")
    train.add_argument("--data", required=True, help="lab trace JSONL (from `molesyn lab traces` or MOLE-SYN)")
    train.add_argument("--out", required=True, help="output checkpoint directory")
    train.add_argument("--student", default="tiny", help="tiny, small, base, micro or smollm2 (default tiny)")
    train.add_argument("--steps", type=int, default=None, help="optimiser steps (overrides --tokens)")
    train.add_argument("--tokens", type=int, default=300_000, help="supervised completion-token budget")
    train.add_argument("--epochs", type=float, default=None, help="passes over the data (with --tokens 0)")
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    evaluate = commands.add_parser("eval", help="evaluate a lab student on held-out tasks (JSON to stdout)")
    evaluate.add_argument("student_dir", help="checkpoint directory written by `molesyn lab train`")
    evaluate.add_argument("--n", type=int, default=200, help="held-out tasks")
    evaluate.add_argument("--seed", type=int, default=4321, help="seed of the held-out tasks and of sampling")
    evaluate.add_argument("--task-length", type=int, default=None, help="K (default: the training data's)")
    evaluate.add_argument("--inject", type=int, default=100, help="tasks of the self-correction probe")
    evaluate.add_argument("--references", default="r1,qwq,oss,instruct",
                          help="teachers whose target graphs the student's graph is compared with")
    evaluate.add_argument("--out", help="also write the JSON here")
    evaluate.add_argument("--graph-out", help="write the student's transfer graph (GRAPH.json) here")
    evaluate.set_defaults(func=run_eval)
    rl_command.add_lab_subcommand(commands)  # molesyn lab rl (commands/rl.py)
