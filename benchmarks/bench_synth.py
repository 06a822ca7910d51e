"""Benchmark of MOLE-SYN synthesis and the generation backends (plain timing, medians over repeats).

Measures:

* synthesised steps per second with the ``mock`` backend, SmolLM2-135M on the ``transformers`` backend (CPU), and
  the ``lab`` backend when :mod:`molesyn_lib.lab` registers one;
* the speed-up of a rerun served from the generation cache (mock and SmolLM2);
* the ``openai`` backend's throughput against the local stub server (``tests/openai_stub.py``) with a fixed
  artificial latency, at concurrency 1, 4 and 16;
* SmolLM2 synthesis *quality* (needs the data directory): a target graph from the lexical labelling of the
  DeepSeek-R1 ReasoningFlow AIME-2024 traces, walks on the first GSM8K test questions, then answer rate, accuracy,
  and fidelity (Pearson r of the labelled traces' graph to the target, per-behaviour agreement), with the lexical
  labeller and optionally the ``llm`` labeller (SmolLM2 as judge).

Run:  python benchmarks/bench_synth.py [--skip-smollm2] [--quality-questions 10] [--out benchmarks/RESULTS_synth.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
from molesyn_lib.backends import CachedBackend, GenerationRequest, MockBackend, get_backend
from molesyn_lib.sources import Question
from molesyn_lib.synth import SynthConfig, synthesize
from molesyn_lib.transfer import TransferGraph

# A fixed R1-like graph (rounded from the lexical labelling of the ReasoningFlow R1 AIME traces) so that the
# benchmark needs no data files.
GRAPH = TransferGraph.from_matrix([[0.53, 0.31, 0.11, 0.05], [0.28, 0.43, 0.18, 0.11], [0.16, 0.26, 0.37, 0.21],
                                   [0.14, 0.22, 0.22, 0.42]], name="bench-r1-like")
WORD_PROBLEMS = [
    "Janet has 16 eggs. She eats 3 and bakes with 4. She sells the rest for $2 each. How much does she make?",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
    "Tom reads 12 pages a day for 5 days and then 20 pages on the sixth day. How many pages did he read?",
    "A box holds 6 apples. How many apples are in 7 boxes if 5 apples are eaten?",
    "Sara buys 3 pens at $4 each and pays with a $20 bill. How much change does she get?",
    "A train travels 60 km per hour for 3 hours. How far does it travel?",
    "There are 24 students and each group has 4 students. How many groups are there?",
    "Mike has 45 marbles and gives 17 to his friend. How many marbles does he have left?",
]


def word_questions(n: int) -> list[Question]:
    return [Question(question_id=f"bench-{i}", question=WORD_PROBLEMS[i % len(WORD_PROBLEMS)], answer=None)
            for i in range(n)]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_rate(count: int, seconds: list[float]) -> tuple[float, float]:
    """(median seconds, count / median seconds)."""
    median = statistics.median(seconds)
    return median, count / median


def bench_mock(repeats: int) -> dict[str, float]:
    questions = word_questions(200)
    config = SynthConfig(max_steps=10)
    steps = sum(len(t.steps) for t in synthesize(questions, GRAPH, MockBackend(), config, progress=False))
    seconds = [timed(lambda: synthesize(questions, GRAPH, MockBackend(), config, progress=False))
               for _ in range(repeats)]
    median, rate = median_rate(steps, seconds)
    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = [], []
        for repeat in range(repeats):
            path = Path(tmp) / f"cache{repeat}.sqlite"
            def run(path: Path = path) -> object:
                return synthesize(questions, GRAPH, CachedBackend(MockBackend(), path=path, progress=False), config,
                                  progress=False)
            cold.append(timed(run))
            warm.append(timed(run))
    return {"walks": len(questions), "steps": steps, "seconds": median, "steps_per_s": rate,
            "cached_cold_s": statistics.median(cold), "cached_warm_s": statistics.median(warm)}


def bench_lab(repeats: int) -> dict[str, float] | None:
    try:
        backend = get_backend("lab")
    except Exception as exc:  # noqa: BLE001 - absent or broken plugin: report and skip
        print(f"lab backend: skipped ({exc})", file=sys.stderr)
        return None
    rng = random.Random(0)
    questions = []
    for i in range(100):
        terms = [str(rng.randint(0, 9)) for _ in range(5)]
        chain = terms[0] + "".join(rng.choice("+-") + t for t in terms[1:])
        questions.append(Question(question_id=f"lab-{i}", question=f"{chain} (mod 10)", answer=None))
    config = SynthConfig(max_steps=12, prompt_style="paper", max_rationale_chars=None)
    steps = sum(len(t.steps) for t in synthesize(questions, GRAPH, backend, config, progress=False))
    seconds = [timed(lambda: synthesize(questions, GRAPH, get_backend("lab"), config, progress=False))
               for _ in range(repeats)]
    median, rate = median_rate(steps, seconds)
    return {"walks": len(questions), "steps": steps, "seconds": median, "steps_per_s": rate}


def bench_smollm2(n_questions: int, max_steps: int, repeats: int) -> dict[str, float]:
    backend = get_backend("transformers", batch_size=16, progress=False)
    load_s = timed(backend.load)
    questions = word_questions(n_questions)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            config = SynthConfig(max_steps=max_steps, min_steps=2, seed=repeat)
            before_tokens, before_requests = backend.stats.new_tokens, backend.stats.requests
            path = Path(tmp) / f"smollm2-{repeat}.sqlite"
            def run(path: Path = path, config: SynthConfig = config) -> list:
                return synthesize(questions, GRAPH, CachedBackend(backend, path=path, progress=False), config,
                                  progress=False)
            cold_s = timed(lambda run=run: runs.append(run()))
            warm_s = timed(run)
            traces = runs[-1]
            runs[-1] = {"cold_s": cold_s, "warm_s": warm_s, "steps": sum(len(t.steps) for t in traces),
                        "requests": backend.stats.requests - before_requests,
                        "tokens": backend.stats.new_tokens - before_tokens,
                        "answered": sum(t.final is not None for t in traces), "walks": len(traces)}
    cold = statistics.median(r["cold_s"] for r in runs)
    warm = statistics.median(r["warm_s"] for r in runs)
    steps = statistics.median(r["steps"] for r in runs)
    return {"load_s": load_s, "walks": n_questions, "max_steps": max_steps, "steps": steps, "cold_s": cold,
            "warm_s": warm, "steps_per_s": statistics.median(r["steps"] / r["cold_s"] for r in runs),
            "tokens_per_s": statistics.median(r["tokens"] / r["cold_s"] for r in runs),
            "tokens_per_request": sum(r["tokens"] for r in runs) / sum(r["requests"] for r in runs),
            "requests_per_step": sum(r["requests"] for r in runs) / sum(r["steps"] for r in runs),
            "speedup": cold / warm}


def bench_http(latency_s: float, n_requests: int, repeats: int) -> list[dict[str, float]]:
    """Throughput against a stub server running in its own process (so it does not share the client's GIL)."""
    import requests

    rows = []
    for concurrency in (1, 4, 16):
        server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_stub.py"), "--latency-ms",
                                   str(latency_s * 1000)], stdout=subprocess.PIPE, text=True)
        try:
            base_url = server.stdout.readline().strip()
            backend = get_backend("openai", base_url=base_url, model="stub", concurrency=concurrency,
                                  progress=False)
            seconds = []
            for repeat in range(repeats):
                requests_ = [GenerationRequest(messages=[{"role": "user", "content": f"r{repeat}-{i}"}])
                             for i in range(n_requests)]
                seconds.append(timed(lambda backend=backend, batch=requests_: backend.generate(batch)))
            in_flight = requests.get(f"{base_url}/stats", timeout=5).json()["max_in_flight"]
        finally:
            server.terminate()
            server.wait(timeout=10)
        median, rate = median_rate(n_requests, seconds)
        rows.append({"concurrency": concurrency, "seconds": median, "requests_per_s": rate, "max_in_flight": in_flight,
                     "ideal_per_s": concurrency / latency_s})
    return rows


