"""The reasoning lab: a controlled world where small students learn Long-CoT structure from procedural teachers.

Light modules load eagerly (no torch): :mod:`.tasks` (verifiable arithmetic chains), :mod:`.grammar` (how each
behaviour is written, the ground-truth parser), :mod:`.keywords` (cue words and synonym replacement),
:mod:`.teachers` (calibrated procedural Long-CoT teachers), :mod:`.writer` (the weak writer, the lab MOLE-SYN walk and
the ``lab`` generation backend). Heavy ones (torch, transformers, TRL) load on first attribute access:
:mod:`.student` (students and TRL SFT), :mod:`.evaluate` (accuracy, the student's graph, self-correction, entropy
probes), :mod:`.experiments` (cached multi-seed grids for the chapters).

Typical use::

    from molesyn_lib import lab
    splits = lab.make_splits(4000, 300)
    traces = lab.Teacher("r1").traces(splits.train, seed=0)
    student = lab.build_student("tiny", seed=0)
    lab.train_student(student, lab.sft_rows(traces), lab.TrainConfig(token_budget=200_000))
    report = lab.evaluate_student(student, splits.test, references={"r1": lab.get_teacher("r1").target_graph()})
"""
from __future__ import annotations

from ..lazy import lazy_getattr
from .grammar import (
    ChainState,
    ParsedCompletion,
    ParsedStep,
    ReplayStats,
    parse_completion,
    parse_step,
    render_completion,
    replay,
)
from .keywords import CUE_STYLES, VARIANTS, CueStyle, replace_keywords
from .tasks import (
    ChainTask,
    TaskConfig,
    TaskSplits,
    generate_tasks,
    make_splits,
    task_from_question,
    tasks_from_reasoning_gym,
)
from .teachers import (
    PRESETS,
    Teacher,
    TeacherSpec,
    calibrate_policy,
    get_teacher,
    graph_of,
    measured_graphs_dir,
    teacher_from_graph,
    teacher_stats,
)
from .writer import LabBackend, LabWriter, synthesize_lab_traces

_LAZY = {
    "Student": "student", "StudentSpec": "student", "STUDENT_SPECS": "student", "TrainConfig": "student",
    "TrainResult": "student", "build_student": "student", "load_student": "student", "sft_rows": "student",
    "train_student": "student",
    "EvalConfig": "evaluate", "EvalReport": "evaluate", "evaluate_student": "evaluate", "BehaviorProbe": "evaluate",
    "student_traces": "evaluate", "self_correction": "evaluate",
    "RunConfig": "experiments", "Phase": "experiments", "run_one": "experiments", "run_grid": "experiments",
    "summarize": "experiments", "profile": "experiments", "PROFILES": "experiments", "records_frame": "experiments",
    "trajectory_frame": "experiments", "emergence_grid": "experiments", "keyword_grid": "experiments",
    "isomer_grid": "experiments", "mixing_grid": "experiments", "imitation_grid": "experiments",
    "entropy_convergence": "evaluate",
}

__all__ = [
    "CUE_STYLES",
    "PRESETS",
    "PROFILES",
    "STUDENT_SPECS",
    "VARIANTS",
    "BehaviorProbe",
    "ChainState",
    "ChainTask",
    "CueStyle",
    "EvalConfig",
    "EvalReport",
    "LabBackend",
    "LabWriter",
    "ParsedCompletion",
    "ParsedStep",
    "Phase",
    "ReplayStats",
    "RunConfig",
    "Student",
    "StudentSpec",
    "TaskConfig",
    "TaskSplits",
    "Teacher",
    "TeacherSpec",
    "TrainConfig",
    "TrainResult",
    "build_student",
    "calibrate_policy",
    "emergence_grid",
    "entropy_convergence",
    "evaluate_student",
    "generate_tasks",
    "get_teacher",
    "graph_of",
    "imitation_grid",
    "isomer_grid",
    "keyword_grid",
    "load_student",
    "make_splits",
    "measured_graphs_dir",
    "mixing_grid",
    "parse_completion",
    "parse_step",
    "profile",
    "records_frame",
    "render_completion",
    "replace_keywords",
    "replay",
    "run_grid",
    "run_one",
    "self_correction",
    "sft_rows",
    "student_traces",
    "summarize",
    "synthesize_lab_traces",
    "task_from_question",
    "tasks_from_reasoning_gym",
    "teacher_from_graph",
    "teacher_stats",
    "train_student",
    "trajectory_frame",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
