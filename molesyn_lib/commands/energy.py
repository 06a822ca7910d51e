"""``molesyn energy``: attention as bond energy. Measures, under a causal LM, the mean attention logit q.k/sqrt(d_k)
(and energy -q.k/sqrt(d_k)) between the steps of labelled traces grouped by bond type, with matched-distance random
controls, and writes the table and summary to ENERGY.json (appendix chapter)."""
from __future__ import annotations

import argparse
import sys

from ..energy import ALL_BONDS, EnergyConfig, load_energy_model, measure_energy
from ..labelers.base import DEFAULT_LABELER
from ..safeio import check_output
from . import load_corpus


def run_energy(args: argparse.Namespace) -> int:
    check_output(args.out, [args.traces])
    corpus = load_corpus(args.traces, model=args.generator, drop_truncated=args.drop_truncated, limit=args.n_traces,
                         model_word="generator")
    config = EnergyConfig(max_tokens=args.max_tokens, token_mode=args.token_mode, seed=args.seed,
                          include_question=not args.no_question)
    model, tokenizer = load_energy_model(args.model)
    labeler = None if args.labeler == "trace" else args.labeler
    result = measure_energy(model, tokenizer, corpus, labeler=labeler, config=config, model_name=args.model)
    result.save(args.out)
    summary = result.summary()
    print(f"model {args.model}: {summary['n_traces']} traces, {summary['n_layers']} layers x {summary['n_heads']} "
          f"heads ({summary['n_kv_heads']} KV), token mode {args.token_mode}, budget {args.max_tokens} tokens")
    print(f"{'bond':<10}{'pairs':>7}{'dist':>8}{'q.k':>9}{'control':>9}{'bond-ctrl':>11}  95% CI")
    for bond, entry in summary["bonds"].items():
        control = entry["control_mean_qk"]
        diff = entry["bond_minus_control"]
        ci = entry["bond_minus_control_ci95"]
        print(f"{bond:<10}{entry['n_pairs']:>7}{entry['mean_distance']:>8.1f}{entry['mean_qk']:>9.3f}"
              f"{control if control is not None else float('nan'):>9.3f}"
              f"{diff if diff is not None else float('nan'):>11.3f}  "
              + (f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "-"))
    print(f"ordering by q.k: {summary['ordering'] or '-'}; covalent > hydrogen > vdw: "
          f"{'holds' if summary['ordering_holds'] else 'does not hold'}; after the matched-distance control: "
          f"{'holds' if summary['ordering_holds_after_control'] else 'does not hold'}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("energy", help="attention logits/energies between steps, by bond type")
    parser.add_argument("--model", required=True,
                        help="causal LM: 'smollm2', a local checkpoint folder (e.g. a lab student) or a cached id")
    parser.add_argument("--traces", required=True, help="trace JSONL file")
    parser.add_argument("--labeler", default=DEFAULT_LABELER,
                        help="behaviour labeller (default trained; 'trace' = the traces' own 'gold' labels)")
    parser.add_argument("--max-tokens", type=int, default=1024,
                        help="token budget per trace; whole steps beyond it are dropped (default 1024)")
    parser.add_argument("--n-traces", type=int, help="use the first K traces")
    parser.add_argument("--token-mode", default="mean", choices=("mean", "max"),
                        help="mean over all token pairs of the two steps, or mean over queries of the max key")
    parser.add_argument("--generator", help="keep only traces whose 'model'/'generator' equals this name")
    parser.add_argument("--no-question", action="store_true", help="do not put the question before the steps")
    parser.add_argument("--drop-truncated", action="store_true", help="skip traces whose thinking never closes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the control sampling and bootstrap (default 0)")
    parser.add_argument("--out", required=True, help="output ENERGY.json")
    parser.set_defaults(func=run_energy, bonds=ALL_BONDS)
