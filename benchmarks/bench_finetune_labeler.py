"""Benchmark: does fine-tuning the MiniLM encoder (a cross-encoder over previous step + step) beat the frozen
features of the ``trained`` labeller? One held-out fold by document (the first of the 5 folds the CV uses), so
the comparison costs one training run on 2 CPU cores rather than five.

Run: ``.venv/bin/python benchmarks/bench_finetune_labeler.py [--epochs 2] [--max-length 160]``. Writes
``benchmarks/results_finetune_labeler.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-length", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    args = parser.parse_args()

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from molesyn_lib.behaviors import STATES
    from molesyn_lib.embeddings import default_model_path
    from molesyn_lib.labelers.trained import TRAINED_DEFAULTS, cross_validate_head_on
    from molesyn_lib.standoff import load_annotated_corpus
    from molesyn_lib.validation import document_folds, label_report

    torch.manual_seed(0)
    corpus = load_annotated_corpus()
    folds = document_folds(corpus, 5, 0)
    test_ids = set(folds[0])
    pairs, labels, is_test = [], [], []
    for k, trace in enumerate(corpus):
        doc, offset = trace.meta["doc_steps"], trace.meta["offset"]
        for j, (step, label) in enumerate(zip(trace.steps, trace.behaviors)):
            i = offset + j
            pairs.append((doc[i - 1][-300:] if i > 0 else "", step[:700]))
            labels.append(STATES.index(label))
            is_test.append(k in test_ids)
    labels_arr, test = np.array(labels), np.array(is_test)
    path = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
    train_idx = np.where(~test)[0]
    counts = np.bincount(labels_arr[train_idx], minlength=4)
    weights = torch.tensor(len(train_idx) / (4 * np.maximum(counts, 1)), dtype=torch.float32)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_total = int(args.epochs * len(train_idx) / args.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1 - s / max(steps_total, 1)))
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    model.train()
    step = 0
    while step < steps_total:
        for batch_start in range(0, len(train_idx), args.batch_size):
            if step >= steps_total:
                break
            if batch_start == 0:
                order = rng.permutation(train_idx)
            batch = order[batch_start:batch_start + args.batch_size]
            enc = tokenizer([pairs[i][0] for i in batch], [pairs[i][1] for i in batch], truncation=True,
                            max_length=args.max_length, padding=True, return_tensors="pt")
            logits = model(**enc).logits
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels_arr[batch]), weight=weights)
            loss.backward()
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad()
            step += 1
    train_seconds = time.perf_counter() - start
    model.eval()
    test_idx = np.where(test)[0]
    predicted = []
    with torch.no_grad():
        for batch_start in range(0, len(test_idx), 64):
            batch = test_idx[batch_start:batch_start + 64]
            enc = tokenizer([pairs[i][0] for i in batch], [pairs[i][1] for i in batch], truncation=True,
                            max_length=args.max_length, padding=True, return_tensors="pt")
            predicted.extend(model(**enc).logits.argmax(-1).tolist())
    gold = [STATES[labels_arr[i]] for i in test_idx]
    finetuned = label_report(gold, [STATES[k] for k in predicted]).summary()
    frozen = cross_validate_head_on(corpus, [i for i in range(len(corpus)) if i not in test_ids], sorted(test_ids),
                                    **TRAINED_DEFAULTS).summary()
    result = {"fold": "first of 5 document folds (seed 0)", "test_steps": int(test.sum()),
              "train_steps": int((~test).sum()), "epochs": args.epochs, "max_length": args.max_length,
              "train_seconds": train_seconds, "finetuned_cross_encoder": finetuned, "frozen_trained_head": frozen}
    Path(__file__).with_name("results_finetune_labeler.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
