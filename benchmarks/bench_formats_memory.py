"""Benchmark: peak memory (RSS) of reading large trace files through :mod:`molesyn_lib.formats`.

Run: ``.venv/bin/python benchmarks/bench_formats_memory.py [--size-mb 1024] [--dir /tmp/molesyn-bench]``. Writes one
synthetic corpus of chat ``messages`` records (long-CoT-like, about 20k characters each) of about ``--size-mb`` as
JSONL, gzip JSONL and Parquet, then, each in a fresh subprocess, streams it record by record through
:func:`molesyn_lib.formats.iter_records` and turns every record into a :class:`~molesyn_lib.traces.Trace` (segmented
into steps) without keeping it, and reports the peak RSS (``ru_maxrss``) and the time. Streaming holds one record
(JSONL) or one batch of :data:`molesyn_lib.formats.BATCH_SIZE` rows (Parquet) at a time, so the peak should not grow
with the file. (``load_traces`` and the labellers keep the traces they return, so labelling a whole corpus holds its
steps in memory; use ``--limit`` or split the file for corpora larger than memory.) Prints a markdown table.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import resource, sys, time
from molesyn_lib.formats import iter_records
from molesyn_lib.traces import trace_from_record
start = time.perf_counter()
n = steps = 0
for number, record in iter_records(sys.argv[1]):
    trace = trace_from_record(record, sys.argv[1], number)
    n += 1
    steps += len(trace.steps)
print(n, steps, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

PARAGRAPHS = [
    "Let me compute the sum of the first {i} terms of the sequence, using the formula for an arithmetic series.",
    "Wait, that does not look right: the common difference is {i}, not {j}, so I need to redo the last step.",
    "Alternatively, maybe I can set up a recurrence and solve it with a generating function instead.",
    "So the total is {i} * {j} = {k}, and dividing by the number of terms gives the mean we were asked for.",
]


def record(i: int, chars: int = 20_000) -> dict:
    parts, size, j = [], 0, 0
    while size < chars:
        text = PARAGRAPHS[j % len(PARAGRAPHS)].format(i=i + j, j=j + 2, k=(i + j) * (j + 2))
        parts.append(text)
        size += len(text) + 2
        j += 1
    return {"id": f"r{i}", "model": "synthetic", "messages": [
        {"role": "user", "content": f"Problem {i}: compute the mean."},
        {"role": "assistant", "content": "<think>" + "\n\n".join(parts) + "</think>The mean is 42."}]}


def write_corpus(folder: Path, size_mb: int) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / f"synthetic_{size_mb}mb.jsonl"
    if not jsonl.exists() or jsonl.stat().st_size < size_mb * 2**20:
        with open(jsonl, "w") as handle:
            i = 0
            while handle.tell() < size_mb * 2**20:
                handle.write(json.dumps(record(i)) + "\n")
                i += 1
    gz = jsonl.with_suffix(".jsonl.gz")
    if not gz.exists():
        with open(jsonl, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
            while block := src.read(1 << 24):
                dst.write(block)
    parquet = jsonl.with_suffix(".parquet")
    if not parquet.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        with open(jsonl) as handle:
            while chunk := [json.loads(line) for _, line in zip(range(512), handle)]:
                table = pa.Table.from_pylist(chunk)
                writer = writer or pq.ParquetWriter(parquet, table.schema)
                writer.write_table(table)
        if writer is not None:
            writer.close()
    return {"jsonl": jsonl, "jsonl.gz": gz, "parquet": parquet}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/molesyn-bench"))
    args = parser.parse_args(argv)
    files = write_corpus(args.dir, args.size_mb)
    baseline = subprocess.run([sys.executable, "-c", "import resource, molesyn_lib.formats, molesyn_lib.traces; "
                               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                              capture_output=True, text=True, check=True)
    print(f"peak RSS of importing molesyn's readers alone: {int(baseline.stdout) / 1024:.0f} MB")
    print(f"load average: {os.getloadavg()[0]:.1f}\n")
    print("| file | size (MB) | records | steps | seconds | peak RSS (MB) |\n|---|---|---|---|---|---|")
    for name, path in files.items():
        out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
        n, steps, seconds, rss = out.stdout.split()
        print(f"| {name} | {path.stat().st_size / 2**20:.0f} | {n} | {steps} | {float(seconds):.1f} | "
              f"{int(rss) / 1024:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
