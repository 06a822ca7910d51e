"""One registry shape (:class:`molesyn_lib.registry.Registry`) and one error for an unknown name everywhere."""
from __future__ import annotations

import pytest

from molesyn_lib import backends, compress, synth
from molesyn_lib.errors import MolesynError, UnknownNameError
from molesyn_lib.labelers import base as labelers
from molesyn_lib.registry import Registry


def test_registry_register_get_names_and_errors():
    parts: Registry[int] = Registry("widget", {"b": 2})
    parts.register("a", 1)

    @parts.register("c")
    def three() -> int:
        return 3

    assert parts.names() == ["a", "b", "c"] and list(parts) == ["a", "b", "c"] and len(parts) == 3
    assert parts.get("a") == 1 and parts["c"] is three and "b" in parts and "z" not in parts
    assert parts.get("z", None) is None
    with pytest.raises(UnknownNameError, match=r"unknown widget 'z'; expected one of a, b, c$"):
        parts.get("z")
    del parts["b"]
    assert parts.names() == ["a", "c"]
    assert Registry("x", {"q": 1, "p": 2}, sort=False).names() == ["q", "p"]


def test_registry_loader_runs_before_lookups():
    calls = []
    parts: Registry[str] = Registry("plugin", loader=lambda: calls.append(1) or parts.register("late", "here"))
    assert parts.get("late") == "here" and calls


REGISTRIES = {
    "generation backend": (backends.BACKENDS, lambda name: backends.get_backend(name)),
    "compression method": (compress.COMPRESSORS, lambda name: compress.get_compressor(name)),
    "labeller": (labelers.LABELERS, lambda name: labelers.get_labeler(name)),
    "prompt style": (synth.PROMPT_STYLES, lambda name: synth.SynthConfig(prompt_style=name)),
}


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registry_rejects_an_unknown_name_the_same_way(kind):
    registry, build = REGISTRIES[kind]
    assert isinstance(registry, Registry) and registry.kind == kind and len(registry.names()) >= 3
    with pytest.raises(UnknownNameError) as caught:
        build("no-such-part")
    message = str(caught.value)
    assert message.startswith(f"unknown {kind} 'no-such-part'; expected one of ")
    assert all(name in message for name in registry.names())
    assert isinstance(caught.value, MolesynError) and isinstance(caught.value, ValueError)


def test_public_registration_functions_use_the_registries(monkeypatch):
    monkeypatch.delitem(backends.BACKENDS, "test-echo", raising=False)

    @backends.register_backend("test-echo")
    class Echo(backends.MockBackend):
        name = "test-echo"

    assert "test-echo" in backends.available_backends() and backends.BACKENDS.get("test-echo") is Echo
    del backends.BACKENDS["test-echo"]
    builder = synth.PROMPT_STYLES.get("paper")
    synth.register_prompt_style("test-paper", builder)
    try:
        assert synth.SynthConfig(prompt_style="test-paper").style == "test-paper"
    finally:
        del synth.PROMPT_STYLES["test-paper"]
    assert set(labelers.available_labelers()) >= {"lexical", "trained", "embedding", "llm", "gold"}
    assert compress.available_compressors()[:2] == ["truncate", "keep_every"]
