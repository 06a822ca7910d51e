"""Lab teachers (realised graph vs target), keyword replacement, trace round trips, the weak writer and the lab backend."""
from __future__ import annotations

import numpy as np
import pytest

from molesyn_lib.backends import get_backend
from molesyn_lib.cli import main
from molesyn_lib.errors import InputError
from molesyn_lib.lab.grammar import parse_completion, render_completion, split_cue
from molesyn_lib.lab.keywords import CUE_STYLES, REPLACE1, REPLACE2, ReplacementReport, cue_vocabulary, replace_keywords
from molesyn_lib.lab.tasks import TaskConfig, generate_tasks
from molesyn_lib.lab.teachers import (
    FALLBACK_GRAPHS,
    Teacher,
    get_teacher,
    graph_of,
    measured_graphs_dir,
    teacher_from_graph,
    teacher_stats,
)
from molesyn_lib.lab.writer import LabWriter, synthesize_lab_traces
from molesyn_lib.sources import Question
from molesyn_lib.traces import load_traces, save_traces
from molesyn_lib.transfer import TransferGraph, pearson

K5 = TaskConfig(length=5)
#: A measured-looking target (strong self-transitions, like the lexical graphs of real R1 traces).
MEASURED = np.array([[0.45, 0.35, 0.09, 0.11], [0.28, 0.44, 0.14, 0.14], [0.15, 0.23, 0.33, 0.29],
                     [0.15, 0.19, 0.23, 0.43]])


@pytest.fixture(scope="module")
def tasks():
    return generate_tasks(3000, K5, seed=11)


def realised_gap(spec, tasks) -> tuple[float, TransferGraph]:
    traces = Teacher(spec).traces(tasks, seed=1, task_config=K5)
    graph = graph_of(traces)
    supported = graph.counts.sum(axis=1) > 100
    return float(np.abs(graph.transition - spec.target_matrix)[supported].max()), graph


@pytest.mark.parametrize("target", [MEASURED, np.array(FALLBACK_GRAPHS["oss"])], ids=["measured-like", "oss"])
def test_realised_transition_matrix_matches_target(tasks, target):
    spec = teacher_from_graph(TransferGraph.from_matrix(target, name="t"), style="r1")
    gap, graph = realised_gap(spec, tasks)
    assert gap < 0.05, graph.transition.round(3)
    uncalibrated = Teacher(spec, calibrate=False).traces(tasks[:1500], seed=1, task_config=K5)
    # the state effects (reflect after slips, explore when stuck, final checks) distort an uncalibrated policy
    assert np.abs(graph_of(uncalibrated).transition - target).max() > gap


def test_presets_behave_as_documented(tmp_path, tasks):
    sample = tasks[:800]
    r1 = get_teacher("r1", graphs_dir=tmp_path)  # empty dir: the documented fallback graph
    assert r1.source == "fallback"
    stats = {name: teacher_stats(Teacher(get_teacher(name, graphs_dir=tmp_path)).traces(sample, 0, K5))
             for name in ("r1", "control", "instruct", "human", "icl")}
    assert stats["r1"].answer_accuracy == 1.0 and stats["r1"].fixes_per_trace > 0.2  # slips, all repaired
    assert stats["control"].slips_per_trace == 0 and stats["control"].share_with_R > 0.3
    assert stats["instruct"].marginal["R"] == 0 and stats["instruct"].marginal["E"] == 0
    assert stats["human"].mean_steps < 5 and stats["human"].marginal["R"] == 0  # skips steps: two ops at once
    assert stats["icl"].answer_accuracy < 0.9 and stats["icl"].fixes_per_trace == 0  # hollow reflection
    icl = Teacher(get_teacher("icl", graphs_dir=tmp_path)).traces(sample[:50], 0, K5)
    assert any(parse_completion(s).steps[0].hollow for t in icl for s in t.steps if "[" in s or "~" in s)
    measured = TransferGraph.from_matrix(MEASURED, name="R1")
    measured.save(tmp_path / "r1.json")
    assert get_teacher("r1", graphs_dir=tmp_path).source.endswith("r1.json")
    with pytest.raises(InputError, match="unknown teacher"):
        get_teacher("nobody")