def bench_quality(n_questions: int, max_steps: int, llm_judge: bool, cue_prefix: bool) -> dict[str, object]:
    """SmolLM2 MOLE-SYN on the first GSM8K questions towards the R1 (lexical) graph; cached under cache_dir()."""
    from molesyn_lib.labelers import get_labeler
    from molesyn_lib.sources import benchmark_path, load_questions, load_reasoningflow_traces
    from molesyn_lib.synth import fidelity

    teacher = load_reasoningflow_traces(files=("aime2024_5models.jsonl",), models=("DeepSeek-R1",))
    graph = TransferGraph.from_sequences(get_labeler("lexical").label(teacher), labeler="lexical",
                                         name="R1-aime2024-lexical")
    questions = load_questions(benchmark_path("gsm8k"), limit=n_questions)
    inner = get_backend("transformers", batch_size=16, progress=False)
    inner.load()
    backend = CachedBackend(inner, progress=False)
    config = SynthConfig(max_steps=max_steps, min_steps=2, cue_prefix=cue_prefix)
    started = time.perf_counter()
    traces = synthesize(questions, graph, backend, config, progress=False)
    seconds = time.perf_counter() - started
    result: dict[str, object] = {
        "teacher_traces": len(teacher), "teacher_steps": graph.n_steps, "questions": n_questions,
        "max_steps": max_steps, "config": config, "seconds": seconds, "cache_hits": backend.hits,
        "generated": backend.misses, "steps": sum(len(t.steps) for t in traces), "traces": traces,
        "tokens": inner.stats.new_tokens, "requests": inner.stats.requests,
        "stop_reasons": {r: sum(t.meta["stop_reason"] == r for t in traces) for r in ("boxed", "max_steps",
                                                                                       "degenerate")},
        "forced": sum(bool(t.meta["forced_answer"]) for t in traces),
        "lexical": fidelity(traces, graph, "lexical"),
    }
    if llm_judge:
        result["llm"] = fidelity(traces, graph, get_labeler("llm", progress=False))
    return result


