"""Cached RL experiments for Chapter 4: initialisations (SFT checkpoints), multi-seed RL runs, profiles, frames.

* :class:`InitSpec` / :data:`INITS`: the starting policies compared, all the same student architecture:

  - ``untrained``: the randomly initialised student (no SFT);
  - ``instruct``: SFT on the ``instruct`` teacher's short CoT (N/D steps only): instruct distillation;
  - ``molesyn``: SFT on lab MOLE-SYN traces, a random walk on a strong teacher's transfer graph (``r1`` by default,
    the graph Chapter 1 measured when present) whose steps the *weak writer* performs
    (:func:`~molesyn_lib.lab.writer.synthesize_lab_traces`; it slips and cannot tell when to reflect);
  - ``distill``: SFT on the ``r1`` teacher's own traces: teacher distillation;
  - ``weak``: the same data as ``distill`` but a quarter of the SFT steps, so RL starts from a policy that has not
    yet learned the task (an under-trained SFT checkpoint).

* :class:`SFTConfig`: how every initialisation is trained (task family, student, optimiser steps: equal *steps*,
  i.e. equal numbers of trajectories seen, as the paper compares data sources at equal trajectory counts).
  :func:`init_checkpoint` trains one (or finds it) under ``cache_dir()/rl/inits/<key>/``, through the lab-run
  kernel (:mod:`molesyn_lib.lab.kernel`: its data-source names, its trainer, its :data:`~molesyn_lib.lab.kernel.LAB_VERSION`).
* :class:`RLRunConfig`: one RL run = initialisation x SFT settings x :class:`~.trainer.RLConfig` (its ``seed`` is
  the run's seed) x the held-out and prompt sets. :func:`run_rl` runs it (or loads it) and caches the record as
  JSON under ``cache_dir()/rl/runs/<key>.json``; the key hashes the whole config, the teacher specs involved and
  :data:`RL_VERSION`, so a chapter rerun is instant and a changed setting recomputes.
* :func:`run_rl_grid` runs many: initialisations first, each run as soon as its initialisation exists, in
  ``workers`` spawned processes with one torch thread each (default 2, the CPU machine's cores), with a progress
  bar; records come back in the configs' order.
* :func:`run_summary` (one run -> stability numbers), :func:`curves_frame` (per-step rows), :func:`evals_frame`
  (held-out rows), :func:`init_table` (each initialisation's SFT data and step-0 accuracy) and
  :func:`length_dynamics` (dip and regrowth of the length curve) feed :func:`~.stability.stability_table` and the
  chapter's tables and plots.

RL prompts are fresh tasks of the same family (disjoint from the held-out tasks, drawn with ``task_seed + 2``); the
held-out tasks are the first ``n_eval`` test tasks of the SFT split. Profiles (:data:`PROFILES`) hold the chapter's
defaults; ``benchmarks/RESULTS_rl.md`` records their measured times.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import cache_dir
from ..errors import MolesynError, lookup
from ..lab.kernel import (
    LAB_VERSION,
    MOLESYN_PREFIX,
    SFTPhase,
    data_accuracy,
    describe_source,
    source_traces,
    train_phases,
)
from ..lab.tasks import TaskConfig, generate_tasks, make_splits
from ..lab.teachers import get_teacher
from ..lab.writer import LabWriter
from ..runcache import cache_subdir, config_key, init_worker, write_record
from .stability import dip_and_regrowth, run_stability
from .trainer import RLConfig

#: Bump when the meaning of a run changes (metrics, training): old cached results are then ignored.
RL_VERSION = "1"


@dataclass(frozen=True)
class InitSpec:
    """A starting policy for RL.

    Attributes:
        name: display name (also the chapter's label).
        kind: ``untrained`` (no SFT), ``teacher`` (SFT on a lab teacher's traces) or ``molesyn`` (SFT on lab
            MOLE-SYN traces: a walk on ``source``'s graph written by the weak writer).
        source: the teacher (``kind="teacher"``) or the teacher whose graph guides the walk (``kind="molesyn"``);
            a preset name or a ``GRAPH.json`` path.
        writer_slip_rate: the weak writer's slip rate (``molesyn`` only).
        filter_correct: keep only SFT traces whose final answer is right (MOLE-SYN's optional answer filter; the
            SFT step budget stays the same, so fewer traces are seen more often).
        sft_steps: SFT optimiser steps for this initialisation (``None``: the shared :class:`SFTConfig`'s).
    """

    name: str
    kind: str
    source: str = ""
    writer_slip_rate: float = 0.1
    filter_correct: bool = False
    sft_steps: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("untrained", "teacher", "molesyn"):
            raise MolesynError(f"unknown initialisation kind {self.kind!r} (untrained, teacher or molesyn)")
        if self.kind != "untrained" and not self.source:
            raise MolesynError(f"initialisation {self.name!r} needs a source teacher")
        if self.sft_steps is not None and self.sft_steps < 1:
            raise MolesynError(f"initialisation {self.name!r}: sft_steps must be at least 1")

    @property
    def data_source(self) -> str:
        """The SFT data in the lab-run kernel's vocabulary (:mod:`molesyn_lib.lab.kernel`): the teacher's name, or
        ``molesyn:<source>`` for a walk on the source's graph ("" for ``untrained``)."""
        if self.kind == "molesyn":
            return f"{MOLESYN_PREFIX}{self.source}"
        return self.source if self.kind == "teacher" else ""

    def writer(self) -> LabWriter | None:
        """The weak writer of a MOLE-SYN initialisation (``None`` otherwise)."""
        return LabWriter(slip_rate=self.writer_slip_rate) if self.kind == "molesyn" else None

    def describe(self, graphs_dir: str | Path | None = None) -> dict[str, Any]:
        """What determines this initialisation (cache keys); ``graphs_dir`` as in :attr:`SFTConfig.graphs_dir`."""
        record = asdict(self)
        record.pop("name")
        if self.source:
            record["source_spec"] = get_teacher(self.source, graphs_dir=graphs_dir).describe()
            record["data_source"] = describe_source(self.data_source, graphs_dir, self.writer())
        return record


INITS: dict[str, InitSpec] = {
    "untrained": InitSpec("untrained", "untrained"),
    "instruct": InitSpec("instruct", "teacher", "instruct"),
    "molesyn": InitSpec("molesyn", "molesyn", "r1"),
    "distill": InitSpec("distill", "teacher", "r1"),
    "weak": InitSpec("weak", "teacher", "r1", sft_steps=800),
}


def get_init(name: str | InitSpec) -> InitSpec:
    if isinstance(name, InitSpec):
        return name
    return lookup(INITS, name, "initialisation")


@dataclass(frozen=True)
class SFTConfig:
    """How the initialisations are trained (shared by all of them).

    Attributes:
        task: the task family; ``task_seed`` fixes the SFT tasks and the held-out tasks.
        n_train: SFT tasks (one trace each); ``n_test``: held-out tasks in the split.
        student: student size (:data:`~molesyn_lib.lab.student.STUDENT_SPECS`).
        steps: SFT optimiser steps; ``batch_size`` traces per step; ``learning_rate`` peak (cosine schedule).
        seed: initialisation, data order and teacher noise seed (one checkpoint per initialisation; the RL seeds
            vary on top of it).
        bf16: bfloat16 mixed precision (GPU).
        graphs_dir: a folder of measured graphs whose ``<preset>.json`` replaces the built-in graph of a source
            teacher (``str(lab.measured_graphs_dir())`` for Chapter 1's); ``None``: the built-in lab graphs. Not in
            cache keys itself: the resolved teacher graphs are (:meth:`describe`).
    """

    task: TaskConfig = field(default_factory=lambda: TaskConfig(length=3))
    task_seed: int = 1234
    n_train: int = 20_000
    n_test: int = 300
    student: str = "small"
    steps: int = 1600
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    bf16: bool = False
    graphs_dir: str | None = None

    def describe(self) -> dict[str, Any]:
        """The settings that determine the SFT (``graphs_dir`` acts through the teacher specs instead)."""
        record = asdict(self)
        record.pop("graphs_dir")
        return record


def init_key(init: InitSpec, sft: SFTConfig) -> str:
    """Cache key of an initialisation checkpoint (an untrained one ignores the SFT budget)."""
    payload: dict[str, Any] = {"init": init.describe(sft.graphs_dir), "student": sft.student, "seed": sft.seed,
                               "version": RL_VERSION, "lab_version": LAB_VERSION}
    if init.kind != "untrained":
        payload["sft"] = sft.describe()
    return config_key(payload)


def inits_dir() -> Path:
    return cache_subdir("rl", "inits")


def runs_dir() -> Path:
    return cache_subdir("rl", "runs")


def sft_traces(init: InitSpec, sft: SFTConfig, tasks: Sequence[Any]) -> list[Any]:
    """The SFT traces of an initialisation on ``tasks`` (:func:`~molesyn_lib.lab.kernel.source_traces`)."""
    if init.kind == "untrained":
        raise MolesynError(f"initialisation {init.name!r} has no SFT data")
    return source_traces(init.data_source, tasks, seed=sft.seed, task_config=sft.task, graphs_dir=sft.graphs_dir,
                         writer=init.writer())


def init_checkpoint(init: str | InitSpec, sft: SFTConfig, cache: bool = True) -> Path:
    """The checkpoint directory of an initialisation, trained through the lab-run kernel (SFT with TRL for a fixed
    number of steps, :func:`~molesyn_lib.lab.kernel.train_phases`) and saved if not cached."""
    from ..lab.student import build_student

    init = get_init(init)
    directory = inits_dir() / init_key(init, sft)
    if cache and (directory / "lab_student.json").is_file():
        return directory
    started = time.perf_counter()
    record: dict[str, Any] = {"init": init.name, "kind": init.kind, "source": init.source}
    if init.kind == "untrained":
        student = build_student(sft.student, seed=sft.seed)
    else:
        splits = make_splits(sft.n_train, sft.n_test, sft.task, sft.task_seed)
        traces = sft_traces(init, sft, splits.train)
        written = len(traces)
        accuracy = data_accuracy(traces)
        if init.filter_correct:
            traces = [t for t in traces if t.meta.get("correct")]
            if not traces:
                raise MolesynError(f"initialisation {init.name!r}: no correct trace survived the answer filter")
        trained = train_phases(sft.student, sft.seed, [SFTPhase(traces, max_steps=init.sft_steps or sft.steps)],
                               sft.batch_size, sft.learning_rate, bf16=sft.bf16)
        student = trained.student
        record.update(sft_steps=trained.steps, sft_tokens=trained.completion_tokens,
                      sft_loss=trained.results[-1].train_loss, traces_written=written, traces_kept=len(traces),
                      data_accuracy=accuracy)
    record["sft_seconds"] = round(time.perf_counter() - started, 2)
    student.meta.update(init=record, task=sft.task.to_dict())
    tmp = directory.with_name(f"{directory.name}.tmp{os.getpid()}")
    student.save(tmp)
    if directory.exists():  # another process finished first: keep its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, directory)
    return directory


@dataclass(frozen=True)
class RLRunConfig:
    """One RL run (see module docstring).

    Attributes:
        init: the initialisation.
        sft: how initialisations are trained.
        rl: the RL settings (``rl.seed`` is the run's seed).
        n_eval: held-out tasks decoded at every evaluation.
        n_prompts: RL prompt pool (fresh tasks of the family, disjoint from the held-out ones).
    """

    init: InitSpec
    sft: SFTConfig
    rl: RLConfig
    n_eval: int = 200
    n_prompts: int = 4000

    @property
    def seed(self) -> int:
        return self.rl.seed

    def describe(self) -> dict[str, Any]:
        rl = self.rl.to_dict()
        for transient in ("threads", "progress"):
            rl.pop(transient, None)
        return {"init_key": init_key(self.init, self.sft), "init": self.init.describe(self.sft.graphs_dir),
                "sft": self.sft.describe(),
                "rl": rl, "n_eval": self.n_eval, "n_prompts": self.n_prompts, "version": RL_VERSION}

    def key(self) -> str:
        return config_key(self.describe())


def run_tasks(config: RLRunConfig) -> tuple[list[Any], list[Any]]:
    """``(RL prompt tasks, held-out tasks)`` of a run."""
    splits = make_splits(config.sft.n_train, config.sft.n_test, config.sft.task, config.sft.task_seed)
    held_out = splits.test[: config.n_eval]
    prompts = generate_tasks(config.n_prompts, config.sft.task, seed=config.sft.task_seed + 2,
                             exclude={t.prompt for t in splits.test})
    return prompts, held_out


def run_rl(config: RLRunConfig, cache: bool = True, keep_model: bool = False) -> dict[str, Any]:
    """Run (or load) one RL run; returns its record (``steps``, ``evals``, ``summary`` and provenance)."""
    from ..lab.student import load_student
    from .trainer import train_rl

    path = runs_dir() / f"{config.key()}.json"
    if cache and path.is_file():
        record = json.loads(path.read_text())
        if not keep_model or Path(record.get("model_dir") or "").is_dir():
            return record | {"cached": True}
    init_dir = init_checkpoint(config.init, config.sft)
    student = load_student(init_dir)
    prompts, held_out = run_tasks(config)
    result = train_rl(student, prompts, held_out, config.rl)
    record: dict[str, Any] = {
        "key": config.key(), "init": config.init.name, "seed": config.seed, "init_dir": str(init_dir),
        "init_meta": student.meta.get("init", {}), "params": student.n_params, **result.to_dict(),
        "describe": config.describe(),
    }
    record["summary"] = run_summary(record)
    if keep_model:
        directory = cache_dir() / "rl" / "models" / config.key()
        student.save(directory)
        record["model_dir"] = str(directory)
    write_record(path, record)
    return record | {"cached": False}




def _mean_window(values: Sequence[float], first: bool, window: int) -> float:
    import numpy as np

    array = np.asarray([v for v in values if v is not None], dtype=float)
    if array.size == 0:
        return float("nan")
    part = array[:window] if first else array[-window:]
    return float(np.nanmean(part)) if np.isfinite(part).any() else float("nan")


def run_summary(record: Mapping[str, Any], margin: float = 0.1, window: int = 5,
                metric: str = "acc_sampled") -> dict[str, Any]:
    """One run's stability numbers: the held-out ``metric`` curve (:func:`~.stability.run_stability` at
    ``margin``; ``acc_sampled`` at the RL temperature by default, or ``acc_greedy``), the greedy accuracy at the
    start and end, the final graph drift, and the mean reward, reward spread, length, answer share and KL over the
    first and last ``window`` steps."""
    evals = list(record.get("evals", []))
    steps = list(record.get("steps", []))
    stability = run_stability([e["step"] for e in evals], [e.get(metric, float("nan")) for e in evals], margin)
    last = evals[-1] if evals else {}
    first = evals[0] if evals else {}
    out: dict[str, Any] = {"init": record.get("init"), "seed": record.get("seed"), "metric": metric,
                           **stability.to_dict(),
                           "greedy_initial": first.get("acc_greedy", float("nan")),
                           "greedy_final": last.get("acc_greedy", float("nan")),
                           "drift_pearson": last.get("drift_pearson", float("nan")),
                           "drift_js": last.get("drift_js", float("nan"))}
    for name in ("reward", "reward_spread", "length_tokens", "answered", "kl"):
        series = [s.get(name, float("nan")) for s in steps]
        out[f"{name}_first"] = _mean_window(series, True, window)
        out[f"{name}_last"] = _mean_window(series, False, window)
    return out


# ------------------------------------------------------------------------------------------------------ grids


def _init_job(init: InitSpec, sft: SFTConfig) -> str:
    return str(init_checkpoint(init, sft))


def _run_job(config: RLRunConfig, keep_model: bool) -> dict[str, Any]:
    return run_rl(config, cache=True, keep_model=keep_model)


def run_rl_grid(configs: Sequence[RLRunConfig], workers: int = 2, threads_per_worker: int = 1,
                keep_model: bool = False, progress: bool = True) -> list[dict[str, Any]]:
    """Run every config (cached ones load instantly), in ``workers`` processes of ``threads_per_worker`` torch
    threads: missing initialisations are trained first, and each run starts as soon as its initialisation exists.
    Identical configs run once; records come back in the order of ``configs``."""
    from ..progress import tqdm

    keys = [c.key() for c in configs]
    records: dict[str, dict[str, Any]] = {}
    todo: dict[str, RLRunConfig] = {}
    for key, config in zip(keys, configs):
        path = runs_dir() / f"{key}.json"
        if path.is_file() and not keep_model:
            records[key] = json.loads(path.read_text()) | {"cached": True}
        elif key not in todo:
            todo[key] = config
    inits: dict[str, tuple[InitSpec, SFTConfig]] = {}
    for config in todo.values():
        ikey = init_key(config.init, config.sft)
        if not (inits_dir() / ikey / "lab_student.json").is_file():
            inits[ikey] = (config.init, config.sft)
    bar = tqdm(total=len(todo) + len(inits), desc="RL runs", unit="job", disable=not progress or not todo)
    try:
        if workers <= 1:
            init_worker(threads_per_worker)
            for init, sft in inits.values():
                init_checkpoint(init, sft)
                bar.update(1)
            for key, config in todo.items():
                records[key] = run_rl(config, keep_model=keep_model)
                bar.update(1)
            return [records[k] for k in keys]
        waiting = dict(todo)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker,
                                 initargs=(threads_per_worker,)) as pool:
            running: dict[Future[Any], tuple[str, str]] = {}
            for ikey, (init, sft) in inits.items():
                running[pool.submit(_init_job, init, sft)] = ("init", ikey)

            def submit_ready() -> None:
                for key in [k for k, c in waiting.items() if init_key(c.init, c.sft) not in inits]:
                    running[pool.submit(_run_job, waiting.pop(key), keep_model)] = ("run", key)

            submit_ready()
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    kind, key = running.pop(future)
                    try:
                        value = future.result()
                    except Exception as exc:
                        what = f"initialisation {inits[key][0].name}" if kind == "init" else \
                            f"RL run {todo[key].init.name} (seed {todo[key].seed})"
                        raise MolesynError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
                    if kind == "init":
                        inits.pop(key)
                    else:
                        records[key] = value
                    bar.update(1)
                submit_ready()
    finally:
        bar.close()
    return [records[k] for k in keys]


# ------------------------------------------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class RLProfile:
    """Defaults of a chapter profile: SFT settings, RL settings, initialisations, seeds, held-out size."""

    name: str
    sft: SFTConfig
    rl: RLConfig
    inits: tuple[str, ...] = ("untrained", "weak", "instruct", "molesyn", "distill")
    seeds: tuple[int, ...] = (0, 1, 2)
    n_eval: int = 200
    n_prompts: int = 4000
    collapse_margin: float = 0.1


PROFILES: dict[str, RLProfile] = {
    # 2 CPU cores (benchmarks/RESULTS_rl.md): the tiny student passes the operand-tracking transition on K=3 "+"
    # chains when it sees 8000 distinct tasks; 3200 SFT steps clear it with a margin for every initialisation
    # (1600 did for some teacher graphs and not others), so every SFT initialisation starts far above the guessing
    # floor (greedy ~1.0) with room for RL in its sampled accuracy (about 0.5-0.65 at T=1).
    "smoke": RLProfile(
        "smoke", SFTConfig(task=TaskConfig(length=3, operators="+"), n_train=8000, n_test=300, student="tiny",
                           steps=3200, batch_size=16, learning_rate=3e-3),
        RLConfig(steps=60, prompts_per_step=8, num_generations=8, learning_rate=3e-4, eval_every=5, eval_samples=2,
                 max_completion_length=96),
        n_eval=200, n_prompts=2000),
    # The reference CPU run (2 cores): the smoke initialisations (sampled accuracy 0.3-0.7 at T=1, room for RL both
    # ways), 200 DAPO steps and 3 seeds (5 did not fit the book's 2 hours), every seed's curve kept. DAPO in substance (spelled out, though they are the
    # RLConfig defaults): two updates per generation batch (the second is off-policy, so clip-higher binds), zero-spread
    # groups filtered out (dynamic sampling), soft overlong punishment over the last 16 of the 96 tokens.
    "standard": RLProfile(
        "standard", SFTConfig(task=TaskConfig(length=3, operators="+"), n_train=8000, n_test=300, student="tiny",
                              steps=3200, batch_size=16, learning_rate=3e-3),
        RLConfig(steps=200, prompts_per_step=8, num_generations=8, learning_rate=3e-4, eval_every=10, eval_samples=2,
                 max_completion_length=96, num_iterations=2, steps_per_generation=1, dynamic_sampling=True,
                 overlong=True, overlong_cache=16),
        seeds=(0, 1, 2), n_eval=200, n_prompts=4000),
    # One GPU, about 10 minutes (sized by estimate; not run: no GPU was lent to the task that wrote it).
    "full": RLProfile(
        "full", SFTConfig(task=TaskConfig(length=4), n_train=50_000, n_test=1000, student="small", steps=4000,
                          batch_size=64, learning_rate=2e-3, bf16=True),
        RLConfig(steps=120, prompts_per_step=32, num_generations=8, learning_rate=1e-4, eval_every=10,
                 eval_samples=2, max_completion_length=128, threads=None, bf16=True),
        seeds=(0, 1, 2, 3, 4), n_eval=500, n_prompts=20_000),
}


def profile(name: str | RLProfile) -> RLProfile:
    if isinstance(name, RLProfile):
        return name
    return lookup(PROFILES, name, "RL profile")


def grid(p: str | RLProfile = "smoke", inits: Sequence[str | InitSpec] | None = None,
         seeds: Sequence[int] | None = None, sft: SFTConfig | None = None, rl: RLConfig | None = None,
         n_eval: int | None = None, n_prompts: int | None = None) -> list[RLRunConfig]:
    """Every initialisation x seed of a profile (any part overridable); the seed goes into ``RLConfig.seed``."""
    p = profile(p)
    base_rl = rl or p.rl
    return [RLRunConfig(init=get_init(init), sft=sft or p.sft, rl=replace(base_rl, seed=int(seed)),
                        n_eval=n_eval if n_eval is not None else p.n_eval,
                        n_prompts=n_prompts if n_prompts is not None else p.n_prompts)
            for init in (inits or p.inits) for seed in (seeds if seeds is not None else p.seeds)]


# ------------------------------------------------------------------------------------------------------ frames
def curves_frame(records: Sequence[Mapping[str, Any]]) -> Any:
    """Per-step rows (init, seed, step, reward, reward_spread, length_tokens, answered, kl, share_*, ...)."""
    import pandas as pd

    rows = [{"init": r["init"], "seed": r["seed"], **{k: v for k, v in s.items() if not isinstance(v, dict)}}
            for r in records for s in r.get("steps", [])]
    return pd.DataFrame(rows)


def evals_frame(records: Sequence[Mapping[str, Any]]) -> Any:
    """Held-out evaluation rows (init, seed, step, acc, no_answer, chars, drift_pearson, drift_js, share_*)."""
    import pandas as pd

    rows = [{"init": r["init"], "seed": r["seed"], **{k: v for k, v in e.items() if not isinstance(v, dict)}}
            for r in records for e in r.get("evals", [])]
    return pd.DataFrame(rows)


def length_dynamics(records: Sequence[Mapping[str, Any]], metric: str = "length_tokens", window: int = 5,
                    by: str = "init") -> list[dict[str, Any]]:
    """Per ``by`` group: :func:`~.stability.dip_and_regrowth` of the seed-mean ``metric`` curve, plus every seed's
    own dip and regrowth."""
    frame = curves_frame(records)
    rows = []
    for name in dict.fromkeys(frame[by]) if len(frame) else []:
        sub = frame[frame[by] == name]
        if metric not in sub:
            continue
        mean = sub.groupby("step")[metric].mean()
        row = {by: name, **dip_and_regrowth(mean.index.to_numpy(), mean.to_numpy(), window)}
        per_seed = [dip_and_regrowth(g["step"].to_numpy(), g[metric].to_numpy(), window)
                    for _, g in sub.groupby("seed")]
        row["seed_dips"] = [d["dip"] for d in per_seed]
        row["seed_regrowths"] = [d["regrowth"] for d in per_seed]
        rows.append(row)
    return rows


def init_table(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per initialisation: its SFT data (traces kept, their answer accuracy, supervised tokens), the
    held-out guessing floor, and its step-0 held-out accuracy (sampled and greedy; mean over the runs' seeds, which
    differ only in the sampling seed) and behaviour shares."""
    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        first = (record.get("evals") or [{}])[0]
        meta = record.get("init_meta") or {}
        row = rows.setdefault(record["init"], {
            "init": record["init"], "kind": meta.get("kind"), "source": meta.get("source") or "",
            "sft_traces": meta.get("traces_kept"), "sft_data_accuracy": meta.get("data_accuracy"),
            "sft_tokens": meta.get("sft_tokens"), "params": record.get("params"),
            "acc_floor": first.get("acc_floor"), "_sampled": [], "_greedy": [], "_shares": []})
        row["_sampled"].append(first.get("acc_sampled", float("nan")))
        row["_greedy"].append(first.get("acc_greedy", float("nan")))
        row["_shares"].append([first.get(f"eval_share_{b}", float("nan")) for b in "NDRE"])
    out = []
    for row in rows.values():
        import numpy as np

        shares = np.nanmean(np.asarray(row.pop("_shares"), dtype=float), axis=0) if row["_sampled"] else []
        out.append({**row, "acc_sampled": float(np.nanmean(row.pop("_sampled"))),
                    "acc_greedy": float(np.nanmean(row.pop("_greedy"))),
                    **{f"share_{b}": float(v) for b, v in zip("NDRE", shares)}})
    return out
