"""CLI: ``molesyn synth`` (MOLE-SYN random-walk synthesis) and ``molesyn fidelity`` (structure of synthesised traces).

::

    molesyn synth --graph GRAPH.json --questions Q.jsonl --backend transformers|openai|lab|mock [--model ID]
                  [--n N] [--walks K] [--max-steps K] [--seed S] --out TRACES.jsonl
    molesyn fidelity TRACES.jsonl --graph GRAPH.json [--labeler lexical] [--json OUT.json]

``synth`` goes through the generation cache (``cache_dir()/generations.sqlite``) unless ``--no-cache``, so an
interrupted run resumes and a rerun is free.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError, MolesynError
from ..labelers.base import DEFAULT_LABELER
from ..safeio import check_output, write_json
from . import add_http_options, http_options


def register(subparsers: argparse._SubParsersAction) -> None:
    synth = subparsers.add_parser("synth", help="synthesise Long-CoT traces by MOLE-SYN random walks on a graph",
                                  description="MOLE-SYN: walk a behaviour transfer graph and ask an instruction "
                                              "model for one step of each sampled behaviour.")
    synth.add_argument("--graph", required=True, help="target transfer graph (GRAPH.json)")
    synth.add_argument("--questions", required=True, help="questions JSONL (question/problem + answer)")
    synth.add_argument("--backend", default="transformers", help="generation backend: transformers, openai, lab, mock")
    synth.add_argument("--model", help="model id/path (transformers; default smollm2) or served model name (openai)")
    synth.add_argument("--n", type=int, help="use only the first N questions")
    synth.add_argument("--walks", type=int, default=1, help="walks per question (default 1)")
    synth.add_argument("--max-steps", type=int, default=12)
    synth.add_argument("--min-steps", type=int, default=2)
    synth.add_argument("--max-new-tokens", type=int, default=64, help="token budget per step")
    synth.add_argument("--temperature", type=float, default=0.7)
    synth.add_argument("--top-p", type=float, default=0.95)
    synth.add_argument("--repetition-penalty", type=float, default=1.15)
    synth.add_argument("--start", default="sample", help="'sample' (from the marginal) or a behaviour N/D/R/E")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--prompt-style", default="auto", choices=("auto", "paper", "few_shot_chat", "transcript"),
                       help="prompt style; auto: 'transcript' (few-shot, for small local models) with the "
                            "transformers backend, the paper's prompt otherwise")
    synth.add_argument("--max-rationale-chars", type=int,
                       help="clip the rationale in prompts to this many characters (default: 2000 with the "
                            "transformers backend, no clipping otherwise)")
    synth.add_argument("--cue-prefix", action="store_true",
                       help="transcript style: start each step with a cue of its behaviour ('Wait,' for R...)")
    synth.add_argument("--filter-correct", action="store_true", help="keep only traces with a correct answer")
    synth.add_argument("--batch-size", type=int, default=8, help="transformers backend: requests per batch")
    synth.add_argument("--base-url", help="openai backend: server URL (default $MOLESYN_OPENAI_BASE_URL)")
    synth.add_argument("--concurrency", type=int, default=8, help="openai backend: requests in flight")
    add_http_options(synth)
    synth.add_argument("--no-cache", action="store_true", help="do not use the on-disk generation cache")
    synth.add_argument("--cache-dir", help="folder of generations.sqlite (default: the molesyn cache directory)")
    synth.add_argument("--out", required=True, help="output traces JSONL")
    synth.add_argument("--quiet", action="store_true", help="no progress bars")
    synth.set_defaults(func=run_synth)

    fid = subparsers.add_parser("fidelity", help="how well synthesised traces carry a target graph",
                                description="Label synthesised traces and compare with the target graph and with "
                                            "the behaviours each step was asked for.")
    fid.add_argument("traces", help="traces JSONL written by `molesyn synth`")
    fid.add_argument("--graph", required=True, help="the target transfer graph (GRAPH.json)")
    fid.add_argument("--labeler", default=DEFAULT_LABELER, help="labeller name (default trained)")
    fid.add_argument("--json", help="also write the full result as JSON here")
    fid.set_defaults(func=run_fidelity)


def _backend_options(args: argparse.Namespace) -> dict[str, object]:
    progress = not args.quiet
    if args.backend == "transformers":
        return {"model": args.model or "smollm2", "batch_size": args.batch_size, "progress": progress}
    if args.backend == "openai":
        return {"base_url": args.base_url, "model": args.model, "concurrency": args.concurrency, "progress": progress,
                **http_options(args)}
    return {"model": args.model} if args.model else {}


def run_synth(args: argparse.Namespace) -> int:
    from ..backends import CachedBackend, get_backend
    from ..sources import load_questions
    from ..synth import SynthConfig, synthesize
    from ..traces import save_traces
    from ..transfer import load_graph

    check_output(args.out, [args.graph, args.questions])
    graph = load_graph(args.graph)
    if not graph.name:
        graph.name = Path(args.graph).stem
    if args.n is not None and args.n < 1:
        raise MolesynError("--n must be at least 1")
    questions = load_questions(args.questions, limit=args.n)
    if not questions:
        raise InputError("no questions in the file", args.questions)
    small_local = args.backend == "transformers"
    style = args.prompt_style if args.prompt_style != "auto" else ("transcript" if small_local else "paper")
    rationale_chars = args.max_rationale_chars if args.max_rationale_chars is not None else (
        2000 if small_local else None)
    try:
        config = SynthConfig(start=args.start, max_steps=args.max_steps, min_steps=args.min_steps,
                             max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                             repetition_penalty=args.repetition_penalty, few_shot=style != "paper",
                             prompt_style=style, filter_correct=args.filter_correct, seed=args.seed,
                             max_rationale_chars=rationale_chars, cue_prefix=args.cue_prefix)
    except ValueError as exc:
        raise MolesynError(f"bad synthesis settings: {exc}") from None
    backend = get_backend(args.backend, **_backend_options(args))
    if not args.no_cache:
        backend = CachedBackend(backend, cache_dir=args.cache_dir, progress=not args.quiet)
    model = args.model if args.backend == "openai" else None
    traces = synthesize(questions, graph, backend, config, walks_per_question=args.walks, model=model,
                        progress=not args.quiet)
    written = save_traces(traces, args.out)
    steps = sum(len(t.steps) for t in traces)
    answered = sum(t.final is not None for t in traces)
    correct = sum(t.meta.get("correct") is True for t in traces)
    cache_note = ""
    if isinstance(backend, CachedBackend):
        cache_note = f"; cache: {backend.hits} hits, {backend.misses} generated ({backend.path})"
        backend.close()
    print(f"wrote {written} traces ({steps} steps, {answered} answered, {correct} correct) to {args.out}{cache_note}")
    return 0


def run_fidelity(args: argparse.Namespace) -> int:
    from ..labelers import get_labeler
    from ..synth import fidelity
    from ..traces import load_traces
    from ..transfer import load_graph

    if args.json:
        check_output(args.json, [args.traces, args.graph], what="--json output")
    graph = load_graph(args.graph)
    traces = load_traces(args.traces)
    if not traces:
        raise InputError(f"no usable traces ({traces.summary()})", args.traces)
    try:
        labeler = get_labeler(args.labeler)
    except ValueError as exc:
        raise MolesynError(str(exc)) from None
    result = fidelity(traces, graph, labeler)
    print(result.summary())
    if args.json:
        write_json(args.json, result.to_dict(), indent=2, default=float)
    return 0
