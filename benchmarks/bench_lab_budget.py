"""Benchmark: sizing the lab for a CPU `standard` profile by measurement.

The accuracy claims of Chapters 2, 3 and 5 can only be decided where students are off the guessing floor and off
the ceiling. This sweep trains the strongest condition (teacher distillation from the R1-like teacher) and the
weakest (instruct distillation) over a grid of task sets and supervised-token budgets, one seed each, with the
chapters' own training code (:func:`molesyn_lib.lab.experiments.run_one`), and reports greedy and sampled
held-out accuracy next to the floor and the CPU seconds per run. The setting the standard profile uses is the
cheapest one where the strongest condition's greedy accuracy lies in [0.4, 0.85].

Run: ``.venv/bin/python benchmarks/bench_lab_budget.py [--workers 2] [--quick]``. Writes
``benchmarks/results_lab_budget.json`` and prints a markdown table (copied into ``benchmarks/RESULTS_lab.md``).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

TARGET = (0.4, 0.85)


def choose(rows: list[dict]) -> dict | None:
    """The cheapest setting (fewest tokens) whose strongest condition (the r1 teacher) has a mean greedy accuracy over
    seeds inside :data:`TARGET`, with the weakest condition's mean beside it; ``None`` when no setting qualifies."""
    settings: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        settings.setdefault((r["task"], r["n_train"], r["tokens"]), {}).setdefault(r["teacher"], []).append(
            r["acc_greedy"])
    for (task, n_train, tokens), by_teacher in sorted(settings.items(), key=lambda item: item[0][2]):
        strongest = by_teacher.get("r1", [])
        mean = sum(strongest) / len(strongest) if strongest else float("nan")
        if strongest and TARGET[0] <= mean <= TARGET[1]:
            weakest = by_teacher.get("instruct", [])
            return {"task": task, "n_train": n_train, "tokens": tokens, "r1_mean_greedy": mean,
                    "r1_seeds": len(strongest),
                    "instruct_mean_greedy": sum(weakest) / len(weakest) if weakest else None}
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="two budgets only (a check that the script runs)")
    parser.add_argument("--budgets", type=int, nargs="+", help="supervised-token budgets (default 0.6M, 1.2M, 2.4M)")
    parser.add_argument("--operators", nargs="+", default=["+", "+-*"], help="operator sets of the K=3 tasks")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="results_lab_budget.json", help="file name beside this script")
    args = parser.parse_args()

    from molesyn_lib.lab import experiments as ex
    from molesyn_lib.lab import measured_graphs_dir
    from molesyn_lib.lab.tasks import TaskConfig

    smoke = ex.profile("smoke")
    graphs = str(measured_graphs_dir())
    settings = []  # (task, n_train, token budget): the smoke task with more data, and the '+'-only task
    budgets = args.budgets or ((600_000, 1_200_000) if args.quick else (600_000, 1_200_000, 2_400_000))
    for task, n_train in ((TaskConfig(length=3, operators=ops), 8000) for ops in args.operators):
        for budget in budgets:
            settings.append((task, n_train, budget))
    configs = []
    keys = []
    for task, n_train, budget in settings:
        for teacher in ("r1", "instruct"):
            for seed in args.seeds:
                base = smoke.base(task=task, n_train=n_train, token_budget=budget, graphs_dir=graphs, seed=seed,
                                  probe_points=1, inject=0)
                configs.append(replace(base, phases=(ex.Phase((teacher,), n_train),), condition=teacher))
                keys.append((task, n_train, budget, seed))
    started = time.perf_counter()
    records = ex.run_grid(configs, workers=args.workers, progress=True)
    wall = time.perf_counter() - started
    rows = []
    for (task, n_train, budget, seed), record in zip(keys, records):
        rows.append({"task": f"K={task.length} '{task.operators}'", "n_train": n_train, "tokens": budget,
                     "seed": seed,
                     "teacher": record["condition"], "acc_greedy": record["acc_greedy"],
                     "acc_sampled": record.get("acc_sampled"), "acc_floor": record["acc_floor"],
                     "train_seconds": record.get("train_seconds"), "cached": record.get("cached", False)})
    chosen = choose(rows)
    out = {"target_greedy_range": TARGET, "wall_seconds": wall, "workers": args.workers, "rows": rows,
           "chosen": chosen, "machine": f"{os.cpu_count()} cores"}
    path = Path(__file__).with_name(args.out)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("| task | tasks | tokens | teacher | seed | greedy acc | sampled acc | floor | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['n_train']} | {r['tokens']:,} | {r['teacher']} | {r['seed']} | {r['acc_greedy']:.2f} | "
              f"{(r['acc_sampled'] or float('nan')):.2f} | {r['acc_floor']:.2f} | {r['train_seconds'] or 0:.0f} |")
    print(f"wall time {wall:.0f} s with {args.workers} workers; chosen: {chosen}")


if __name__ == "__main__":
    main()
