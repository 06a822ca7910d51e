"""Tests of the generation backends: requests and cache keys, the registry, the mock, the sqlite cache (hits, resume
after a crash, unusable cache) and the OpenAI-compatible HTTP backend against a real loopback stub server."""
from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest

from molesyn_lib.backends import (
    CachedBackend,
    GenerationRequest,
    MockBackend,
    OpenAIBackend,
    apply_stop,
    available_backends,
    get_backend,
    register_backend,
)
from molesyn_lib.errors import CacheError, MolesynError

sys.path.insert(0, str(Path(__file__).parent))
from openai_stub import OpenAIStub, StubBehaviour


def chat(text: str, **kwargs) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": text}], **kwargs)


# ------------------------------------------------------------------------------------------------ requests / registry
def test_request_validation_and_canonical_key():
    a = chat("hi", max_new_tokens=8, stop=["\n"])
    b = chat("hi", max_new_tokens=8, stop=("\n",))
    assert a == b and hash(a) == hash(b)
    assert a.cache_key("x") == b.cache_key("x")
    assert a.cache_key("x") != a.cache_key("y")  # backend identity is part of the key
    assert a.cache_key("x") != chat("hi", max_new_tokens=8, stop=("\n",), seed=1).cache_key("x")
    assert len(a.cache_key()) == 64
    with pytest.raises(ValueError):
        GenerationRequest()
    with pytest.raises(ValueError):
        GenerationRequest(prompt="a", messages=[{"role": "user", "content": "b"}])
    with pytest.raises(ValueError):
        GenerationRequest(messages=[{"role": "wizard", "content": "b"}])
    assert GenerationRequest(prompt="p").chat() == [{"role": "user", "content": "p"}]


def test_apply_stop_cuts_at_first_stop():
    assert apply_stop("one\ntwo\n\nthree", ["\n\n", "two"]) == "one\n"
    assert apply_stop("abc", []) == "abc"


def test_registry_builtins_unknown_and_lab():
    assert {"mock", "transformers", "openai"} <= set(available_backends())
    with pytest.raises(MolesynError, match="unknown generation backend 'nope'"):
        get_backend("nope")
    try:
        backend = get_backend("lab")
    except MolesynError as exc:  # not registered yet: a clear message, not an ImportError
        assert "'lab' generation backend is not registered" in str(exc)
    else:
        assert backend.name


def test_register_backend_adds_a_name():
    @register_backend("test-upper")
    class Upper(MockBackend):
        name = "test-upper"

    backend = get_backend("test-upper", responder=lambda r: r.chat()[-1]["content"].upper(), label="upper")
    assert backend.generate([chat("abc")]) == ["ABC"]


# ------------------------------------------------------------------------------------------------------------ mock
def test_mock_is_deterministic_and_depends_only_on_the_request():
    requests = [chat(f"q{i}") for i in range(5)]
    first = MockBackend().generate(requests)
    assert first == MockBackend().generate(requests)
    assert MockBackend().generate(list(reversed(requests))) == list(reversed(first))
    assert len(set(first)) == 5


def test_mock_script_and_responder_and_stop():
    script = ["alpha\nbeta", "gamma"]
    outputs = MockBackend(script=script).generate([chat(f"x{i}", stop=("\n",)) for i in range(20)])
    assert set(outputs) == {"alpha", "gamma"}
    backend = MockBackend(responder=lambda r: "w " * 50, label="long")
    assert len(backend.generate([chat("a", max_new_tokens=5)])[0].split()) == 5


def test_mock_synth_response_follows_the_requested_behaviour():
    request = chat("Question: 2 and 3?\n\nYou should conduct Self-reflection behavior now. Reflect.", seed=3)
    text = MockBackend().generate([request])[0]
    assert "boxed" in text or any(cue in text for cue in ("Wait", "Hmm", "double-check"))


# ----------------------------------------------------------------------------------------------------------- cache
def test_cache_hits_and_misses(tmp_path):
    inner = MockBackend()
    cached = CachedBackend(inner, cache_dir=tmp_path, progress=False)
    requests = [chat(f"q{i}") for i in range(6)] + [chat("q0")]  # a duplicate in the same call
    first = cached.generate(requests)
    assert (cached.hits, cached.misses) == (1, 6)
    assert inner.stats.requests == 6
    assert cached.generate(requests) == first
    assert (cached.hits, cached.misses) == (8, 6)
    assert inner.stats.requests == 6  # nothing generated again
    assert len(cached) == 6
    cached.close()
    reopened = CachedBackend(MockBackend(), cache_dir=tmp_path, progress=False)
    assert reopened.generate(requests) == first and reopened.misses == 0
    other = CachedBackend(MockBackend(label="other"), cache_dir=tmp_path, progress=False)
    other.generate(requests[:2])
    assert other.misses == 2  # another backend identity never reuses these outputs


