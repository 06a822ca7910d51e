"""The lab's cue-marked step syntax: R and E steps in the plain step syntax, marked only by their cue words."""
from __future__ import annotations

import pytest

from molesyn_lib.lab.grammar import (
    _D_RE,
    _N_RE,
    NOT,
    OK,
    ChainState,
    parse_completion,
    render_completion,
    replay,
    split_cue,
)
from molesyn_lib.lab.keywords import REPLACE1, ReplacementReport, cue_vocabulary, replace_keywords
from molesyn_lib.lab.tasks import ChainTask, TaskConfig, generate_tasks
from molesyn_lib.lab.teachers import Teacher, get_teacher
from molesyn_lib.lab.writer import synthesize_lab_traces

K3 = TaskConfig(length=3)
TASK = ChainTask(9, (("-", 3), ("+", 2), ("*", 4)))


@pytest.fixture(scope="module")
def tasks() -> list[ChainTask]:
    return generate_tasks(400, K3, seed=5)


@pytest.fixture(scope="module")
def cue_traces(tasks):
    return list(Teacher("qwq").traces(tasks, seed=0, task_config=K3, syntax="cue"))


def _parsed(trace, task: ChainTask, syntax: str = "cue"):
    return parse_completion(render_completion(trace.steps, trace.final or ""), task, syntax)


def test_every_behaviour_renders_and_parses_back():
    state = ChainState.start(TASK, "cue")
    written = [state.compute("N", slip=1, cue=""), state.explore(cue="alternatively"), state.reflect(0, cue="wait"),
               state.compute("D", cue="so"), state.explore(cue="or"), state.reflect(2, cue="hmm")]
    assert written == ["9-3=7", "alternatively 7-8=-1=9", "wait 9-3=6", "so 6+2=8=8", "or 2*6=12=2", "hmm 8*4=2"]
    final = state.finish()
    parsed = parse_completion(render_completion(state.steps, final), TASK, "cue")
    assert parsed.behaviors == state.behaviors == ["N", "E", "R", "D", "E", "R"]
    assert [s.verdict for s in parsed.steps] == [None, None, NOT, None, None, OK]
    assert parsed.steps[2].claimed == 7 and parsed.steps[2].result == 6
    assert parsed.steps[1].alt == (7, "-", 8) and parsed.steps[1].ops == (("+", 2),)
    stats = replay(TASK, parsed)
    assert (stats.fix_steps, stats.fix_needed, stats.fix_right, stats.ok_steps, stats.missed) == (1, 1, 1, 1, 0)
    assert stats.arithmetic_errors == 1 and stats.tracking_errors == 0 and stats.correct
    # the same text read in the marked syntax has no R or E step at all
    assert set(parse_completion(render_completion(state.steps, final)).behaviors) <= {"N", "D"}


def test_hollow_steps_in_the_cue_syntax():
    state = ChainState.start(TASK, "cue")
    assert state.hollow("R", cue="wait") == "wait 9"
    with pytest.raises(ValueError):
        state.hollow("E", cue="or")
    parsed = parse_completion("wait 9;9-3=6;A 6", TASK, "cue")
    assert parsed.behaviors == ["R", "N"] and parsed.steps[0].hollow
    assert replay(TASK, parsed).n_hollow == 1


def test_parser_recovers_behaviours_from_the_sequence_without_cues():
    # 9-3=7 slips; 9-3=6 re-checks and corrects it; 6+2=8 advances; 9-3=6 confirms; 2*6=12=2 is 8*4 by the
    # alternative route (10-8)*(10-4)
    parsed = parse_completion("9-3=7;9-3=6;6+2=8;9-3=6;2*6=12=2;A 2", TASK, "cue")
    assert parsed.behaviors == ["N", "R", "N", "R", "E"]
    assert [s.verdict for s in parsed.steps] == [None, NOT, None, OK, None]
    stats = replay(TASK, parsed)
    assert stats.correct and stats.tracking_errors == 0 and stats.untargeted == 0
    unmatched = parse_completion("9-3=6;5+5=0;A 0", TASK, "cue")
    assert unmatched.behaviors == ["N", "N"] and replay(TASK, unmatched).tracking_errors == 1
    assert parse_completion("[9-3=6 ok];6~3", TASK, "cue").n_malformed == 2
    with pytest.raises(ValueError):
        parse_completion("9-3=6", syntax="cue")


def test_ambiguous_steps_are_written_as_the_parser_reads_them():
    task = ChainTask(5, (("*", 5), ("*", 5)))
    state = ChainState.start(task, "cue")
    state.compute("N")
    assert state.explore(cue="or") == "5*5=25=5" and state.behaviors == ["N", "D"]  # route = direct route
    task = ChainTask(0, (("*", 3), ("*", 3), ("+", 1)))
    state = ChainState.start(task, "cue")
    state.compute("N")
    assert state.reflect(0, cue="wait") == "wait 0" and state.behaviors == ["N", "R"]  # 0*3 = the next step
    state.compute("N")
    state.compute("N")
    assert state.reflect(1, cue="wait") == "wait 0*3=0"  # no next operation: nothing to confuse it with
    assert state.reflect(0, cue="wait") == "wait 0+1=1"  # 0*3 (step 0) would read as a re-check of step 1
    parsed = parse_completion(render_completion(state.steps, state.finish()), task, "cue")
    assert parsed.behaviors == state.behaviors


