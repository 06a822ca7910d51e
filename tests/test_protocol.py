"""The MOLE-SYN prompt protocol has one owner (:mod:`molesyn_lib.protocol`): every prompt style renders its request
with it, the mock and lab backends read it back with it, and rewording the prompts keeps the backends working."""
from __future__ import annotations

import pytest

from molesyn_lib import protocol, synth
from molesyn_lib.backends import GenerationRequest, MockBackend, get_backend
from molesyn_lib.behaviors import STATES
from molesyn_lib.errors import MolesynError
from molesyn_lib.lab.writer import parse_synth_request
from molesyn_lib.sources import Question
from molesyn_lib.synth import PROMPT_STYLES, SynthConfig, answer_prompt, step_prompt, synthesize
from molesyn_lib.transfer import TransferGraph

QUESTION = "1+8-3 (mod 10)"
STEPS = ["1+8 = 9.", "Wait, check: 1+8 = 9 is right.", "So 9-3 = 6."]
BEHAVIORS = ["N", "R", "D"]
GRAPH = TransferGraph.from_matrix([[0.4, 0.3, 0.2, 0.1], [0.35, 0.3, 0.25, 0.1], [0.35, 0.3, 0.2, 0.15],
                                   [0.3, 0.4, 0.15, 0.15]], name="g")


def as_request(prompt: synth.StepPrompt) -> GenerationRequest:
    return GenerationRequest(messages=prompt.messages, prompt=prompt.prompt, stop=prompt.stop)


def round_trip_every_style() -> None:
    """Render a request of every style, behaviour and history length; parse it back; check what was asked."""
    for style in PROMPT_STYLES:
        config = SynthConfig(prompt_style=style)
        for behavior in STATES:
            for n in range(len(STEPS) + 1):
                for allow_answer in (True, False):
                    request = as_request(step_prompt(QUESTION, STEPS[:n], BEHAVIORS[:n], behavior, config,
                                                     allow_answer))
                    parsed = protocol.parse_request(request.prompt, request.messages)
                    assert (parsed.question, parsed.steps, parsed.behavior) == (QUESTION, tuple(STEPS[:n]), behavior)
                    assert parsed.transcript == (style == "transcript")
                    text = "\n".join(m["content"] for m in request.chat())
                    assert protocol.requested_behavior(text) == behavior  # what the mock backend reads
                    assert parse_synth_request(request).behavior == behavior  # what the lab backend reads
        answer = as_request(answer_prompt(QUESTION, STEPS, BEHAVIORS, config))
        parsed = protocol.parse_request(answer.prompt, answer.messages)
        assert (parsed.question, parsed.steps, parsed.behavior) == (QUESTION, tuple(STEPS), None)


def test_every_style_and_behaviour_round_trips():
    round_trip_every_style()


@pytest.mark.parametrize("transcript", [False, True])
def test_render_request_round_trips(transcript):
    for behavior in (*STATES, None):
        text = protocol.render_request(behavior, QUESTION, STEPS, BEHAVIORS, transcript=transcript)
        parsed = protocol.parse_request(prompt=text) if transcript else protocol.parse_request(
            messages=[{"role": "user", "content": text}])
        assert parsed == protocol.StepRequest(QUESTION, tuple(STEPS), behavior, transcript)


def test_parse_request_errors():
    with pytest.raises(MolesynError, match="no 'Question:' line"):
        protocol.parse_request(prompt="hello")
    with pytest.raises(MolesynError, match="which behaviour"):
        protocol.parse_request(messages=[{"role": "user", "content": "Question: 1+1 (mod 10)\n\nSteps so far:\n"}])
    truncated = step_prompt(QUESTION, STEPS, BEHAVIORS, "N", SynthConfig(prompt_style="paper", max_rationale_chars=5))
    with pytest.raises(MolesynError, match="truncated"):
        protocol.parse_request(messages=truncated.messages)
    with pytest.raises(MolesynError, match="exactly one"):
        protocol.parse_request()


@pytest.fixture
def reworded(monkeypatch):
    """The prompts reworded: new prose in synth.py and new protocol templates (request sentence, steps header)."""
    monkeypatch.setattr(synth, "PAPER_PREAMBLE", "You are writing one reasoning step of a solution.")
    monkeypatch.setattr(synth, "NOT_YET", "Hold the answer back for now.")
    for code in STATES:
        monkeypatch.setitem(synth.INSTRUCTIONS, code, f"Make it a good {code} step.")
    monkeypatch.setattr(protocol, "CONDUCT", "Next, write a step of {name}, please.")
    monkeypatch.setattr(protocol, "STEPS_HEADER", "Work so far:")
    monkeypatch.setattr(protocol, "NO_STEPS", "(nothing yet)")


def test_rewording_the_prompts_keeps_the_parsers_working(reworded):
    prompt = step_prompt(QUESTION, STEPS, BEHAVIORS, "E", SynthConfig(prompt_style="few_shot_chat"))
    user = prompt.messages[-1]["content"]
    assert "Next, write a step of Self-exploration, please." in user and "Work so far:" in user
    assert "You should conduct" not in user
    round_trip_every_style()


@pytest.mark.parametrize("style", ["transcript", "paper", "few_shot_chat"])
def test_rewording_the_prompts_keeps_the_backends_working(style, request):
    questions = [Question(f"q{i}", q, a) for i, (q, a) in enumerate([("1+8-3 (mod 10)", "6"), ("4*2+5 (mod 10)", "3"),
                                                                     ("7-2+4 (mod 10)", "9")])]
    config = SynthConfig(prompt_style=style, max_steps=12, seed=0)

    def run(backend):
        return [(t.steps, t.behaviors, t.meta["stop_reason"]) for t in synthesize(questions, GRAPH, backend, config,
                                                                                 progress=False)]

    lab_before = run(get_backend("lab", slip_rate=0.0))
    mock_before = run(MockBackend())
    request.getfixturevalue("reworded")
    lab_after = run(get_backend("lab", slip_rate=0.0))
    assert lab_after == lab_before  # the lab backend reads the same structure from the reworded prompts
    assert all(stop == "boxed" for _, _, stop in lab_after)
    mock_after = run(MockBackend())
    # the mock's text depends on the prompt's hash, but it still writes the behaviour each reworded prompt asks for
    cues = {"R": ("Wait", "Hmm", "double-check"), "E": ("Alternatively", "What if", "Perhaps")}
    checked = 0
    for steps, behaviors, _ in mock_before + mock_after:
        for step, behavior in zip(steps, behaviors):
            if behavior in cues and "boxed" not in step:
                assert any(cue in step for cue in cues[behavior]), (behavior, step)
                checked += 1
    assert checked >= 4