def test_cache_resumes_after_an_interrupted_run(tmp_path):
    requests = [chat(f"q{i}") for i in range(10)]
    crashing = CachedBackend(MockBackend(fail_after=4), cache_dir=tmp_path, chunk_size=2, progress=False)
    with pytest.raises(RuntimeError, match="simulated failure"):
        crashing.generate(requests)
    crashing.close()
    healthy_inner = MockBackend()
    healthy = CachedBackend(healthy_inner, cache_dir=tmp_path, chunk_size=2, progress=False)
    outputs = healthy.generate(requests)
    assert healthy.hits == 4 and healthy.misses == 6
    assert healthy_inner.stats.requests == 6
    assert outputs == MockBackend().generate(requests)


def test_unusable_cache_dir_raises_cache_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match="cannot be created"):
        CachedBackend(MockBackend(), cache_dir=blocker / "cache")
    (tmp_path / "dir-db").mkdir()
    with pytest.raises(CacheError, match="not usable"):
        CachedBackend(MockBackend(), path=tmp_path / "dir-db")


def test_full_disk_raises_cache_error(tmp_path):
    cached = CachedBackend(MockBackend(responder=lambda r: "x" * 20000, label="big"), cache_dir=tmp_path,
                           chunk_size=1, progress=False)
    pages = cached._conn.execute("PRAGMA page_count").fetchone()[0]
    cached._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite reports SQLITE_FULL past this size
    with pytest.raises(CacheError, match="full"):
        cached.generate([chat(f"q{i}") for i in range(10)])


def test_cache_error_is_a_molesyn_error():
    assert issubclass(CacheError, MolesynError)
    assert sqlite3.sqlite_version  # the stdlib module is what the cache relies on


# ---------------------------------------------------------------------------------------------------------- openai
def make_openai(stub: OpenAIStub, **kwargs) -> OpenAIBackend:
    options = {"model": "stub-model", "timeout_s": 2.0, "max_retries": 2, "backoff_s": 0.01, "progress": False}
    options.update(kwargs)
    return OpenAIBackend(base_url=stub.base_url, **options)


def test_openai_backend_round_trip_and_payload():
    with OpenAIStub() as stub:
        backend = make_openai(stub, api_key="secret")
        requests = [chat(f"q{i}", max_new_tokens=7, temperature=0.5, stop=("\n",), repetition_penalty=1.1)
                    for i in range(5)]
        outputs = backend.generate(requests)
    assert outputs == [f"stub:{__import__('hashlib').sha256(f'q{i}'.encode()).hexdigest()[:8]}" for i in range(5)]
    body = stub.log.bodies[0]
    assert body["model"] == "stub-model" and body["max_tokens"] == 7 and body["stop"] == ["\n"]
    assert body["repetition_penalty"] == 1.1 and body["top_p"] == 1.0
    assert stub.log.headers[0]["Authorization"] == "Bearer secret"
    assert backend.stats.requests == 5


