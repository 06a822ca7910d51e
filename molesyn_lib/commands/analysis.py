"""``molesyn label``, ``molesyn graph`` and ``molesyn compare``: label trace steps, estimate transfer graphs, compare
them."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from ..behaviors import STATES
from ..formats import ReadOptions, add_read_options
from ..labelers import available_labelers, get_labeler, label_corpus
from ..labelers.base import DEFAULT_LABELER
from ..safeio import atomic_open, check_output, dumps_strict
from ..traces import Corpus
from ..transfer import TransferGraph, js_distance, kl_divergence, load_graph, pearson_with_p
from . import load_corpus


def _add_trace_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="+",
                        help="trace file(s): JSONL with 'response' or 'steps', chat messages, ShareGPT, reasoning-API or "
                             "chat-completion records, in JSONL / JSON / gzip / Parquet / Arrow / datasets folders "
                             "/ hf://org/name:split (see `molesyn inspect`); several files are read as one corpus")
    parser.add_argument("--model", help="keep only lines whose 'model' or 'generator' equals this name")
    parser.add_argument("--labeler", default=DEFAULT_LABELER,
                        help=f"behaviour labeller: {', '.join(available_labelers())} (default: trained)")
    parser.add_argument("--judge-backend", default="openai",
                        help="--labeler llm: generation backend of the judge (openai | transformers | mock; "
                             "default openai, an OpenAI-compatible server)")
    parser.add_argument("--judge-model", help="--labeler llm: judge model (default $MOLESYN_OPENAI_MODEL)")
    parser.add_argument("--judge-base-url", help="--labeler llm: server URL (default $MOLESYN_OPENAI_BASE_URL)")
    parser.add_argument("--drop-truncated", action="store_true",
                        help="skip traces whose thinking block is never closed (counted on stderr)")
    parser.add_argument("--out", required=True, help="output file")
    add_read_options(parser)


def _load(args: argparse.Namespace) -> Corpus:
    corpus = Corpus(source=", ".join(args.traces))
    for path in args.traces:
        part = load_corpus(path, model=args.model, drop_truncated=args.drop_truncated,
                           read_options=ReadOptions.from_args(args))
        corpus.extend(part)
        corpus.skipped.update(part.skipped)
    return corpus


def _labeler(args: argparse.Namespace):
    if args.labeler != "llm":
        return get_labeler(args.labeler)
    options = {"base_url": args.judge_base_url} if args.judge_base_url and args.judge_backend == "openai" else {}
    return get_labeler("llm", backend=args.judge_backend, model=args.judge_model, backend_options=options)


def run_label(args: argparse.Namespace) -> int:
    out = check_output(args.out, args.traces)
    corpus = _load(args)
    labels = label_corpus(corpus, _labeler(args))
    n = 0
    with atomic_open(out) as handle:
        for trace, trace_labels in zip(corpus, labels):
            for index, (text, behavior) in enumerate(zip(trace.steps, trace_labels)):
                handle.write(json.dumps({"trace_id": trace.trace_id, "model": trace.model, "step": index,
                                         "text": text, "behavior": behavior}, ensure_ascii=False) + "\n")
                n += 1
    print(f"wrote {n} labelled steps of {len(corpus)} traces to {out}", file=sys.stderr)
    return 0


def graphs_side_by_side(graphs: dict[str, TransferGraph]) -> str:
    """Transition matrices P(next | current) and marginals of one or more graphs as a plain-text block."""
    blocks = []
    for title, graph in graphs.items():
        lines = [f"{title}: {graph.n_traces} traces, {graph.n_steps} steps, labeller {graph.labeler or '?'}",
                 "P(next|cur)   " + "".join(f"{s:>7}" for s in STATES)]
        lines += [f"  {cur:<11}" + "".join(f"{v:7.3f}" for v in row) for cur, row in zip(STATES, graph.transition)]
        lines.append("  marginal   " + "".join(f"{v:7.3f}" for v in graph.marginal))
        blocks.append(lines)
    width = max(len(line) for block in blocks for line in block) + 4
    return "\n".join("".join(block[i].ljust(width) if i < len(block) else " " * width for block in blocks).rstrip()
                     for i in range(max(map(len, blocks))))


def run_graph(args: argparse.Namespace) -> int:
    check_output(args.out, args.traces)
    corpus = _load(args)
    labels = label_corpus(corpus, _labeler(args))
    graph = TransferGraph.from_sequences(labels, labeler=args.labeler, name=args.model or Path(args.traces[0]).stem,
                                         meta={"source": ", ".join(args.traces), "n_truncated": corpus.n_truncated(),
                                               "skipped": dict(corpus.skipped)})
    graph.save(args.out)
    print(graphs_side_by_side({graph.name or "graph": graph}), file=sys.stderr)
    print(f"wrote graph of {graph.n_traces} traces / {graph.n_steps} steps to {args.out}", file=sys.stderr)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    first, second = load_graph(args.graph_a), load_graph(args.graph_b)
    r, p = pearson_with_p(first, second)
    if args.json:
        print(dumps_strict({"pearson": r, "p_value": p, "js_transition": js_distance(first, second),
                            "js_marginal": js_distance(first, second, "marginal"),
                            "kl_a_b": kl_divergence(first, second)}))
    elif args.value:
        print(f"{r:.4f}" if math.isfinite(r) else "undefined")
    else:
        print(f"Pearson r = {r:.4f} (p = {p:.2g} over the 16 cells)" if math.isfinite(r) else "Pearson r = undefined")
        def num(value: float) -> str:
            return f"{value:.4f}" if math.isfinite(value) else "undefined"

        print(f"JS distance: transition rows {num(js_distance(first, second))}, marginals "
              f"{num(js_distance(first, second, 'marginal'))}; KL(A || B) {num(kl_divergence(first, second))}")
        print(graphs_side_by_side({"A " + (first.name or Path(args.graph_a).stem): first,
                                   "B " + (second.name or Path(args.graph_b).stem): second}))
    if not math.isfinite(r):
        print("molesyn: note: Pearson r is undefined: a transition matrix is constant (all cells equal)",
              file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    label = subparsers.add_parser("label", help="label every step of every trace with N/D/R/E (one JSON line/step)")
    _add_trace_options(label)
    label.set_defaults(func=run_label)

    graph = subparsers.add_parser("graph", help="estimate the 4x4 behaviour transfer graph of a trace file")
    _add_trace_options(graph)
    graph.set_defaults(func=run_graph)

    compare = subparsers.add_parser("compare", help="Pearson correlation of two graphs' transition matrices",
                                    description="Pearson r of two graphs' transition matrices; 'undefined' (null "
                                                "with --json) when a matrix is constant. Output is strict JSON: "
                                                "never NaN or Infinity.")
    compare.add_argument("graph_a")
    compare.add_argument("graph_b")
    output = compare.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print r, p-value and divergences as JSON")
    output.add_argument("--value", action="store_true", help="print only Pearson r (for scripts)")
    compare.set_defaults(func=run_compare)
