"""``molesyn labeler train``: rebuild the trained labeller's head from the annotated corpus in one command."""
from __future__ import annotations

import argparse
import sys

from ..labelers.trained import EXTRA_TRAINING, HEAD_PATH, TRAINED_DEFAULTS, train_from_corpus
from ..safeio import check_output


def run_train(args: argparse.Namespace) -> int:
    check_output(args.out, [args.corpus])
    head = train_from_corpus(out=args.out, corpus_path=args.corpus, extra=args.extra, C=args.C,
                             dense_weight=args.dense_weight, seed=args.seed)
    print(f"trained the head on {head.meta['n_train_steps']} steps "
          f"(training data {head.meta['training_digest']}); wrote {args.out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    labeler = subparsers.add_parser("labeler", help="train the default (trained) behaviour labeller")
    sub = labeler.add_subparsers(dest="labeler_command", metavar="ACTION")
    train = sub.add_parser("train", help="fit the head on annotation/corpus.jsonl (embeddings cached) and save it")
    train.add_argument("--corpus", default=None, help="stand-off corpus (default: annotation/corpus.jsonl)")
    train.add_argument("--extra", nargs="*", default=[], choices=EXTRA_TRAINING,
                       help="extra training sets added to the corpus")
    train.add_argument("--C", type=float, default=TRAINED_DEFAULTS["C"],
                       help="inverse L2 strength of the logistic regression")
    train.add_argument("--dense-weight", type=float, default=TRAINED_DEFAULTS["dense_weight"],
                       help="weight of the standardised embedding block against the TF-IDF blocks")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=str(HEAD_PATH), help=f"where to write the head (default: {HEAD_PATH})")
    train.set_defaults(func=run_train)
    labeler.set_defaults(func=lambda args: (labeler.print_help(), 2)[1])