def test_teacher_gold_equals_the_parser_with_and_without_cues(tasks, cue_traces):
    by_prompt = {t.prompt: t for t in tasks}
    removed = replace_keywords(cue_traces, "removed", seed=0)
    counts = {"R": 0, "E": 0}
    for trace, bare in zip(cue_traces, removed):
        task = by_prompt[trace.meta["prompt"]]
        assert not any(c in s for s in trace.steps for c in "[]~")
        assert _parsed(trace, task).behaviors == trace.behaviors
        assert _parsed(bare, task).behaviors == trace.behaviors
        assert replay(task, _parsed(trace, task)).correct == trace.meta["correct"]
        for b in counts:
            counts[b] += trace.behaviors.count(b)
    assert counts["R"] > 100 and counts["E"] > 50
    assert sum(t.meta["fixes"] for t in cue_traces) > 20
    assert sum(t.meta["correct"] for t in cue_traces) / len(cue_traces) > 0.9


def test_without_cues_reflection_and_exploration_steps_look_like_plain_steps(tasks, cue_traces):
    marked = Teacher("qwq").traces(tasks, seed=0, task_config=K3)

    def plain_form(traces) -> set[bool]:
        bare = replace_keywords(traces, "removed", seed=0)
        return {bool(_N_RE.match(s) or _D_RE.match(s)) for t in bare
                for s, b in zip(t.steps, t.behaviors) if b in "RE" and not s.isdigit()}

    assert plain_form(cue_traces) == {True}
    assert plain_form(marked) == {False}  # in the marked syntax the content gives R/E away
    r_steps = {s for t in replace_keywords(cue_traces, "removed") for s, b in zip(t.steps, t.behaviors) if b == "R"}
    n_steps = {s for t in replace_keywords(cue_traces, "removed") for s, b in zip(t.steps, t.behaviors) if b == "N"}
    assert r_steps & n_steps  # the very same text is an R step in one trace and an N step in another


def test_replace_keywords_keeps_contents_and_changes_cues(cue_traces):
    original = cue_vocabulary(cue_traces)
    assert {"but wait", "maybe"} <= set(original)
    for variant in ("replace1", "replace2", "removed"):
        report = ReplacementReport()
        out = replace_keywords(cue_traces, variant, seed=1, report=report)
        assert not report.unknown
        for before, after in zip(cue_traces, out):
            assert after.behaviors == before.behaviors
            assert [split_cue(s)[1] for s in after.steps] == [split_cue(s)[1] for s in before.steps]
        vocabulary = cue_vocabulary(out)
        assert not set(vocabulary) & set(original) - {"so"}
        if variant == "removed":
            assert vocabulary == {} and report.removed == sum(original.values())
        else:
            assert report.replaced == sum(original.values())
    assert set(cue_vocabulary(replace_keywords(cue_traces, "replace1"))) <= {w for ws in REPLACE1.values() for w in ws}


def test_weak_writer_walk_in_the_cue_syntax(tasks):
    graph = get_teacher("r1").target_graph()
    traces = synthesize_lab_traces(graph, tasks[:150], seed=3, syntax="cue")
    by_prompt = {t.prompt: t for t in tasks}
    for trace in traces:
        assert _parsed(trace, by_prompt[trace.meta["prompt"]]).behaviors == trace.behaviors
    assert any("R" in t.behaviors for t in traces) and any("E" in t.behaviors for t in traces)


def test_completion_metrics_read_the_cue_syntax():
    pytest.importorskip("transformers")
    from molesyn_lib.lab.evaluate import completion_metrics, structure_metrics, student_traces

    completions = ["9-3=7;wait 9-3=6;6+2=8;8*4=2;A 2", "9-3=7;9-3=6;alternatively 6-8=-2=8;8*4=2;A 2"]
    metrics, parsed = completion_metrics([TASK, TASK], completions, "sampled", "cue")
    assert metrics["acc_sampled"] == 1.0 and metrics["tracking_error_sampled"] == 0.0
    assert metrics["fix_steps"] == 1.0 and metrics["fix_right"] == 1.0
    shape, _ = structure_metrics(parsed, {})
    assert shape["traces_with_R"] == 1.0 and shape["traces_with_E"] == 0.5
    marked, _ = completion_metrics([TASK, TASK], completions, "sampled")
    assert marked["tracking_error_sampled"] > 0 and marked["fix_steps"] == 0.0
    traces = student_traces([TASK, TASK], completions, syntax="cue")
    assert traces[1].behaviors == ["N", "R", "E", "N"]


def test_keyword_grid_in_the_cue_syntax_has_its_own_cache_keys():
    pytest.importorskip("transformers")
    from molesyn_lib.errors import MolesynError
    from molesyn_lib.lab.experiments import RunConfig, keyword_grid

    marked = keyword_grid("smoke", sizes=(100, 500))
    cue = keyword_grid("smoke", sizes=(100, 500), syntax="cue")
    assert len(cue) == len(marked) == 4 * 2 * 2
    assert {c.syntax for c in cue} == {"cue"} and {c.syntax for c in marked} == {"marked"}
    assert [c.label() for c in cue] == [c.label() for c in marked]
    cue_keys, marked_keys = {c.key() for c in cue}, {c.key() for c in marked}
    assert len(cue_keys) == len(cue) and not cue_keys & marked_keys
    assert "syntax" not in RunConfig().describe()  # the default keeps the keys runs were cached under
    assert RunConfig(syntax="cue").describe()["syntax"] == "cue"
    with pytest.raises(MolesynError):
        RunConfig(syntax="bracketed")


def test_cue_traces_are_seeded(tasks):
    a = Teacher("r1").traces(tasks[:50], seed=2, task_config=K3, syntax="cue")
    b = Teacher("r1").traces(tasks[:50], seed=2, task_config=K3, syntax="cue")
    assert [t.steps for t in a] == [t.steps for t in b]
    marked = Teacher("r1").traces(tasks[:50], seed=2, task_config=K3)
    assert [t.steps for t in a] != [t.steps for t in marked]
