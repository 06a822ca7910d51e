"""Plumbing shared by the cached experiment runners (lab runs, protection runs, RL runs).

Each runner stores one JSON record per run under the cache directory, keyed by a hash of the run's full config, and
runs uncached configs in spawned worker processes with one torch thread each. This module holds the pieces they
share: cache sub-directories, run keys, JSON encoding of numpy values, the atomic record write, the worker initialiser, and
:func:`run_cached_grid`, the cached parallel loop of the lab and protection runners.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .config import cache_dir
from .errors import MolesynError


def cache_subdir(*parts: str) -> Path:
    """``<cache dir>/<parts...>``, created if needed."""
    path = cache_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_key(description: Mapping[str, Any]) -> str:
    """The cache key of a run: the first 20 hex digits of the SHA-256 of its description as canonical JSON."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for numpy arrays and scalars."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a run record atomically (:func:`molesyn_lib.safeio.write_text`: a temporary file beside it, then a
    rename): a killed run leaves no half file. Records are read back by Python only, so NaN metrics stay NaN."""
    from .safeio import write_text

    write_text(path, json.dumps(record, default=json_default) + "\n")


def init_worker(threads: int) -> None:
    """Initialise a worker process: offline Hugging Face, ``threads`` torch threads, TRL's harmless FutureWarning
    (it calls transformers' deprecated ``is_gradient_checkpointing`` every step) silenced."""
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(threads)


class GridRun(Protocol):
    """What :func:`run_cached_grid` needs of a run config: a cache key, a label for messages, and a seed."""

    seed: int

    def key(self) -> str: ...

    def label(self) -> str: ...


RunT = TypeVar("RunT", bound=GridRun)


def run_cached_grid(runs: Sequence[RunT], run: Callable[[RunT], dict[str, Any]], record_dir: Path, what: str,
                    workers: int = 2, use_cache: bool = True, progress: bool = True,
                    threads_per_worker: int = 1) -> list[dict[str, Any]]:
    """Run every config of ``runs`` with ``run`` and return the records in the order of ``runs``, each with the
    config's ``condition`` label and ``seed``.

    A config whose record ``<record_dir>/<key>.json`` exists is loaded from it (``cached: True``) when ``use_cache``;
    identical configs (same key) run once. Uncached ones run in ``workers`` spawned processes of
    ``threads_per_worker`` torch threads (in this process when ``workers <= 1`` or only one is left); ``run`` must then
    be picklable (a module-level function or a ``functools.partial`` of one). A failed run raises
    :class:`MolesynError` naming ``what``, the config's label and seed.
    """
    from .progress import tqdm

    keys = [config.key() for config in runs]
    records: dict[str, dict[str, Any]] = {}
    todo: dict[str, RunT] = {}
    for key, config in zip(keys, runs):
        path = record_dir / f"{key}.json"
        if use_cache and path.is_file():
            records[key] = json.loads(path.read_text()) | {"cached": True}
        elif key not in todo:
            todo[key] = config
    bar = tqdm(total=len(todo), desc=f"{what}s", unit="run", disable=not progress or not todo)
    try:
        if workers <= 1 or len(todo) <= 1:
            for key, config in todo.items():
                init_worker(threads_per_worker)
                records[key] = run(config)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker,
                                     initargs=(threads_per_worker,)) as pool:
                futures = {pool.submit(run, config): key for key, config in todo.items()}
                for future in as_completed(futures):
                    key = futures[future]
                    try:
                        records[key] = future.result()
                    except Exception as exc:
                        config = todo[key]
                        raise MolesynError(f"{what} {config.label()} (seed {config.seed}) failed: "
                                           f"{type(exc).__name__}: {exc}") from exc
                    bar.update(1)
    finally:
        bar.close()
    return [dict(records[key], condition=config.label(), seed=config.seed) for key, config in zip(keys, runs)]
