"""``molesyn inspect FILE``: what molesyn makes of a trace source, before anything is labelled.

Prints the detected container and why, the record shapes found, the fields, and the traces they make: how many,
how many truncated, steps per trace, and what was skipped. The same detection (and the same overrides) that
``molesyn label`` / ``graph`` / ``report`` use, so what ``inspect`` says is what they read.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

import numpy as np

from ..formats import SHAPES, ReadOptions, TraceReader, add_read_options
from ..traces import THINK_CLOSE, trace_from_record


def inspect_source(source: str, options: ReadOptions | None = None, limit: int | None = None) -> dict[str, Any]:
    """Read ``source`` (all records, or the first ``limit``) and summarise it as a JSON-ready dict."""
    reader = TraceReader(source, options or ReadOptions())
    skipped: Counter[str] = Counter()
    models: Counter[str] = Counter()
    steps: list[int] = []
    truncated = 0
    unclosed_by_model: Counter[str] = Counter()
    closed_by_model: Counter[str] = Counter()
    for number, record in reader:
        trace = trace_from_record(record, source, number)
        if trace is None:
            skipped["empty"] += 1
        else:
            model = trace.model or "unknown"
            models[model] += 1
            steps.append(len(trace.steps))
            truncated += trace.truncated
            if trace.response is not None and not trace.truncated:
                (closed_by_model if THINK_CLOSE in trace.response else unclosed_by_model)[model] += 1
        if limit is not None and reader.records >= limit:
            break
    # as load_traces does: a thinking model's responses without </think> count as truncated
    truncated += sum(n for m, n in unclosed_by_model.items() if closed_by_model[m] > n)
    return {
        "source": source, "container": reader.container, "container_reason": reader.container_reason,
        "records": reader.records, "shapes": dict(reader.shapes.most_common()),
        "fields": dict(reader.fields.most_common()), "traces": len(steps), "truncated": truncated,
        "steps": int(sum(steps)), "steps_per_trace_median": float(np.median(steps)) if steps else 0.0,
        "models": dict(models.most_common()), "skipped": dict(skipped), "limited": limit is not None
        and reader.records >= limit,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The human-readable text of :func:`inspect_source`'s summary."""
    shapes = ", ".join(f"{name} ({count}): {SHAPES[name].description}" for name, count in summary["shapes"].items())
    fields = ", ".join(f"{name} ({count})" for name, count in summary["fields"].items())
    models = ", ".join(f"{name} ({count})" for name, count in summary["models"].items()) or "none"
    skipped = ", ".join(f"{k}: {v}" for k, v in summary["skipped"].items()) or "none"
    lines = [
        f"source:     {summary['source']}",
        f"container:  {summary['container']} ({summary['container_reason']})",
        f"records:    {summary['records']}" + (" (stopped at --limit)" if summary["limited"] else ""),
        f"shapes:     {shapes or 'none'}",
        f"fields:     {fields or 'none'}",
        f"traces:     {summary['traces']} ({summary['truncated']} truncated), {summary['steps']} steps, "
        f"median {summary['steps_per_trace_median']:g} steps per trace",
        f"models:     {models}",
        f"skipped:    {skipped}",
    ]
    return "\n".join(lines)


def run_inspect(args: argparse.Namespace) -> int:
    summary = inspect_source(args.source, ReadOptions.from_args(args), args.limit)
    print(json.dumps(summary, indent=1) if args.json else format_summary(summary))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("inspect", help="show the detected format, fields and counts of a trace source",
                                   description="Detect a trace source's container and record shape and say why; "
                                               "count records, traces, truncated traces, steps and skipped ones.")
    parser.add_argument("source", help="a trace file (JSONL, JSON, gzip, Parquet, Arrow), a datasets folder, or "
                                       "hf://org/name[/config][:split]")
    parser.add_argument("--limit", type=int, help="read only the first N records")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_read_options(parser)
    parser.set_defaults(func=run_inspect)
