"""Lab tasks and the step grammar: generation, splits, answer checking, writing and parsing every behaviour."""
from __future__ import annotations

import pytest

from molesyn_lib.errors import InputError
from molesyn_lib.lab.grammar import ChainState, parse_completion, parse_step, render_completion, replay, split_cue
from molesyn_lib.lab.tasks import ChainTask, TaskConfig, generate_tasks, make_splits, task_from_question


def test_answer_is_left_to_right_mod():
    task = ChainTask(start=1, ops=(("+", 8), ("-", 3), ("+", 8), ("-", 1), ("*", 1)), modulus=10)
    assert task.values() == [1, 9, 6, 4, 3, 3]
    assert task.answer == 3 and task.check("3") and task.check(3) and not task.check(4) and not task.check(None)
    assert task.prompt == "Q:1+8-3+8-1*1>"
    assert not task.check("three")


def test_generation_is_seeded_unique_and_splits_are_disjoint():
    config = TaskConfig(length=3)
    assert [t.prompt for t in generate_tasks(50, config, seed=3)] == [t.prompt for t in generate_tasks(50, config, 3)]
    assert [t.prompt for t in generate_tasks(50, config, 3)] != [t.prompt for t in generate_tasks(50, config, 4)]
    splits = make_splits(300, 100, config, seed=7)
    train, test = {t.prompt for t in splits.train}, {t.prompt for t in splits.test}
    assert len(train) == 300 and len(test) == 100 and not train & test
    assert all(len(t.ops) == 3 and t.modulus == 10 for t in splits.train)
    with pytest.raises(ValueError):
        generate_tasks(200, TaskConfig(length=1, operand_max=1, operators="+"), seed=0)  # only 4 distinct tasks
    with pytest.raises(ValueError):
        TaskConfig(operators="/")


def test_question_round_trip_and_bad_questions():
    task = generate_tasks(1, TaskConfig(length=4, modulus=7), seed=1)[0]
    assert task_from_question(task.question) == task
    assert task_from_question(task.prompt).ops == task.ops
    with pytest.raises(InputError, match="f.jsonl:3: not an arithmetic chain"):
        task_from_question("how many apples?", "f.jsonl", 3)
    with pytest.raises(InputError, match="needs a 'question'"):
        task_from_question(None, "f.jsonl", 1)


def test_every_behaviour_is_written_and_parsed_back():
    task = ChainTask(start=6, ops=(("+", 8), ("-", 8), ("*", 8), ("+", 1)), modulus=10)
    state = ChainState.start(task)
    assert state.compute("N", cue="") == "6+8=4"
    assert state.compute("D", cue="so") == "so 4-8=-4=6"
    assert state.explore(cue="alternatively") == "alternatively 6*8~4*2=8"
    assert state.reflect(0, cue="wait") == "wait [6+8=4 ok]"
    assert state.compute("N", slip=1) == "8+1=0"  # slip: true value 9
    assert state.pending_slip() == 3
    assert state.reflect(3, cue="hmm") == "hmm [8+1=9 not 0]"
    assert state.done and state.value == task.answer == 9
    assert state.behaviors == ["N", "D", "E", "R", "N", "R"]
    parsed = parse_completion(render_completion(state.steps, state.finish()))
    assert parsed.behaviors == state.behaviors and parsed.answer == 9
    stats = replay(task, parsed)
    assert stats.correct and stats.arithmetic_errors == 1 and stats.tracking_errors == 0
    assert (stats.fix_steps, stats.fix_needed, stats.fix_right, stats.ok_steps, stats.missed) == (1, 1, 1, 1, 0)


def test_parser_handles_hollow_chunked_and_malformed_steps():
    assert parse_step("wait [6 ok]").hollow and parse_step("wait [6 ok]").behavior == "R"
    assert parse_step("or ~6").behavior == "E" and parse_step("or ~6").hollow
    chunk = parse_step("1+8-3=6")
    assert chunk.behavior == "N" and chunk.ops == (("+", 8), ("-", 3))
    assert parse_step("so 1+8=").behavior is None
    assert split_cue("let me check [9-3=6 ok]") == ("let me check", "[9-3=6 ok]")
    task = ChainTask(start=1, ops=(("+", 8), ("-", 3)), modulus=10)
    parsed = parse_completion("1+8=9;garbage;9-3=5;A 5;junk after")
    stats = replay(task, parsed)
    assert parsed.n_malformed == 1 and parsed.answer == 5
    assert stats.arithmetic_errors == 1 and not stats.correct and stats.answered
    assert not replay(task, parse_completion("1+8=9;9-3=6")).answered


def test_replay_flags_wrong_operands_and_missed_slips():
    task = ChainTask(start=2, ops=(("+", 3), ("*", 2)), modulus=10)
    stats = replay(task, parse_completion("2+4=6;6*2=2;[6*2=2 ok];A 2"))
    assert stats.tracking_errors == 1 and stats.arithmetic_errors == 0 and stats.ok_steps == 1
    missed = replay(task, parse_completion("2+3=6;6*2=2;[2+3=6 ok];A 2"))
    assert missed.missed == 1 and missed.arithmetic_errors == 1
    alarm = replay(task, parse_completion("2+3=5;[2+3=4 not 5];4*2=8;A 8"))
    assert alarm.false_alarms == 1 and alarm.fix_right == 0


@pytest.mark.slow
def test_reasoning_gym_chains_agree_with_the_gym_scorer():
    from molesyn_lib.lab.tasks import tasks_from_reasoning_gym

    tasks = tasks_from_reasoning_gym(20, seed=3, num_terms=4)
    assert len(tasks) == 20 and all(len(t.ops) == 3 for t in tasks)
    assert all(int(t.meta["gym_answer"]) % 10 == t.answer for t in tasks)