def render(results: dict[str, object], args: argparse.Namespace) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    lines = [
        "## MOLE-SYN synthesis and generation backends (`benchmarks/bench_synth.py`)",
        "",
        (f"Measured {date.today().isoformat()} on the project machine: {os.cpu_count()}-core CPU "
         f"({platform.processor() or platform.machine()}), no GPU, Python {platform.python_version()}. "
         f"Medians over {args.repeats} repeats (SmolLM2: {args.smollm2_repeats}). Load average at the end: "
         f"{', '.join(f'{x:.1f}' if isinstance(x, float) else str(x) for x in load)} (the 2 cores are shared, so "
         "CPU numbers are noisy)."),
        "",
        "| backend | walks x max steps | steps synthesised | median s | steps/s | notes |",
        "|---|---|---|---|---|---|",
    ]
    mock = results["mock"]
    lines.append(f"| mock | {mock['walks']} x 10 | {mock['steps']} | {mock['seconds']:.2f} | {mock['steps_per_s']:.0f} "
                 f"| prompt building, cleaning, grading: the synthesiser's own overhead |")
    lab = results.get("lab")
    if lab:
        lines.append(f"| lab | {lab['walks']} x 12 | {lab['steps']} | {lab['seconds']:.2f} | "
                     f"{lab['steps_per_s']:.0f} | the lab's weak writer (`molesyn_lib.lab`) |")
    else:
        lines.append("| lab | - | - | - | - | skipped: no `lab` backend registered |")
    smol = results.get("smollm2")
    if smol:
        lines.append(f"| transformers (SmolLM2-135M, fp32, CPU) | {smol['walks']} x {smol['max_steps']} | "
                     f"{smol['steps']:.0f} | {smol['cold_s']:.1f} | {smol['steps_per_s']:.2f} | "
                     f"{smol['tokens_per_s']:.1f} new tokens/s, {smol['tokens_per_request']:.1f} tokens/request, "
                     f"{smol['requests_per_step']:.2f} requests/step (retries, final answers); "
                     f"model load {smol['load_s']:.1f} s |")
    else:
        lines.append("| transformers (SmolLM2-135M) | - | - | - | - | skipped (--skip-smollm2) |")
    lines += ["", "Cache-hit rerun (same walks, same seed, answered from `generations.sqlite`):", "",
              "| backend | first run s | rerun s | speed-up |", "|---|---|---|---|",
              (f"| mock (+ sqlite cache) | {mock['cached_cold_s']:.2f} | {mock['cached_warm_s']:.2f} | "
               f"{mock['cached_cold_s'] / mock['cached_warm_s']:.1f}x |")]
    if smol:
        lines.append(f"| SmolLM2-135M | {smol['cold_s']:.1f} | {smol['warm_s']:.2f} | {smol['speedup']:.0f}x |")
    http = results["http"]
    lines += ["", (f"OpenAI-compatible HTTP backend against the loopback stub server (`tests/openai_stub.py`, in its "
                   f"own process), fixed latency {args.latency_ms} ms per request, {args.http_requests} requests:"), "",
              "| concurrency | median s | requests/s | ideal (concurrency / latency) | max in flight at the server |",
              "|---|---|---|---|---|"]
    for row in http:
        lines.append(f"| {row['concurrency']} | {row['seconds']:.2f} | {row['requests_per_s']:.1f} | "
                     f"{row['ideal_per_s']:.0f} | {row['max_in_flight']} |")
    for quality in results.get("quality", []):
        lines += render_quality(quality)
    lines.append("")
    return "\n".join(lines)


def _agreement(result: object) -> str:
    return ", ".join(f"{b} {result.agreement[b]:.2f}" for b in ("N", "D", "R", "E", "all"))


