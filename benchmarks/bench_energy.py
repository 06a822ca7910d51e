"""Benchmark: seconds per trace of the attention-energy measurement (:func:`molesyn_lib.energy.measure_energy`).

Run: ``.venv/bin/python benchmarks/bench_energy.py [--repeats 3] [--budgets 512 1024] [--threads N]``. Times one
trace (a real QwQ AIME trace when the data directory has it, else a synthetic trace of the same shape) at each token
budget and token mode, steps only (the question is left out so the budget is filled with steps), for
SmolLM2-135M-Instruct (skipped when its checkpoint is unavailable; never downloaded here) and for a tiny random Qwen2
(2 layers, 64 hidden, GQA 4/2). Prints a markdown table (copied into ``benchmarks/RESULTS_energy.md``); ``--json PATH``
also writes the rows. Numbers are medians over repeats after one warm-up (wall clock, this machine; model loading not
included).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import string
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_trace():
    """A long QwQ trace from the real data, else a synthetic one (the timing depends on tokens, not content)."""
    from molesyn_lib.traces import Trace

    try:
        from molesyn_lib.sources import load_reasoningflow_traces

        corpus = load_reasoningflow_traces(files=("aime2024_5models.jsonl",), models=("QwQ-32B",), per_model_limit=1)
        return corpus[0], "real QwQ-32B AIME trace"
    except Exception:  # noqa: BLE001 - no data directory: fall back to a synthetic trace
        steps = [("Wait, let me check the sum again. " if i % 5 == 0 else "Therefore x = 3 and y = 7 so the total "
                  "is ten, which means the next value follows. ") * 3 for i in range(200)]
        return Trace(trace_id="synthetic", steps=steps, question="Find x + y."), "synthetic trace"


def tiny_model():
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM


    vocab = {c: i for i, c in enumerate(["<pad>", "<unk>", *dict.fromkeys(string.printable)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(vocab), hidden_size=64, intermediate_size=256,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=4096)).eval()
    return model, tokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budgets", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--modes", nargs="+", default=["mean", "max"])
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from molesyn_lib.energy import EnergyConfig, measure_energy
    from molesyn_lib.labelers import get_labeler

    trace, trace_kind = bench_trace()
    labels = get_labeler("lexical").label([trace])
    models = [("tiny Qwen2 (random, 2 layers)", *tiny_model())]
    try:
        from molesyn_lib.models import load_causal_lm, smollm2_path

        smollm2_path(allow_download=False)
        models.append(("SmolLM2-135M-Instruct", *load_causal_lm("smollm2")))
    except Exception as exc:  # noqa: BLE001 - report and go on with the tiny model
        print(f"SmolLM2 skipped: {exc}")
    rows = []
    for name, model, tokenizer in models:
        for budget in args.budgets:
            for mode in args.modes:
                config = EnergyConfig(max_tokens=budget, token_mode=mode, include_question=False)
                result: dict = {}

                def run(model=model, tokenizer=tokenizer, config=config, result=result) -> None:
                    result["r"] = measure_energy(model, tokenizer, [trace], behaviors=labels, config=config,
                                                 progress=False)

                seconds = median_time(run, args.repeats)
                info = result["r"].traces[0]
                rows.append({"model": name, "budget": budget, "mode": mode, "tokens": info["n_tokens"],
                             "steps": info["n_steps"], "pairs": len(result["r"].pairs), "seconds_per_trace": seconds})
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{trace_kind} (steps only, no question); torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs {platform.machine()}, load average after the run {load}\n")
    print("| model | budget | token mode | tokens | steps | pairs | s / trace |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['budget']} | {r['mode']} | {r['tokens']} | {r['steps']} | {r['pairs']} | "
              f"{r['seconds_per_trace']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"trace": trace_kind, "torch": torch.__version__,
                                               "threads": torch.get_num_threads(), "rows": rows}, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