def test_teacher_graphs_are_explicit_inputs(tmp_path, monkeypatch):
    """What a preset teacher targets does not depend on which chapters left graphs on disk: the built-in graph
    unless the caller passes a folder of measured graphs on purpose."""
    from molesyn_lib.lab.experiments import RunConfig
    from molesyn_lib.lab.kernel import walk_graph
    from molesyn_lib.rl.experiments import INITS, SFTConfig, init_key

    monkeypatch.setenv("MOLESYN_RESULTS", str(tmp_path))
    TransferGraph.from_matrix(MEASURED, name="r1").save(measured_graphs_dir() / "r1.json")
    assert measured_graphs_dir() == tmp_path / "graphs"
    builtin = get_teacher("r1")
    assert builtin.source == "fallback" and np.allclose(builtin.target_matrix, FALLBACK_GRAPHS["r1"])
    assert Teacher("control").spec.source == "fallback"
    measured = get_teacher("r1", graphs_dir=measured_graphs_dir())
    assert measured.source == str(tmp_path / "graphs" / "r1.json") and np.allclose(measured.target_matrix, MEASURED)
    assert Teacher("icl", graphs_dir=measured_graphs_dir()).spec.source.endswith("r1.json")
    assert np.allclose(walk_graph("molesyn:r1").transition, FALLBACK_GRAPHS["r1"])
    assert np.allclose(walk_graph("molesyn:r1", measured_graphs_dir()).transition, MEASURED)
    # the folder acts through the resolved graphs: runs recompute when the graphs change, not when the path does
    plain, chosen = RunConfig(), RunConfig(graphs_dir=str(measured_graphs_dir()))
    assert plain.key() != chosen.key() and "graphs_dir" not in plain.describe()
    assert RunConfig(graphs_dir=str(tmp_path / "empty")).key() == plain.key()
    sft = SFTConfig(steps=10)
    assert init_key(INITS["distill"], sft) != init_key(INITS["distill"], SFTConfig(steps=10, graphs_dir=str(
        measured_graphs_dir())))
    assert init_key(INITS["distill"], sft) == init_key(INITS["distill"], SFTConfig(steps=10, graphs_dir=str(tmp_path)))


def test_gold_matches_the_parser_and_traces_round_trip(tmp_path, tasks):
    traces = Teacher(teacher_from_graph(TransferGraph.from_matrix(MEASURED), style="qwq")).traces(tasks[:200], 3, K5)
    for trace in traces:
        parsed = parse_completion(render_completion(trace.steps, trace.final))
        assert parsed.behaviors == trace.behaviors and str(parsed.answer) == trace.answer
    save_traces(traces, tmp_path / "lab.jsonl")
    loaded = load_traces(tmp_path / "lab.jsonl")
    assert [(t.steps, t.behaviors, t.question, t.answer, t.final, t.model) for t in loaded] == \
        [(t.steps, t.behaviors, t.question, t.answer, t.final, t.model) for t in traces]
    graph = TransferGraph.from_sequences([t.behaviors for t in loaded])
    assert np.allclose(graph.counts, graph_of(traces).counts)


def test_teachers_are_reproducible_and_seeded(tasks):
    spec = teacher_from_graph(TransferGraph.from_matrix(MEASURED), style="r1")
    a = Teacher(spec).traces(tasks[:100], seed=5, task_config=K5)
    b = Teacher(spec).traces(tasks[:100], seed=5, task_config=K5)
    c = Teacher(spec).traces(tasks[:100], seed=6, task_config=K5)
    assert [t.steps for t in a] == [t.steps for t in b] != [t.steps for t in c]


