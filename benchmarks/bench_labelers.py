"""Benchmark: segmentation and labelling throughput, the trained (default) and embedding labellers' overhead over the
raw encoder, cache speed-up, and int8 dynamic quantisation of the encoder (speed and macro-F1 side by side).

Run: ``.venv/bin/python benchmarks/bench_labelers.py [--repeats 3]``. Prints a markdown table and writes
``benchmarks/results_labelers.json``. Numbers are medians over repeats (wall clock, this machine).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--embedding-steps", type=int, default=2000, help="steps used for the embedding benchmark")
    args = parser.parse_args()

    from molesyn_lib.embeddings import StepEncoder
    from molesyn_lib.labelers import get_labeler
    from molesyn_lib.labelers.embedding import EmbeddingLabeler
    from molesyn_lib.segment import segment_text
    from molesyn_lib.sources import load_reasoningflow_traces
    from molesyn_lib.traces import Trace, split_thinking

    corpus = load_reasoningflow_traces()
    n_traces, n_steps = len(corpus), sum(len(t.steps) for t in corpus)
    thinking = [split_thinking(t.response)[0] for t in corpus if t.response]
    rows = []

    seconds = median_time(lambda: [segment_text(text) for text in thinking], args.repeats)
    rows.append({"what": "segmentation (all ReasoningFlow traces)", "seconds": seconds, "steps/s": n_steps / seconds})

    lexical = get_labeler("lexical")
    seconds = median_time(lambda: lexical.label(corpus), args.repeats)
    rows.append({"what": f"lexical labeller, {n_traces} traces / {n_steps} steps", "seconds": seconds,
                 "steps/s": n_steps / seconds})

    # embedding labeller on a fixed subset: raw encoder vs cold-cache labeller vs warm-cache labeller
    subset, total = [], 0
    for trace in corpus:
        if total >= args.embedding_steps:
            break
        subset.append(Trace(trace.trace_id, trace.steps[: args.embedding_steps - total]))
        total += len(subset[-1].steps)
    texts = [s for t in subset for s in t.steps]
    encoder = StepEncoder(cache=False, show_progress=False)
    encoder.encode_raw(texts[:8])  # load the model outside the timing
    raw = median_time(lambda: encoder.encode_raw(texts), 1)
    rows.append({"what": f"MiniLM raw encoder, {total} steps", "seconds": raw, "steps/s": total / raw})
    trained = get_labeler("embedding")  # fits (or loads) the classifier once
    with tempfile.TemporaryDirectory() as tmp:
        cold_encoder = StepEncoder(cache_path=Path(tmp) / "emb.sqlite", show_progress=False)
        cold_encoder._encoder = encoder._encoder
        labeler = EmbeddingLabeler(encoder=cold_encoder)
        labeler._model = trained._ensure_model()
        cold = median_time(lambda: labeler.label(subset), 1)
        warm = median_time(lambda: labeler.label(subset), args.repeats)
    rows.append({"what": "embedding labeller, cold cache", "seconds": cold, "steps/s": total / cold,
                 "overhead vs raw encoder": cold / raw - 1})
    rows.append({"what": "embedding labeller, warm cache (rerun)", "seconds": warm, "steps/s": total / warm,
                 "speed-up vs cold": cold / warm})

    # the trained (default) labeller: cold cache vs raw encoder, warm rerun
    from molesyn_lib.labelers.trained import TrainedLabeler

    with tempfile.TemporaryDirectory() as tmp:
        cold_encoder = StepEncoder(cache_path=Path(tmp) / "emb.sqlite", show_progress=False)
        cold_encoder._encoder = encoder._encoder
        trained_labeler = TrainedLabeler(encoder=cold_encoder)
        cold = median_time(lambda: trained_labeler.label(subset), 1)
        warm = median_time(lambda: trained_labeler.label(subset), args.repeats)
    rows.append({"what": "trained labeller (default), cold cache", "seconds": cold, "steps/s": total / cold,
                 "ratio vs raw encoder": cold / raw})
    rows.append({"what": "trained labeller, warm cache (rerun)", "seconds": warm, "steps/s": total / warm,
                 "speed-up vs cold": cold / warm})

    # int8 dynamic quantisation of the encoder: speed on the same steps, and macro-F1 of the trained head on one
    # held-out fold of the annotated corpus with each encoder (the head is fitted on fp32 features of the rest)
    from molesyn_lib.labelers.trained import context_features, fit_head
    from molesyn_lib.standoff import load_annotated_corpus
    from molesyn_lib.validation import document_folds, label_report

    int8 = StepEncoder(cache=False, show_progress=False, quantize="int8")
    int8.encode_raw(texts[:8])
    raw_int8 = median_time(lambda: int8.encode_raw(texts), 1)
    corpus = load_annotated_corpus()
    held = set(document_folds(corpus, 5, 0)[0])
    train = [t for i, t in enumerate(corpus) if i not in held]
    test = [t for i, t in enumerate(corpus) if i in held]
    fp32_cached = StepEncoder(show_progress=False)
    head = fit_head(train, context_features(fp32_cached, train))
    gold = [b for t in test for b in t.behaviors]
    f1 = {}
    for name, enc in (("fp32", fp32_cached), ("int8", StepEncoder(show_progress=False, quantize="int8"))):
        labels = TrainedLabeler(head=head, encoder=enc).label(test)
        f1[name] = label_report(gold, [b for seq in labels for b in seq]).macro_f1
    rows.append({"what": f"MiniLM int8 (dynamic quantisation) raw encoder, {total} steps", "seconds": raw_int8,
                 "steps/s": total / raw_int8, "speed-up vs fp32": raw / raw_int8,
                 "macro-F1 fp32 (held-out fold)": f1["fp32"], "macro-F1 int8": f1["int8"],
                 "F1 loss": f1["fp32"] - f1["int8"]})

    mock = get_labeler("llm", backend="mock")
    small = subset[:3]
    seconds = median_time(lambda: mock.label(small), args.repeats)
    n_small = sum(len(t.steps) for t in small)
    rows.append({"what": "llm labeller, mock backend (prompting + parsing overhead)", "seconds": seconds,
                 "steps/s": n_small / seconds})

    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"), "repeats": args.repeats}
    Path(__file__).with_name("results_labelers.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"machine: {meta['machine']}, {meta['date']}, median of {args.repeats}")
    print("| what | seconds | steps/s | note |\n|---|---|---|---|")
    for row in rows:
        note = ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k not in ("what", "seconds", "steps/s"))
        print(f"| {row['what']} | {row['seconds']:.2f} | {row['steps/s']:.0f} | {note} |")


if __name__ == "__main__":
    main()
