"""``molesyn compress``: compress a trace file (extractive, merge, truncate, keep_every, summarize), write the compressed
traces, and print the token reduction and how much the molecular structure moved (Chapter 5)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..compress import available_compressors, get_compressor, measure_compression, save_compressed
from ..errors import MolesynError
from ..labelers.base import DEFAULT_LABELER
from ..safeio import check_output, dumps_strict
from . import add_http_options, http_options, load_corpus


def run_compress(args: argparse.Namespace) -> int:
    check_output(args.out, [args.traces])
    corpus = load_corpus(args.traces, model=args.model, drop_truncated=args.drop_truncated)
    labeler = resolve_labeler(args.labeler)  # fail on a bad name before any work
    options: dict[str, Any] = {"tokenizer": args.tokenizer}
    if args.method == "extractive":
        options["labeler"] = labeler
    elif args.method == "merge":
        options["dedup"] = args.dedup
    elif args.method == "summarize":
        options.update(backend=args.backend, model=args.backend_model, chunk_tokens=args.chunk_tokens)
        if args.base_url:
            options["base_url"] = args.base_url
        if args.backend == "openai":
            options.update(http_options(args))
    compressor = get_compressor(args.method, **options)
    compressed = compressor.compress_batch(corpus, args.strength)
    written = save_compressed(compressed, args.out)
    result = measure_compression(compressed, labeler)
    result.update(method=args.method, strength=args.strength, tokenizer=compressor.token_counter.name,
                  labeler=args.labeler, n_traces=written, out=str(Path(args.out)))
    if args.json:
        print(dumps_strict(result))
    else:
        print(f"{args.method} at strength {args.strength:g}: {result['original_tokens']} -> "
              f"{result['compressed_tokens']} tokens ({compressor.token_counter.name}), token reduction "
              f"{100 * result['token_reduction']:.1f}%; steps {result['n_steps_original']} -> {result['n_steps']}")
        print(f"structure vs original ({args.labeler} labels): Pearson r {result['pearson']:.3f}, "
              f"JS transition {result['js_transition']:.3f}, JS marginal {result['js_marginal']:.3f}")
    if args.method == "summarize" and args.backend == "mock":
        print("molesyn: note: the mock backend is not a summariser (it keeps leading sentences as a stand-in); its "
              "structure numbers only show that the pipeline runs", file=sys.stderr)
    print(f"wrote {written} compressed traces to {args.out}", file=sys.stderr)
    return 0


def resolve_labeler(name: str) -> Any:
    """The labeller registered under ``name`` (:class:`MolesynError` naming the choices otherwise)."""
    from ..labelers import get_labeler

    try:
        return get_labeler(name)
    except ValueError as exc:
        raise MolesynError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compress", help="compress traces and report token reduction + structure change")
    parser.add_argument("traces", help="trace JSONL file (lines with 'response' or 'steps')")
    parser.add_argument("--method", required=True, choices=available_compressors(), help="compressor")
    parser.add_argument("--strength", type=float, default=0.5,
                        help="how much to remove, in [0, 1] (default 0.5; 0 = unchanged)")
    parser.add_argument("--labeler", default=DEFAULT_LABELER,
                        help="behaviour labeller for extractive and for the structure comparison (default trained)")
    parser.add_argument("--tokenizer", default="auto",
                        help="token counter: auto (SmolLM2 if available, else regex), smollm2, regex, or a local "
                             "tokenizer folder (default auto)")
    parser.add_argument("--dedup", default="group", choices=("group", "trace", "none"),
                        help="merge: drop sentences repeated in the merged step / anywhere earlier / never")
    parser.add_argument("--backend", default="transformers",
                        help="summarize: generation backend (transformers, openai, mock; default transformers)")
    parser.add_argument("--backend-model", help="summarize: the backend's model (default: SmolLM2 for transformers)")
    parser.add_argument("--base-url", help="summarize with --backend openai: the server URL")
    parser.add_argument("--chunk-tokens", type=int, default=384, help="summarize: tokens of steps per request")
    add_http_options(parser, "summarize with --backend openai: ")
    parser.add_argument("--model", help="keep only traces whose 'model'/'generator' equals this name")
    parser.add_argument("--drop-truncated", action="store_true", help="skip traces whose thinking never closes")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--out", required=True, help="output trace JSONL")
    parser.set_defaults(func=run_compress)
