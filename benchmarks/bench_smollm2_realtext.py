"""Size the real-text half of Fig. 6c: fine-tuning SmolLM2-135M-Instruct on windows of DeepSeek-R1 thinking text.

Issue 12 (section 4) asks whether SmolLM2-135M-Instruct, fine-tuned with TRL on real R1 thinking traces (original vs
synonym-replaced vs cue-removed), fits the standard profile's budget (2 CPU cores, the whole book in 2 hours). This
script measures what such a run costs here, before any of it is built into a chapter:

* **SFT**: TRL ``SFTTrainer`` language-modelling steps on windows of ``--window`` tokens cut from R1's ``<think>``
  text (ReasoningFlow traces, read from the data directory), batch ``--batch``, for full fine-tuning and for LoRA
  (peft, rank ``--lora-rank`` on the attention and MLP projections). Seconds per optimiser step: the median over the
  steps after the first (``--steps``, warm-up excluded), and supervised tokens per second.
* **Generation**: ``--samples`` continuations of ``--new-tokens`` tokens (T=1, batched) from R1 prompts: new tokens
  per second (what labelling the fine-tuned model's behaviour structure costs).

It prints one table and, with ``--json``, writes the numbers. ``benchmarks/RESULTS_realtext.md`` turns them into a
budget: how many steps and samples fit in a share of the standard profile's 2 hours.

Usage::

    python benchmarks/bench_smollm2_realtext.py [--window 256] [--batch 4] [--steps 6] [--threads 2]
                                                [--lora-rank 16] [--samples 8] [--new-tokens 128] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


def r1_windows(tokenizer, window: int, count: int) -> list[str]:
    """``count`` windows of ``window`` tokens of R1 thinking text (whole traces, cut in order)."""
    from molesyn_lib.sources import load_reasoningflow_traces

    corpus = load_reasoningflow_traces(models=("DeepSeek-R1",), drop_truncated=True)
    windows: list[str] = []
    for trace in corpus:
        ids = tokenizer("\n\n".join(trace.steps), add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids) - window, window):
            windows.append(tokenizer.decode(ids[start:start + window]))
            if len(windows) >= count:
                return windows
    return windows


def sft_seconds(mode: str, texts: list[str], args: argparse.Namespace) -> dict[str, float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from molesyn_lib.models import load_causal_lm

    model, tokenizer = load_causal_lm("smollm2", reuse=False)
    model.train()
    peft_config = None
    if mode == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.0,
                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                 "down_proj"], task_type="CAUSAL_LM")
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_, **__):
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="bench-realtext-") as tmp:
        config = SFTConfig(output_dir=tmp, max_steps=args.steps, per_device_train_batch_size=args.batch,
                           learning_rate=1e-4 if mode == "lora" else 2e-5, max_length=args.window + 8,
                           use_cpu=True, save_strategy="no", report_to="none", logging_steps=10_000,
                           dataloader_num_workers=0, seed=0, disable_tqdm=True)
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list([{"text": t} for t in texts]),
                             processing_class=tokenizer, peft_config=peft_config, callbacks=[Clock()])
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        started = time.perf_counter()
        trainer.train()
    gaps = [b - a for a, b in zip([started] + stamps[:-1], stamps)][1:]  # the first step warms up
    per_step = statistics.median(gaps)
    return {"seconds_per_step": per_step, "tokens_per_second": args.batch * args.window / per_step,
            "trainable_params": trainable}


def generation_tokens_per_second(texts: list[str], args: argparse.Namespace) -> float:
    import torch

    from molesyn_lib.models import load_causal_lm

    model, tokenizer = load_causal_lm("smollm2", reuse=False)
    prompts = [t[: len(t) // 4] for t in texts[: args.samples]]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=True,
                             temperature=1.0, pad_token_id=tokenizer.pad_token_id)
    seconds = time.perf_counter() - started
    return (out.shape[1] - batch["input_ids"].shape[1]) * len(prompts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    from molesyn_lib.models import load_causal_lm

    torch.set_num_threads(args.threads)
    _, tokenizer = load_causal_lm("smollm2")
    texts = r1_windows(tokenizer, args.window, max(args.batch * args.steps, args.samples))
    results = {"settings": vars(args), "windows": len(texts)}
    for mode in ("full", "lora"):
        results[mode] = sft_seconds(mode, texts, args)
    results["generation_tokens_per_second"] = generation_tokens_per_second(texts, args)
    print(f"SmolLM2-135M-Instruct on {args.window}-token windows of R1 thinking text, batch {args.batch}, "
          f"{args.threads} threads")
    print("| mode | trainable params | s / step | supervised tokens / s |")
    print("|---|---|---|---|")
    for mode in ("full", "lora"):
        r = results[mode]
        print(f"| {mode} | {r['trainable_params'] / 1e6:.2f}M | {r['seconds_per_step']:.2f} | "
              f"{r['tokens_per_second']:.0f} |")
    print(f"generation (T=1, batch {args.samples}, {args.new_tokens} new tokens): "
          f"{results['generation_tokens_per_second']:.0f} tokens/s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
