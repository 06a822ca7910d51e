"""Tests of the ``llm`` labeller with the mock backend: answer parsing, prompts, shapes, batching, cache, registry."""
from __future__ import annotations

import re

import pytest

from molesyn_lib.backends import MockBackend
from molesyn_lib.behaviors import DEFINITIONS
from molesyn_lib.labelers import available_labelers, get_labeler, label_corpus
from molesyn_lib.labelers.llm import LLMLabeler, parse_behavior
from molesyn_lib.traces import Trace


@pytest.mark.parametrize("answer, expected", [
    ("R", "R"), (" D.", "D"), ("(E)", "E"), ("Answer: N", "N"), ("The answer is D", "D"),
    ("Self-reflection", "R"), ("self exploration, because", "E"), ("deep reasoning", "D"),
    ("Normal operation.", "N"), ("**R** - reflection", "R"), ("Deeper thoughts: E", "E"),
    ("Reflection then E", "R"), ("", None), ("I am not sure", None), ("nde", None), ("e.g. none", None),
])
def test_parse_behavior(answer, expected):
    assert parse_behavior(answer) == expected


def _step_responder(request):
    """Answers with the behaviour hinted in the step text; 'garbage' steps get an unparseable answer."""
    step = re.search(r"Step to classify: (.*?)\n\n", request.chat()[-1]["content"], re.DOTALL).group(1)
    for word, answer in (("wait", "R"), ("alternatively", "Self-exploration"), ("therefore", "D) deep"),
                         ("garbage", "I cannot tell")):
        if word in step.lower():
            return answer
    return "N"


def make_traces() -> list[Trace]:
    return [Trace("a", ["Compute 2 + 2 = 4.", "Wait, is that right?", "Therefore the answer is 4."], question="2+2?"),
            Trace("b", ["Alternatively, count on fingers.", "garbage step"]), Trace("c", ["Just one step."])]


def test_labels_shapes_parsing_and_unparsed_count():
    labeler = LLMLabeler(backend=MockBackend(responder=_step_responder, label="steps"), cache=False, progress=False)
    labels = label_corpus(make_traces(), labeler)
    assert labels == [["N", "R", "D"], ["E", "N"], ["N"]]
    assert labeler.unparsed == 1
    assert len(labeler.answers) == 6


def test_one_batched_backend_call_for_all_steps():
    backend = MockBackend(responder=_step_responder, label="steps")
    LLMLabeler(backend=backend, cache=False, progress=False).label(make_traces())
    assert backend.calls == 1 and backend.stats.requests == 6


def test_prompt_has_definitions_question_previous_step_and_is_greedy():
    labeler = LLMLabeler(backend=MockBackend(), cache=False, step_chars=20)
    request = labeler.request("x" * 100, previous="Compute 2 + 2 = 4.", question="What is 2+2?")
    system, user = request.chat()
    for definition in DEFINITIONS.values():
        assert definition in system["content"]
    assert "What is 2+2?" in user["content"] and "Previous step: Compute 2 + 2 = 4." in user["content"]
    assert "x" * 21 not in user["content"]  # long steps are clipped
    assert request.temperature == 0.0 and request.max_new_tokens == 4
    first = labeler.request("s")
    assert "first step" in first.chat()[-1]["content"] and "Question:" not in first.chat()[-1]["content"]


def test_cache_is_on_by_default(tmp_path):
    backend = MockBackend(responder=_step_responder, label="steps")
    labeler = get_labeler("llm", backend=backend, cache_dir=tmp_path, progress=False)
    first = labeler.label(make_traces())
    again = get_labeler("llm", backend=backend, cache_dir=tmp_path, progress=False)
    assert again.label(make_traces()) == first
    assert backend.stats.requests == 6 and again.backend.hits == 6


def test_registry_and_backend_by_name():
    assert "llm" in available_labelers()
    labeler = get_labeler("llm", backend="mock", cache=False, progress=False)
    labels = labeler.label(make_traces())
    assert [len(x) for x in labels] == [3, 2, 1]
    assert all(b in "NDRE" for seq in labels for b in seq)
    assert labeler.unparsed == 6  # the default mock answers with no behaviour letter


def test_few_shot_prompt_style():
    def responder(request):
        step = re.findall(r"Step: (.*)", request.prompt)[-1]
        return " R" if "wait" in step.lower() else " D\nStep: more"

    labeler = LLMLabeler(backend=MockBackend(responder=responder, label="few"), cache=False, progress=False,
                         prompt_style="few_shot")
    request = labeler.request("Wait, check.", previous="2 + 2 = 4.", question="What is 2+2?")
    assert request.prompt.endswith("Previous step: 2 + 2 = 4.\nStep: Wait, check.\nBehavior:")
    assert "Step: 4 pens cost 4 x 3 = 12 dollars.\nBehavior: N" in request.prompt and request.stop == ("\n",)
    assert all(d in request.prompt for d in DEFINITIONS.values())
    assert labeler.label(make_traces()) == [["D", "R", "D"], ["D", "D"], ["D"]] and labeler.unparsed == 0
    with pytest.raises(ValueError, match="prompt style"):
        LLMLabeler(backend=MockBackend(), cache=False, prompt_style="poetry")