def test_openai_backend_reads_environment(monkeypatch):
    monkeypatch.setenv("MOLESYN_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MOLESYN_OPENAI_MODEL", "env-model")
    monkeypatch.delenv("MOLESYN_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    backend = get_backend("openai")
    assert backend.url == "http://127.0.0.1:9/v1/chat/completions"
    assert backend.model == "env-model" and backend.api_key == "k"
    monkeypatch.delenv("MOLESYN_OPENAI_BASE_URL")
    with pytest.raises(MolesynError, match="MOLESYN_OPENAI_BASE_URL"):
        get_backend("openai")


def test_openai_backend_retries_server_errors():
    with OpenAIStub(StubBehaviour(fail_first=2, fail_status=500)) as stub:
        backend = make_openai(stub, concurrency=1)
        assert backend.generate([chat("q")])[0].startswith("stub:")
    assert stub.log.calls == 3 and backend.retries == 2


def test_openai_backend_retries_429_then_gives_a_clear_error():
    with OpenAIStub(StubBehaviour(always_fail=True, fail_status=503)) as stub:
        backend = make_openai(stub, max_retries=2)
        with pytest.raises(MolesynError) as info:
            backend.generate([chat("q")])
    message = str(info.value)
    assert stub.base_url in message and "3 attempts" in message and "HTTP 503" in message
    assert stub.log.calls == 3


def test_openai_backend_does_not_retry_client_errors():
    with OpenAIStub(StubBehaviour(always_fail=True, fail_status=400)) as stub, \
            pytest.raises(MolesynError, match="refused the request: HTTP 400"):
        make_openai(stub).generate([chat("q")])
    assert stub.log.calls == 1


def test_openai_backend_stall_times_out_retries_and_fails_clearly():
    with OpenAIStub(StubBehaviour(stall_s=3.0)) as stub:
        backend = make_openai(stub, timeout_s=0.2, max_retries=1)
        started = time.perf_counter()
        with pytest.raises(MolesynError, match=r"2 attempts; last status: timeout after 0.2 s"):
            backend.generate([chat("q")])
        assert time.perf_counter() - started < 2.5
    assert stub.log.calls == 2


def test_openai_backend_connection_refused_is_retried_then_reported():
    with OpenAIStub() as stub:
        url = stub.base_url
    backend = OpenAIBackend(base_url=url, model="m", max_retries=1, backoff_s=0.01, timeout_s=1, progress=False)
    with pytest.raises(MolesynError, match="connection error"):
        backend.generate([chat("q")])


def test_openai_backend_uses_its_concurrency_limit():
    with OpenAIStub(StubBehaviour(latency_s=0.15)) as stub:
        backend = make_openai(stub, concurrency=4)
        outputs = backend.generate([chat(f"q{i}") for i in range(16)])
    assert len(outputs) == 16 and len(set(outputs)) == 16
    assert stub.log.max_in_flight == 4  # the pool is used in full and never exceeded
    with OpenAIStub(StubBehaviour(latency_s=0.05)) as stub:
        make_openai(stub, concurrency=1).generate([chat(f"q{i}") for i in range(4)])
    assert stub.log.max_in_flight == 1


def test_openai_backend_through_the_cache(tmp_path):
    with OpenAIStub() as stub:
        cached = CachedBackend(make_openai(stub), cache_dir=tmp_path, progress=False)
        first = cached.generate([chat(f"q{i}") for i in range(6)])
        assert cached.generate([chat(f"q{i}") for i in range(6)]) == first
    assert stub.log.calls == 6


# ---------------------------------------------------------------------------------------------------- transformers
def test_transformers_thread_policy(monkeypatch):
    from molesyn_lib import backends

    monkeypatch.setattr(backends.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(backends.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert get_backend("transformers").threads() == 1  # busy machine: one thread
    monkeypatch.setattr(backends.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert get_backend("transformers").threads() is None  # idle: torch's default
    assert get_backend("transformers", num_threads=2).threads() == 2
    with pytest.raises(MolesynError, match="num_threads"):
        get_backend("transformers", num_threads=0)


@pytest.mark.slow
def test_transformers_backend_batches_with_stops():
    backend = get_backend("transformers", batch_size=4, progress=False)
    requests = [chat("What is the capital of France?", max_new_tokens=12),
                chat("Count: one, two,", max_new_tokens=12, stop=(",",)),
                GenerationRequest(prompt="1, 2, 3, 4,", max_new_tokens=6, temperature=0.8, seed=1)]
    outputs = backend.generate(requests)
    assert "Paris" in outputs[0]
    assert "," not in outputs[1]
    assert outputs[2] == backend.generate(requests[2:])[0]  # seeded sampling is reproducible
    assert backend.stats.new_tokens > 0


# ---------------------------------------------------------------------------------------------------------- models
def test_smollm2_gguf_lookup(tmp_path, monkeypatch):
    from molesyn_lib import models
    from molesyn_lib.errors import DataMissingError

    fake = tmp_path / models.SMOLLM2_GGUF_NAME
    fake.write_bytes(b"GGUF")
    monkeypatch.setenv("MOLESYN_SMOLLM2_GGUF", str(tmp_path))
    assert models.find_smollm2_gguf(allow_download=False) == fake
    monkeypatch.setenv("MOLESYN_SMOLLM2_GGUF", str(tmp_path / "missing.gguf"))
    with pytest.raises(DataMissingError, match="not a file"):
        models.find_smollm2_gguf(allow_download=False)
    monkeypatch.delenv("MOLESYN_SMOLLM2_GGUF")
    monkeypatch.setenv("MOLESYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataMissingError, match="SmolLM2 GGUF not found"):
        models.find_smollm2_gguf(allow_download=False)
    extracted = tmp_path / "cache" / "models" / "gguf" / models.SMOLLM2_GGUF_NAME
    extracted.parent.mkdir(parents=True)
    extracted.write_bytes(b"GGUF")
    assert models.find_smollm2_gguf(allow_download=False) == extracted


def test_model_names_and_load_errors(tmp_path):
    from molesyn_lib import models

    assert models.resolve_model("some/other-model") == "some/other-model"
    with pytest.raises(MolesynError, match="cannot load causal LM"):
        models.load_causal_lm(str(tmp_path / "no-model-here"))