def render_quality(q: dict[str, object]) -> list[str]:
    config = q["config"]
    traces = q["traces"]
    lexical = q["lexical"]
    n = len(traces)
    lines = [
        "", (f"### SmolLM2-135M synthesis quality ({q['questions']} GSM8K test questions, R1 graph"
             f"{', steps started with behaviour cues' if config.cue_prefix else ''})"), "",
        (f"Target graph: lexical labels of the {q['teacher_traces']} DeepSeek-R1 ReasoningFlow AIME-2024 traces "
         f"({q['teacher_steps']} steps). One walk per question, `SynthConfig(max_steps={config.max_steps}, "
         f"min_steps={config.min_steps})`: prompt style `{config.style}`, temperature {config.temperature}, "
         f"top-p {config.top_p}, repetition penalty {config.repetition_penalty}, {config.max_new_tokens} new tokens "
         f"per step, cue prefixes {'on' if config.cue_prefix else 'off'}. This run generated {q['generated']} "
         f"requests and took {q['cache_hits']} from the cache."), "",
        "| measure | value |", "|---|---|",
        (f"| wall time / steps | {q['seconds']:.0f} s / {q['steps']} steps ({q['steps'] / q['seconds']:.2f} steps/s) |"
         if q["generated"] else f"| wall time / steps | from the cache / {q['steps']} steps |"),
        (f"| new tokens per generated request | {q['tokens'] / max(1, q['requests']):.1f} |" if q["generated"]
         else "| new tokens per generated request | (cached run) |"),
        f"| mean steps per trace | {lexical.mean_steps:.1f} |",
        (f"| walk ends | boxed answer {q['stop_reasons']['boxed']}, max_steps {q['stop_reasons']['max_steps']}, "
         f"degenerate {q['stop_reasons']['degenerate']} (of {n}) |"),
        f"| answer rate (boxed in the walk or forced after it) | {lexical.answer_rate:.2f} ({q['forced']} forced) |",
        f"| accuracy vs gold | {lexical.accuracy:.2f} |" if lexical.accuracy is not None else "| accuracy | n/a |",
        f"| Pearson r, requested walk graph vs target | {lexical.pearson_requested:.3f} |",
        f"| Pearson r, lexical-labelled graph vs target | {lexical.pearson_labelled:.3f} |",
        f"| agreement lexical label == requested | {_agreement(lexical)} |",
    ]
    if "llm" in q:
        judge = q["llm"]
        lines += [f"| Pearson r, llm-labelled (SmolLM2 judge) graph vs target | {judge.pearson_labelled:.3f} |",
                  f"| agreement llm label == requested | {_agreement(judge)} |"]
    lines += ["", "First steps of two synthesised traces (requested behaviour in brackets):", ""]
    for trace in traces[:2]:
        lines.append(f"* Q: {trace.question[:90]}... (gold {trace.answer}, predicted {trace.meta['predicted']})")
        for behavior, step in list(zip(trace.behaviors, trace.steps))[:4]:
            lines.append(f"  * [{behavior}] {step[:140].replace('|', '/')}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-smollm2", action="store_true")
    parser.add_argument("--smollm2-questions", type=int, default=4)
    parser.add_argument("--smollm2-steps", type=int, default=4)
    parser.add_argument("--smollm2-repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--http-requests", type=int, default=64)
    parser.add_argument("--quality-questions", type=int, default=10, help="0 skips the quality run")
    parser.add_argument("--quality-steps", type=int, default=8)
    parser.add_argument("--quality-llm-judge", action="store_true", help="also label with the llm labeller")
    parser.add_argument("--quality-variants", default="plain,cue",
                        help="comma-separated: plain (no cue prefixes) and/or cue (SynthConfig.cue_prefix)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS_synth.md"))
    args = parser.parse_args()
    results: dict[str, object] = {"mock": bench_mock(args.repeats)}
    print("mock:", results["mock"], file=sys.stderr)
    results["lab"] = bench_lab(args.repeats)
    print("lab:", results["lab"], file=sys.stderr)
    results["http"] = bench_http(args.latency_ms / 1000, args.http_requests, args.repeats)
    print("http:", results["http"], file=sys.stderr)
    if not args.skip_smollm2:
        results["smollm2"] = bench_smollm2(args.smollm2_questions, args.smollm2_steps, args.smollm2_repeats)
        print("smollm2:", results["smollm2"], file=sys.stderr)
    if args.quality_questions > 0 and not args.skip_smollm2:
        results["quality"] = []
        for variant in args.quality_variants.split(","):
            quality = bench_quality(args.quality_questions, args.quality_steps, args.quality_llm_judge,
                                    cue_prefix=variant.strip() == "cue")
            results["quality"].append(quality)
            print(f"quality ({variant}):", quality["lexical"].summary(), file=sys.stderr)
    text = render(results, args)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