def test_keyword_replacement_keeps_structure_and_changes_words(tasks):
    traces = Teacher(teacher_from_graph(TransferGraph.from_matrix(MEASURED), style="qwq")).traces(tasks[:300], 0, K5)
    original = cue_vocabulary(traces)
    assert set(original) <= set(REPLACE1)
    variants = {}
    for variant in ("replace1", "replace2", "removed"):
        report = ReplacementReport()
        replaced = replace_keywords(traces, variant, seed=0, report=report)
        variants[variant] = cue_vocabulary(replaced)
        assert not report.unknown
        for before, after in zip(traces, replaced):
            assert after.behaviors == before.behaviors
            assert [split_cue(s)[1] for s in after.steps] == [split_cue(s)[1] for s in before.steps]
            assert parse_completion(render_completion(after.steps, after.final)).behaviors == before.behaviors
        assert not set(variants[variant]) & set(original) - {"so"}  # REPLACE1 maps thus -> so
    assert variants["removed"] == {}
    assert set(variants["replace1"]) != set(variants["replace2"])
    assert set(variants["replace2"]) <= {w for ws in REPLACE2.values() for w in ws}
    with pytest.raises(ValueError):
        replace_keywords(traces, "shuffled")


def test_every_style_has_replacements():
    for style in CUE_STYLES.values():
        for cues in style.as_dict().values():
            assert all(c in REPLACE1 and c in REPLACE2 for c in cues if c)


def test_weak_writer_follows_requests_and_walk_is_reproducible(tasks):
    graph = TransferGraph.from_matrix(MEASURED, name="walk")
    first = synthesize_lab_traces(graph, tasks[:300], seed=2)
    again = synthesize_lab_traces(graph, tasks[:300], seed=2)
    assert [t.steps for t in first] == [t.steps for t in again]
    assert all(t.behaviors == t.meta["requested"] for t in first)  # the writer writes what the walk asks for
    assert pearson(graph_of(first), graph) > 0.9
    assert all(t.final is not None for t in first)
    perfect = synthesize_lab_traces(graph, tasks[:100], seed=2, writer=LabWriter(slip_rate=0.0))
    assert all(t.meta["correct"] for t in perfect if t.meta["stop_reason"] == "answer")
    slippy = synthesize_lab_traces(graph, tasks[:300], seed=2, writer=LabWriter(slip_rate=0.3))
    assert np.mean([t.meta["correct"] for t in slippy]) < 0.9  # it does not know when to reflect


@pytest.mark.parametrize("style", ["transcript", "paper", "few_shot_chat"])
def test_lab_backend_answers_molesyn_requests(style, tasks):
    from molesyn_lib.synth import SynthConfig, synthesize

    chosen = tasks[:8]
    questions = [Question(f"q{i}", t.question, str(t.answer)) for i, t in enumerate(chosen)]
    graph = TransferGraph.from_matrix(MEASURED, name="g")
    traces = synthesize(questions, graph, get_backend("lab", slip_rate=0.0), SynthConfig(prompt_style=style,
                                                                                           max_steps=20, seed=0),
                        progress=False)
    assert len(traces) == 8 and all(t.meta["stop_reason"] == "boxed" for t in traces)
    assert all(t.meta["correct"] for t in traces)
    for trace in traces:
        body = [s for s in trace.steps if "boxed" not in s]
        assert parse_completion(";".join(body)).behaviors == trace.behaviors[:len(body)]


def test_cli_traces_round_trip(tmp_path):
    out = tmp_path / "r1.jsonl"
    assert main(["lab", "traces", "--teacher", "r1", "--n", "400", "--seed", "1", "--task-length", "4",
                 "--out", str(out)]) == 0
    corpus = load_traces(out)
    assert len(corpus) == 400 and all(t.behaviors and len(t.behaviors) == len(t.steps) for t in corpus)
    graph = TransferGraph.from_sequences([t.behaviors for t in corpus])
    assert pearson(graph, get_teacher("r1").target_graph()) > 0.85
    removed = tmp_path / "removed.jsonl"
    assert main(["lab", "traces", "--teacher", str(tmp_path / "missing.json"), "--n", "3", "--out",
                 str(removed)]) == 2
    assert main(["lab", "traces", "--teacher", "qwq", "--n", "50", "--keywords", "removed", "--out",
                 str(removed)]) == 0
    assert cue_vocabulary(load_traces(removed)) == {}
