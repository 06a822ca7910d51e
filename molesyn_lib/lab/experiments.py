"""Small, cached experiment runners for the lab chapters: one run = write data, train a student, evaluate it
(through the lab-run kernel, :mod:`.kernel`, which Chapter 5's protection runs and Chapter 4's initialisations share).

A :class:`RunConfig` fully describes a run: the training data as one or more :class:`Phase` objects (teachers
mixed task by task, keyword variant, number of traces, share of the token budget: two phases = sequential A-then-B
training), the task family, the student, the **supervised-token budget** (equal across conditions, since
reflective traces are longer) and the evaluation. :func:`run_one` returns a tidy, flat record (pandas-friendly;
nested extras under ``student_graph``, ``trajectory``, ``samples``) and caches it as JSON under
``cache_dir()/lab/runs/<key>.json`` where the key hashes the whole config, the resolved teacher specs (their target
matrices included: when measured graphs replace the built-in ones, runs recompute) and :data:`LAB_VERSION`.
Teachers target the built-in lab graphs unless a config names a folder of measured graphs on purpose
(:attr:`RunConfig.graphs_dir`, e.g. :func:`~.teachers.measured_graphs_dir` for Chapter 1's).
The display label ``condition`` is not part of the key, so the same run serves several experiments.

:func:`run_grid` runs many configs: cached ones instantly, the others in ``workers`` spawned processes (default 2,
one torch thread each) with a progress bar; the records come back in the configs' order. :func:`summarize` gives
mean, sd, min, max and every seed's value per condition.

Grid builders for Chapter 2 (each returns configs for every condition x seed; the same base settings everywhere so
runs are shared through the cache): :func:`emergence_grid` (structure vs number of traces), :func:`keyword_grid`
(original / replace1 / replace2 / removed cue words vs data size), :func:`isomer_grid` (R1-, QwQ-, gpt-oss- and
instruct-like teachers, with entropy probes), :func:`mixing_grid` (A only, B only, A+B mixed, A then B, B then A),
:func:`imitation_grid` (human-style and ICL-imitation teachers against Long-CoT teachers).

Profiles (:data:`PROFILES`):

* ``smoke`` (2 CPU cores; measured in ``benchmarks/RESULTS_lab.md``). Settings:

  - K=3 chains mod 10; 2000 training tasks, 150 test tasks;
  - the ``tiny`` student (0.13M params), batch 8, lr 3e-3;
  - 300k supervised tokens per run (25-32 s of one core);
  - 2 seeds (the least the verdict rules accept: smoke is the CI profile and keeps the whole book within the CI
    budget; decisions on seeds belong to a larger profile); 3 entropy probes on 48 tasks; 100 self-correction
    probes.

  The five training experiments need 45 distinct runs (shared runs are computed once). With other jobs keeping
  the machine busy, 2 workers took 763 s for them at batch 16, and 789 s at the final batch 8 with 9 extra
  emergence runs (54 in all).

  At this budget students learn the *format* and part of the *structure*. Their transfer graph correlates with their
  own teacher's (r = 0.5-0.7 for R1- and gpt-oss-like teachers, 0.9 for N/D-only ones) and reflection and
  exploration appear in the right proportions within a factor of 2. They do not learn the arithmetic: accuracy sits
  at the guessing floor ``acc_floor`` (about 0.2), so accuracy must not be read as an effect.

* ``standard`` (the reference run on 2 CPU cores; sized by ``benchmarks/bench_lab_budget.py``, see
  ``benchmarks/RESULTS_lab.md``). Settings:

  - K=3 chains mod 10 with ``+`` only; 8000 training tasks (students pass the operand-tracking transition only when
    they see this many distinct tasks), 150 test tasks;
  - the ``tiny`` student, batch 8, lr 3e-3;
  - :data:`STANDARD_TOKEN_BUDGET` supervised tokens per run (about 100 s of one core), where greedy accuracy of
    teacher-distilled students is between the floor and the ceiling; 3 seeds (5 did not fit the book's 2 hours).

* ``full`` (one GPU). Settings:

  - K=5 chains; 20000 training tasks, 500 test tasks;
  - the ``base`` student (~14M params), batch 64, lr 1e-3;
  - 20M supervised tokens per run; 5 seeds; 6 probes.

  This is sized from the feasibility study: students pass the operand-tracking transition after about 1500 steps
  of a 1M model. Not run here: this task had no GPU. Set ``bf16=True`` on a GPU for speed.

See ``benchmarks/RESULTS_lab.md`` for measured times.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import MolesynError, lookup
from ..runcache import cache_subdir, config_key, run_cached_grid
from .grammar import SYNTAXES
from .kernel import (
    LAB_VERSION,
    SFTPhase,
    cached_record,
    data_record,
    describe_source,
    evaluation_record,
    reference_graphs,
    save_model,
    source_traces,
    train_phases,
)
from .keywords import VARIANTS, replace_keywords
from .tasks import TaskConfig, make_splits
from .teachers import graph_of


@dataclass(frozen=True)
class Phase:
    """One training phase.

    Attributes:
        teachers: teachers writing the data (several = mixed task by task, in equal shares).
        n_traces: number of training traces (the first ``n_traces`` training tasks).
        keywords: cue-word variant (:data:`~.keywords.VARIANTS`).
        budget_share: share of the run's token budget spent in this phase.
    """

    teachers: tuple[str, ...] = ("r1",)
    n_traces: int = 2000
    keywords: str = "original"
    budget_share: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.teachers, str):
            object.__setattr__(self, "teachers", (self.teachers,))
        if self.keywords not in VARIANTS:
            raise MolesynError(f"unknown keyword variant {self.keywords!r}; expected one of {', '.join(VARIANTS)}")
        if not self.teachers or self.n_traces < 1 or self.budget_share <= 0:
            raise MolesynError("a phase needs teachers, n_traces >= 1 and budget_share > 0")


@dataclass(frozen=True)
class RunConfig:
    """A whole lab run (see module docstring).

    Attributes:
        phases: training phases, in order.
        seed: student initialisation, data order, teacher noise and sampling seed.
        task: the task family; ``task_seed`` fixes the train/test tasks (the same for every teacher and seed).
        n_train: size of the training task pool (phases use its first ``n_traces``); ``n_test`` held-out tasks.
        student: student size (:data:`~.student.STUDENT_SPECS`).
        token_budget: supervised completion tokens for the run (``None``: ``epochs`` passes over each phase).
        batch_size, learning_rate: SFT settings; ``bf16``: bfloat16 mixed precision (for GPUs).
        temperature: sampling temperature of the structure evaluation.
        inject: tasks of the self-correction probe.
        probe_points, probe_tasks: entropy-trajectory probes during training (0 points = none).
        references: teachers whose graphs the student is compared with (besides its own training data).
        graphs_dir: a folder of measured graphs whose ``<preset>.json`` replaces a preset teacher's built-in graph
            (``str(lab.measured_graphs_dir())`` for Chapter 1's); ``None``: the built-in lab graphs. Not part of the
            cache key itself: the resolved teacher graphs are.
        syntax: the step syntax of the training data and of the evaluation's parser (:data:`~.grammar.SYNTAXES`):
            ``"marked"`` (default; not written into the cache key, so earlier keys stay valid) or ``"cue"`` (R and E
            steps marked only by their cue words).
        condition: display label (not part of the cache key).
    """

    phases: tuple[Phase, ...] = (Phase(),)
    seed: int = 0
    task: TaskConfig = field(default_factory=lambda: TaskConfig(length=3))
    task_seed: int = 1234
    n_train: int = 2000
    n_test: int = 150
    student: str = "tiny"
    token_budget: int | None = 300_000
    epochs: float | None = None
    batch_size: int = 8
    learning_rate: float = 3e-3
    bf16: bool = False
    temperature: float = 1.0
    inject: int = 100
    probe_points: int = 3
    probe_tasks: int = 64
    references: tuple[str, ...] = ("r1", "qwq", "oss", "instruct")
    graphs_dir: str | None = None
    syntax: str = "marked"
    condition: str = ""

    def __post_init__(self) -> None:
        if self.syntax not in SYNTAXES:
            raise MolesynError(f"unknown step syntax {self.syntax!r}; expected one of {', '.join(SYNTAXES)}")

    def describe(self) -> dict[str, Any]:
        """Everything that determines the run's result (the cache key's content)."""
        record = asdict(self)
        record.pop("condition")
        record.pop("graphs_dir")
        if self.syntax == "marked":
            record.pop("syntax")
        teachers = sorted({t for p in self.phases for t in p.teachers} | set(self.references))
        record["teacher_specs"] = {name: describe_source(name, self.graphs_dir) for name in teachers}
        record["lab_version"] = LAB_VERSION
        return record

    def key(self) -> str:
        return config_key(self.describe())

    def label(self) -> str:
        if self.condition:
            return self.condition
        return " then ".join("+".join(p.teachers) + ("" if p.keywords == "original" else f"[{p.keywords}]")
                             for p in self.phases)


# ------------------------------------------------------------------------------------------ MOLE-SYN data sources
# Data-source names (teacher presets, GRAPH.json teachers, ``molesyn:<graph>`` walks) are the kernel's vocabulary:
# see :mod:`.kernel` (:func:`~.kernel.walk_graph`, :func:`~.kernel.describe_source`, :func:`~.kernel.source_traces`).


# ------------------------------------------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class Profile:
    """Base settings of a chapter profile (see module docstring); ``base()`` gives its default :class:`RunConfig`."""

    name: str
    task: TaskConfig
    n_train: int
    n_test: int
    student: str
    token_budget: int
    batch_size: int
    learning_rate: float
    seeds: tuple[int, ...]
    inject: int
    probe_points: int
    probe_tasks: int
    data_sizes: tuple[int, ...]

    def base(self, **overrides: Any) -> RunConfig:
        config = RunConfig(phases=(Phase(n_traces=self.n_train),), task=self.task, n_train=self.n_train,
                           n_test=self.n_test, student=self.student, token_budget=self.token_budget,
                           batch_size=self.batch_size, learning_rate=self.learning_rate, inject=self.inject,
                           probe_points=self.probe_points, probe_tasks=self.probe_tasks)
        return replace(config, **overrides)


#: Supervised tokens per run of the standard profile: where the sizing sweep put the strongest condition's greedy
#: accuracy between the floor and the ceiling on K=3 '+' chains with 8000 tasks (benchmarks/RESULTS_lab.md).
STANDARD_TOKEN_BUDGET = 900_000

PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", TaskConfig(length=3), n_train=2000, n_test=150, student="tiny", token_budget=300_000,
                     batch_size=8, learning_rate=3e-3, seeds=(0, 1), inject=100, probe_points=3, probe_tasks=48,
                     data_sizes=(100, 500, 2000)),
    # The reference CPU run (2 cores): sized by benchmarks/bench_lab_budget.py (benchmarks/RESULTS_lab.md).
    "standard": Profile("standard", TaskConfig(length=3, operators="+"), n_train=8000, n_test=150, student="tiny",
                        token_budget=STANDARD_TOKEN_BUDGET, batch_size=8, learning_rate=3e-3, seeds=(0, 1, 2),
                        inject=100, probe_points=3, probe_tasks=48, data_sizes=(250, 1000, 4000)),
    "full": Profile("full", TaskConfig(length=5), n_train=20_000, n_test=500, student="base",
                    token_budget=20_000_000, batch_size=64, learning_rate=1e-3, seeds=(0, 1, 2, 3, 4), inject=300,
                    probe_points=6, probe_tasks=128, data_sizes=(500, 2000, 5000, 20_000)),
}


def profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    return lookup(PROFILES, name, "lab profile")


# ------------------------------------------------------------------------------------------------------ one run
def runs_dir() -> Path:
    return cache_subdir("lab", "runs")


def phase_traces(phase: Phase, config: RunConfig, tasks: Sequence[Any], phase_index: int) -> list[Any]:
    """The training traces of one phase: task ``i`` written by data source ``i mod len(teachers)``
    (:func:`~.kernel.source_traces`), then keywords."""
    chosen = list(tasks[: phase.n_traces])
    if len(chosen) < phase.n_traces:
        raise MolesynError(f"phase asks for {phase.n_traces} traces but the run has {len(tasks)} training tasks")
    traces: list[Any] = [None] * len(chosen)
    n = len(phase.teachers)
    for k, name in enumerate(phase.teachers):
        indices = list(range(k, len(chosen), n))
        written = source_traces(name, [chosen[i] for i in indices], seed=config.seed * 1000 + phase_index,
                                task_config=config.task, graphs_dir=config.graphs_dir, syntax=config.syntax)
        for i, trace in zip(indices, written):
            traces[i] = trace
    if phase.keywords != "original":
        traces = replace_keywords(traces, phase.keywords, seed=config.seed)
    return traces


def run_one(config: RunConfig, cache: bool = True, keep_model: bool = False) -> dict[str, Any]:
    """Run (or load from the cache) one lab run and return its record (see module docstring)."""
    return cached_record(runs_dir() / f"{config.key()}.json", partial(_execute, config, keep_model), cache=cache,
                         keep_model=keep_model, condition=config.label())


def _execute(config: RunConfig, keep_model: bool) -> dict[str, Any]:
    """One lab run through the kernel (:mod:`.kernel`): write each phase's data, SFT phase by phase (with the
    entropy probes), evaluate."""
    from .evaluate import BehaviorProbe

    splits = make_splits(config.n_train, config.n_test, config.task, config.task_seed)
    phase_data = [phase_traces(p, config, splits.train, i) for i, p in enumerate(config.phases)]
    references = reference_graphs(config.references, splits.train, config.task, config.graphs_dir)
    all_data = [t for traces in phase_data for t in traces]
    references["data"] = graph_of(all_data, name="data")
    for index, traces in enumerate(phase_data):
        if len(config.phases) > 1:
            references[f"phase{index + 1}"] = graph_of(traces, name=f"phase{index + 1}")
    probe = None
    if config.probe_points > 0:
        probe = partial(BehaviorProbe, tasks=splits.test[: config.probe_tasks], references=references,
                        n_points=config.probe_points, seed=config.seed, syntax=config.syntax)
    total_share = sum(p.budget_share for p in config.phases)
    phases = [SFTPhase(traces, epochs=config.epochs,
                       token_budget=None if config.token_budget is None
                       else int(config.token_budget * phase.budget_share / total_share))
              for phase, traces in zip(config.phases, phase_data)]
    trained = train_phases(config.student, config.seed, phases, config.batch_size, config.learning_rate,
                           bf16=config.bf16, probe=probe)
    record: dict[str, Any] = {
        "key": config.key(), "condition": config.label(), "seed": config.seed,
        "teachers": " then ".join("+".join(p.teachers) for p in config.phases),
        "keywords": ",".join(p.keywords for p in config.phases), "n_traces": config.phases[0].n_traces,
        "n_phases": len(config.phases), "student": config.student,
        "task_length": config.task.length, "token_budget": config.token_budget,
        **trained.record(), **data_record(all_data, references),
        **evaluation_record(trained, splits.test, references, config.temperature, config.inject, config.seed,
                            config.label(), n_samples=50, syntax=config.syntax),
        "syntax": config.syntax,
        "trajectory": trained.probe.records if trained.probe is not None else [],
        "config": config.describe(),
    }
    if keep_model:
        record["model_dir"] = save_model(trained, config.key(), condition=config.label(), seed=config.seed)
    return record


# ------------------------------------------------------------------------------------------------------ grids


def run_grid(configs: Sequence[RunConfig], workers: int = 2, cache: bool = True, keep_model: bool = False,
             progress: bool = True, threads_per_worker: int = 1) -> list[dict[str, Any]]:
    """Run every config (cached ones are loaded); uncached ones in ``workers`` processes of one torch thread each.

    Identical configs (same key) run once. Records come back in the order of ``configs``, each with its config's
    ``condition`` label.
    """
    return run_cached_grid(configs, partial(run_one, cache=cache, keep_model=keep_model), runs_dir(), "lab run",
                           workers=workers, use_cache=cache and not keep_model, progress=progress,
                           threads_per_worker=threads_per_worker)


def seeds_of(configs: Iterable[RunConfig], seeds: Sequence[int]) -> list[RunConfig]:
    return [replace(c, seed=s) for c in configs for s in seeds]


def emergence_grid(p: str | Profile = "smoke", teacher: str = "r1", sizes: Sequence[int] | None = None,
                   budget: str = "epochs", epochs: float = 3.0) -> list[RunConfig]:
    """Experiment 1: the student's graph vs number of training traces.

    ``budget="epochs"`` trains ``epochs`` passes over each data size (the paper's setting: more data, more training);
    ``"tokens"`` gives every size the profile's token budget (more data = more distinct tasks, same compute).
    """
    p = profile(p)
    sizes = tuple(sizes or p.data_sizes)
    configs = []
    for n in sizes:
        overrides: dict[str, Any] = {"token_budget": None, "epochs": epochs} if budget == "epochs" else {}
        configs.append(p.base(phases=(Phase((teacher,), n),), condition=f"{teacher} n={n}", **overrides))
    return seeds_of(configs, p.seeds)


def keyword_grid(p: str | Profile = "smoke", teacher: str = "qwq", variants: Sequence[str] = VARIANTS,
                 sizes: Sequence[int] | None = None, syntax: str = "marked") -> list[RunConfig]:
    """Experiment 2: cue words replaced by two synonym sets or removed, at each data size (token-matched).

    ``syntax="cue"`` writes R and E steps in the plain step syntax, marked only by their cues (see :mod:`.grammar`),
    so that replacing or removing cues can hurt; ``"marked"`` (default) keeps the content-marked steps, where it
    cannot. Conditions are ``<variant> n=<size>`` (just ``<variant>`` for one size) in both syntaxes; the syntax is
    in every config (and, for ``"cue"``, in its cache key).
    """
    p = profile(p)
    sizes = tuple(sizes or p.data_sizes[-1:])
    configs = [p.base(phases=(Phase((teacher,), n, keywords=v),), syntax=syntax,
                      condition=f"{v} n={n}" if len(sizes) > 1 else v)
               for n in sizes for v in variants]
    return seeds_of(configs, p.seeds)


def isomer_grid(p: str | Profile = "smoke", teachers: Sequence[str] = ("r1", "qwq", "oss", "instruct")
                ) -> list[RunConfig]:
    """Experiment 3: same tasks, different bond structure (token-matched, with entropy probes)."""
    p = profile(p)
    configs = [p.base(phases=(Phase((t,), p.n_train),), condition=t) for t in teachers]
    return seeds_of(configs, p.seeds)


def mixing_grid(p: str | Profile = "smoke", a: str = "r1", b: str = "oss") -> list[RunConfig]:
    """Experiment 4: A only, B only, A+B mixed, A then B, B then A (token-matched in total)."""
    p = profile(p)
    n = p.n_train
    conditions = {
        f"{a} only": (Phase((a,), n),),
        f"{b} only": (Phase((b,), n),),
        f"{a}+{b} mixed": (Phase((a, b), n),),
        f"{a} then {b}": (Phase((a,), n, budget_share=0.5), Phase((b,), n, budget_share=0.5)),
        f"{b} then {a}": (Phase((b,), n, budget_share=0.5), Phase((a,), n, budget_share=0.5)),
    }
    configs = [p.base(phases=phases, condition=name) for name, phases in conditions.items()]
    return seeds_of(configs, p.seeds)


def imitation_grid(p: str | Profile = "smoke", teachers: Sequence[str] = ("human", "icl", "instruct", "r1",
                                                                        "control")) -> list[RunConfig]:
    """Experiment 5: human-style and ICL-imitation rationales against Long-CoT teachers (token-matched)."""
    p = profile(p)
    configs = [p.base(phases=(Phase((t,), p.n_train),), condition=t) for t in teachers]
    return seeds_of(configs, p.seeds)


# ------------------------------------------------------------------------------------------------------ tables
SCALAR_TYPES = (int, float, bool, str)


def records_frame(records: Sequence[Mapping[str, Any]]) -> Any:
    """A pandas DataFrame of the records' scalar fields (one row per run)."""
    import pandas as pd

    return pd.DataFrame([{k: v for k, v in r.items() if isinstance(v, SCALAR_TYPES) or v is None} for r in records])


def summarize(records: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("acc_greedy", "acc_sampled"),
              by: str = "condition") -> Any:
    """Per ``by`` group and metric: n, mean, sd, min, max and every seed's value (``"s0=..; s1=.."``), in the
    order the groups first appear."""
    import pandas as pd

    frame = records_frame(records)
    rows = []
    for group in dict.fromkeys(frame[by]):
        sub = frame[frame[by] == group].sort_values("seed")
        for metric in metrics:
            values = sub[metric].astype(float) if metric in sub else pd.Series([float("nan")] * len(sub))
            rows.append({by: group, "metric": metric, "n": int(values.notna().sum()), "mean": values.mean(),
                         "sd": values.std(ddof=1) if len(values) > 1 else float("nan"), "min": values.min(),
                         "max": values.max(),
                         "seeds": "; ".join(f"s{s}={v:.3f}" for s, v in zip(sub["seed"], values))})
    return pd.DataFrame(rows)


def accuracy_by_size(records: Sequence[Mapping[str, Any]], metric: str = "acc_greedy"
                     ) -> dict[str, dict[str, list[float]]]:
    """Per data size (``n_traces``, as a string key) and keyword variant: the seeds' ``metric`` in seed order (the
    evidence of the keyword claim, :func:`molesyn_lib.claims.decide` ``ch2.keywords``)."""
    table: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in records:
        table.setdefault(str(r["n_traces"]), {}).setdefault(str(r["keywords"]), []).append(
            (int(r["seed"]), float(r[metric])))
    return {n: {v: [value for _, value in sorted(pairs)] for v, pairs in variants.items()}
            for n, variants in table.items()}


def trajectory_frame(records: Sequence[Mapping[str, Any]]) -> Any:
    """The entropy-probe trajectories as one long DataFrame (condition, seed, step, fraction, metrics...)."""
    import pandas as pd

    rows = [{"condition": r["condition"], "seed": r["seed"], **point} for r in records
            for point in r.get("trajectory", [])]
    return pd.DataFrame(rows)


__all__ = [
    "LAB_VERSION", "PROFILES", "Phase", "Profile", "RunConfig", "accuracy_by_size", "emergence_grid", "imitation_grid", "isomer_grid",
    "keyword_grid", "mixing_grid", "profile", "records_frame", "run_grid", "run_one", "summarize",
    "trajectory_frame",
]
