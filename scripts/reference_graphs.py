"""Compute the reference transfer graphs shipped with ``molesyn report`` (``molesyn_lib/reference_graphs/*.json``).

The graphs of the three long-CoT teachers of the ReasoningFlow traces (DeepSeek-R1, QwQ-32B, gpt-oss-120b), estimated
the way Chapter 1 estimates them: the same trace files, the first ``--per-model-limit`` complete traces of each model
per file (truncated ones dropped), labelled with the project's default labeller. Each JSON records its labeller, the
trace files with their SHA-256, the selection and the time it was computed, so a report can say what it compares to,
and the label sequences themselves (one N/D/R/E string per trace, ``meta["sequences"]``), so that the report can
compare a corpus with a reference against the within-trace order-shuffled null.

Usage::

    .venv/bin/python scripts/reference_graphs.py [--per-model-limit 12] [--labeler trained]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from molesyn_lib.config import data_dir
from molesyn_lib.labelers import get_labeler, label_corpus
from molesyn_lib.labelers.base import DEFAULT_LABELER
from molesyn_lib.sources import REASONINGFLOW_FILES, load_reasoningflow_traces
from molesyn_lib.transfer import TransferGraph

#: Short name of each reference (the ``--against`` keys of ``molesyn report``) -> ReasoningFlow generator.
REFERENCES = {"r1": "DeepSeek-R1", "qwq": "QwQ-32B", "oss": "gpt-oss-120b"}
OUT_DIR = Path(__file__).resolve().parents[1] / "molesyn_lib" / "reference_graphs"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-model-limit", type=int, default=30,
                        help="complete traces per model and file (Chapter 1's smoke profile uses 12)")
    parser.add_argument("--labeler", default=DEFAULT_LABELER)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    base = data_dir() / "reasoningflow" / "traces"
    files = [{"file": f"reasoningflow/traces/{name}", "sha256": sha256(base / name)} for name in REASONINGFLOW_FILES]
    labeler = get_labeler(args.labeler)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for short, model in REFERENCES.items():
        start = time.perf_counter()
        corpus = load_reasoningflow_traces(models=(model,), drop_truncated=True, per_model_limit=args.per_model_limit)
        labels = label_corpus(corpus, labeler)
        graph = TransferGraph.from_sequences(labels, labeler=args.labeler, name=model, meta={
            "reference": short,
            "sequences": ["".join(seq) for seq in labels if seq],
            "provenance": {
                "source": "ReasoningFlow raw traces (https://github.com/jinulee-v/reasoningflow @ c5a0696), "
                          "see ../shared/data/reasoningflow/SOURCE.md",
                "files": files, "generator": model, "per_model_limit_per_file": args.per_model_limit,
                "drop_truncated": True, "segmentation": "molesyn default SegmentConfig",
                "labeler": args.labeler, "skipped": dict(corpus.skipped),
                "computed": datetime.now(UTC).isoformat(timespec="seconds"),
                "script": "scripts/reference_graphs.py",
            },
        })
        graph.save(args.out_dir / f"{short}.json")
        print(f"{short}: {graph.n_traces} traces, {graph.n_steps} steps, {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
