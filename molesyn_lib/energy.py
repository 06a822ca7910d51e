"""Attention as bond energy (the paper's Section 2.3 / appendix): q.k/sqrt(d_k) between the steps of a trace.

The paper defines the attention energy between tokens ``i`` and ``j`` as ``E_ij = -q_i.k_j / sqrt(d_k)``, so that
attention is a Boltzmann distribution at unit temperature, and reports that distilled students put the strongest
attention (largest q.k) on deep-reasoning bonds (QwQ-distilled: 61.20), less on self-reflection (34.44) and the least
on self-exploration (16.87). This module measures the same quantity on any Hugging Face causal LM with rotary
attention (Llama, Qwen2, Qwen3, Mistral... the SmolLM2 checkpoint and the lab students included).

How it measures, in order:

1. **Tokenise** the trace: the question (``EnergyConfig.question_template``, cut to half the budget if longer), then
   the steps joined by ``EnergyConfig.separator``. Each piece is tokenised on its own, so every step owns an exact
   token span (separators belong to no step). Steps are kept from the start **whole** while they fit in
   ``max_tokens`` (CPU memory); later steps are dropped and counted.
2. **Bonds** come from :func:`molesyn_lib.molecule.build_molecule` on the kept steps and their behaviours (a labeller's
   or the trace's own): ``covalent`` (a D step and its predecessor), ``hydrogen`` (an R step and the earlier step it
   revisits), ``vdw`` (an E step and the step it branches from) and ``sequence`` (the other consecutive pairs).
   Each bond is a pair (later step, earlier step): the later step's tokens are the queries, the earlier step's the
   keys.
3. **Controls**: for every bond pair, a random pair of steps of the same trace at *matched token distance* that is not
   a bond of the same type (drawn among the candidates whose distance is within ``control_tolerance`` of the bond's,
   else the nearest one), so each bond type has its own control with the same distance distribution. The paper's
   theorem derives the ordering D > R > E from RoPE's decay with distance alone; ``bond - control`` asks whether the
   bond type matters beyond distance.
4. **Forward hooks** on the real attention modules capture the post-RoPE queries and keys: hooks on ``q_proj`` /
   ``k_proj`` (or ``q_norm`` / ``k_norm`` where the architecture normalises per head, Qwen3) record the projections,
   a pre-hook on the attention module records the ``(cos, sin)`` position embeddings the model passes it, and the
   model's own ``apply_rotary_pos_emb`` (from the attention module's modeling file) rotates them. The logits use the
   module's own ``scaling`` (``1/sqrt(head_dim)``). Grouped-query attention is handled by pairing each query head
   with its key/value group, as the model does. :func:`check_against_attention_weights` verifies on any model that
   the causal softmax of these logits equals the model's eager ``output_attentions``. No part of the forward pass is
   reimplemented; the LM head is skipped (only the decoder body runs).
5. **Token selection** (``EnergyConfig.token_mode``):

   * ``"mean"`` (default): the mean logit over *all* (query token in the later step, key token in the earlier step)
     pairs. By linearity it equals ``mean(q) . mean(k) / sqrt(d_k)``, so it costs nothing beyond the forward pass and
     weighs every token of both steps equally (no choice of a "representative" token, which the paper does not give).
   * ``"max"``: for each query token of the later step the largest logit over the earlier step's keys, averaged over
     the query tokens: "how strongly can the later step find the earlier one", robust to long steps whose mean is
     diluted by filler tokens.

   Logits are averaged over heads per layer; the summary averages over layers as well. The token distance of a pair
   is the distance between the two steps' mean token positions (the mean of all query-key distances).

Outputs (:class:`EnergyResult`): a tidy :meth:`~EnergyResult.table` (bond, layer, mean_qk, mean_energy, n_pairs,
mean_distance; ``layer="mean"`` rows average the layers), and :meth:`~EnergyResult.summary`: per bond the mean q.k,
energy, its matched control, ``bond - control`` with a bootstrap 95% interval, and whether the orderings
covalent > hydrogen > vdw hold raw and after the control.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from .errors import InputError, MolesynError
from .labelers.base import DEFAULT_LABELER
from .traces import Trace

#: The bond types measured, strongest expected first (paper: D > R > E), plus the remaining consecutive pairs.
MAIN_BONDS = ("covalent", "hydrogen", "vdw")
ALL_BONDS = (*MAIN_BONDS, "sequence")
#: The behaviour each bond type is anchored on (the later step's behaviour).
BOND_BEHAVIOR = {"covalent": "D", "hydrogen": "R", "vdw": "E"}
CONTROL_PREFIX = "control:"
#: The paper's mean q.k per bond for the QwQ-distilled student (Figure 8, read from the paper).
PAPER_QK_QWQ = {"covalent": 61.20, "hydrogen": 34.44, "vdw": 16.87}

TokenMode = Literal["mean", "max"]


@dataclass(frozen=True)
class EnergyConfig:
    """Settings of an energy measurement.

    Attributes:
        max_tokens: token budget per trace (question + separators + whole steps); steps that do not fit are dropped.
        token_mode: ``"mean"`` (mean logit over all query-key token pairs of the two steps) or ``"max"`` (per query
            token the maximum over the earlier step's keys, averaged over query tokens); see the module docstring.
        include_question: put the question before the steps (the context the trace was written in).
        question_template: how the question is written (``{question}`` is replaced).
        separator: text between steps (tokenised on its own, belongs to no step).
        bonds: the bond types to measure (subset of :data:`ALL_BONDS`).
        hydrogen_threshold: similarity threshold of hydrogen bonds (``None``: the molecule's default).
        control_tolerance: a control candidate matches when its token distance is within this share of the bond's.
        seed: seed of the control sampling and of the bootstrap intervals.
        n_bootstrap: bootstrap resamples of the bond-minus-control intervals.
    """

    max_tokens: int = 1024
    token_mode: TokenMode = "mean"
    include_question: bool = True
    question_template: str = "{question}\n\n"
    separator: str = "\n\n"
    bonds: tuple[str, ...] = ALL_BONDS
    hydrogen_threshold: float | None = None
    control_tolerance: float = 0.1
    seed: int = 0
    n_bootstrap: int = 1000

    def __post_init__(self) -> None:
        if self.token_mode not in ("mean", "max"):
            raise MolesynError(f"token_mode must be 'mean' or 'max', got {self.token_mode!r}")
        if self.max_tokens < 8:
            raise MolesynError(f"max_tokens must be at least 8, got {self.max_tokens}")
        unknown = [b for b in self.bonds if b not in ALL_BONDS]
        if unknown:
            raise MolesynError(f"unknown bond type(s) {unknown}; choose from {list(ALL_BONDS)}")


# ----------------------------------------------------------------------------------------------------------- hooks
def attention_modules(model: Any) -> list[Any]:
    """The self-attention modules of a decoder-only model, in layer order (modules with ``q_proj``, ``k_proj`` and a
    ``layer_idx``); raises :class:`MolesynError` for an architecture without them."""
    found = [m for _, m in model.named_modules()
             if hasattr(m, "q_proj") and hasattr(m, "k_proj") and isinstance(getattr(m, "layer_idx", None), int)]
    if not found:
        raise MolesynError(f"{type(model).__name__}: no attention modules with q_proj/k_proj/layer_idx found "
                           "(supported: Llama, Qwen2, Qwen3, Mistral and other rotary decoder models)")
    return sorted(found, key=lambda m: m.layer_idx)


def _rotary_function(module: Any) -> Callable[..., Any]:
    modeling = sys.modules.get(type(module).__module__)
    function = getattr(modeling, "apply_rotary_pos_emb", None)
    if function is None:
        raise MolesynError(f"{type(module).__name__}: its modeling module has no apply_rotary_pos_emb "
                           "(only rotary-attention models are supported)")
    return function


def _head_dim(module: Any) -> int:
    if getattr(module, "head_dim", None):
        return int(module.head_dim)
    config = module.config
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


class QKCapture:
    """Context manager capturing post-RoPE queries and keys of every attention layer during a forward pass.

    For each layer, after the attention module has run, ``on_layer(layer_index, q, k, scaling)`` is called with
    ``q`` of shape ``(batch, heads, seq, head_dim)`` and ``k`` of shape ``(batch, kv_heads, seq, head_dim)`` (GQA: the
    model's ``num_key_value_heads``), both exactly as the model feeds them to its attention function. With no
    callback they are kept in :attr:`captured` (layer -> (q, k)). Hooks are removed on exit.
    """

    def __init__(self, model: Any, on_layer: Callable[[int, Any, Any, float], None] | None = None):
        self.modules = attention_modules(model)
        self.on_layer = on_layer
        self.captured: dict[int, tuple[Any, Any]] = {}
        self._handles: list[Any] = []
        self._raw: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> Self:
        for module in self.modules:
            index = module.layer_idx
            rotate = _rotary_function(module)
            q_source = module.q_norm if hasattr(module, "q_norm") else module.q_proj
            k_source = module.k_norm if hasattr(module, "k_norm") else module.k_proj

            def keep(name: str, layer: int = index) -> Callable[..., None]:
                def hook(_module: Any, _inputs: Any, output: Any) -> None:
                    self._raw.setdefault(layer, {})[name] = output
                return hook

            def pre(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], layer: int = index) -> None:
                embeddings = kwargs.get("position_embeddings")
                if embeddings is None and len(args) > 1:
                    embeddings = args[1]
                if embeddings is None:
                    raise MolesynError(f"attention layer {layer}: the model passed no position embeddings")
                self._raw.setdefault(layer, {})["rope"] = embeddings

            def post(attn: Any, _inputs: Any, _output: Any, layer: int = index,
                     rotate: Callable[..., Any] = rotate) -> None:
                raw = self._raw.pop(layer)
                head_dim = _head_dim(attn)
                q, k = raw["q"], raw["k"]
                batch, seq = q.shape[0], q.shape[1]
                q = q.reshape(batch, seq, -1, head_dim).transpose(1, 2)
                k = k.reshape(batch, seq, -1, head_dim).transpose(1, 2)
                cos, sin = raw["rope"]
                q, k = rotate(q, k, cos, sin)
                scaling = float(getattr(attn, "scaling", head_dim ** -0.5))
                if self.on_layer is not None:
                    self.on_layer(layer, q.detach(), k.detach(), scaling)
                else:
                    self.captured[layer] = (q.detach(), k.detach())

            self._handles += [q_source.register_forward_hook(keep("q")), k_source.register_forward_hook(keep("k")),
                              module.register_forward_pre_hook(pre, with_kwargs=True),
                              module.register_forward_hook(post)]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._raw.clear()


def _repeat_kv(k: Any, n_heads: int) -> Any:
    """Expand ``(batch, kv_heads, seq, d)`` keys to the query heads (head ``h`` uses group ``h // (H / KV)``)."""
    groups = n_heads // k.shape[1]
    return k if groups == 1 else k.repeat_interleave(groups, dim=1)


def _body(model: Any) -> Any:
    """The decoder body (no LM head) when the model has one, else the model itself."""
    body = getattr(model, "base_model", model)
    return body if body is not None else model


def attention_logits(model: Any, input_ids: Any) -> list[Any]:
    """Per layer, the pre-mask attention logits ``q.k * scaling`` of shape ``(batch, heads, seq, seq)`` captured by
    :class:`QKCapture` during one forward pass (GQA keys expanded to the query heads)."""
    import torch

    logits: dict[int, Any] = {}

    def on_layer(layer: int, q: Any, k: Any, scaling: float) -> None:
        logits[layer] = torch.matmul(q, _repeat_kv(k, q.shape[1]).transpose(-1, -2)) * scaling

    with torch.inference_mode(), QKCapture(model, on_layer):
        _body(model)(input_ids=input_ids, use_cache=False)
    return [logits[i] for i in sorted(logits)]


def check_against_attention_weights(model: Any, input_ids: Any) -> float:
    """Max absolute difference between the causal softmax of the hooked logits and the model's own attention weights
    (``output_attentions=True`` with eager attention, switched on for this call and restored after).

    Both come from the same forward pass; a value ~1e-6 shows the hooks capture exactly what the model attends with.
    """
    import torch

    logits: dict[int, Any] = {}

    def on_layer(layer: int, q: Any, k: Any, scaling: float) -> None:
        logits[layer] = torch.matmul(q, _repeat_kv(k, q.shape[1]).transpose(-1, -2)) * scaling

    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode(), QKCapture(model, on_layer):
            output = model(input_ids=input_ids, output_attentions=True, use_cache=False)
    finally:
        model.set_attn_implementation(previous)
    if not output.attentions or any(a is None for a in output.attentions):
        raise MolesynError("the model returned no attention weights")
    seq = input_ids.shape[-1]
    causal = torch.ones(seq, seq, dtype=torch.bool, device=input_ids.device).tril()
    worst = 0.0
    for layer, weights in enumerate(output.attentions):
        ours = logits[layer].float().masked_fill(~causal, float("-inf")).softmax(dim=-1)
        worst = max(worst, float((ours - weights.float()).abs().max()))
    return worst


# ---------------------------------------------------------------------------------------------------- tokenising
@dataclass
class TokenizedTrace:
    """A trace as model input.

    Attributes:
        input_ids: the token ids fed to the model.
        spans: ``(start, end)`` token span of each kept step (end exclusive).
        n_steps_total: steps in the trace before the token budget.
        n_question_tokens: tokens of the (possibly cut) question, special prefix tokens included.
    """

    input_ids: list[int]
    spans: list[tuple[int, int]]
    n_steps_total: int
    n_question_tokens: int

    @property
    def n_steps(self) -> int:
        return len(self.spans)

    def centers(self) -> np.ndarray:
        """Mean token position of each kept step."""
        return np.array([(start + end - 1) / 2 for start, end in self.spans], dtype=float)


def _special_prefix(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer puts before a text (e.g. BOS), found by comparing both encodings."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    special = tokenizer("a", add_special_tokens=True)["input_ids"]
    if plain and plain[0] in special:
        return list(special[:special.index(plain[0])])
    return []


def tokenize_trace(trace: Trace, tokenizer: Any, config: EnergyConfig = EnergyConfig(),
                   prompt: str | None = None) -> TokenizedTrace:
    """Tokenise a trace as described in the module docstring (``prompt`` overrides the question text)."""
    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    ids = _special_prefix(tokenizer)
    if prompt is None and config.include_question and trace.question:
        prompt = config.question_template.format(question=trace.question)
    if prompt:
        question_ids = encode(prompt)
        limit = max(0, config.max_tokens // 2 - len(ids))
        ids += question_ids[:limit]
    n_question = len(ids)
    separator = encode(config.separator)
    spans: list[tuple[int, int]] = []
    for index, step in enumerate(trace.steps):
        step_ids = encode(step)
        gap = separator if index > 0 else []
        if len(ids) + len(gap) + len(step_ids) > config.max_tokens:
            break
        ids += gap
        spans.append((len(ids), len(ids) + len(step_ids)))
        ids += step_ids
    return TokenizedTrace(input_ids=ids, spans=spans, n_steps_total=len(trace.steps), n_question_tokens=n_question)


# -------------------------------------------------------------------------------------------------------- pairs
@dataclass(frozen=True)
class StepPair:
    """A (later step, earlier step) pair of one trace: queries from ``later``, keys from ``earlier``.

    ``bond`` is a bond type, or ``control:<type>`` for a matched-distance control of that type; ``distance`` is in
    tokens (between the steps' mean positions); ``matched_to`` is the bond pair a control stands in for.
    """

    bond: str
    later: int
    earlier: int
    distance: float
    matched_to: tuple[int, int] | None = None


def bond_pairs(trace: Trace, behaviors: Sequence[str], tokenized: TokenizedTrace,
               config: EnergyConfig = EnergyConfig()) -> list[StepPair]:
    """The bond pairs among the kept steps of a trace, from its molecule (see the module docstring)."""
    from .molecule import build_molecule

    kept = tokenized.n_steps
    if kept == 0:
        return []
    view = Trace(trace_id=trace.trace_id, steps=list(trace.steps[:kept]), behaviors=list(behaviors[:kept]))
    molecule = build_molecule(view, hydrogen_threshold=config.hydrogen_threshold)
    centers = tokenized.centers()
    pairs = []
    for u, v, data in molecule.edges(data=True):
        bond = data["bond"]
        if bond not in config.bonds:
            continue
        later, earlier = (u, v) if bond == "hydrogen" else (v, u)
        if tokenized.spans[later][0] == tokenized.spans[later][1] or \
                tokenized.spans[earlier][0] == tokenized.spans[earlier][1]:
            continue  # a whitespace-only step has no tokens
        pairs.append(StepPair(bond, int(later), int(earlier), float(centers[later] - centers[earlier])))
    return sorted(pairs, key=lambda p: (ALL_BONDS.index(p.bond), p.later, p.earlier))


def matched_controls(pairs: Sequence[StepPair], tokenized: TokenizedTrace, rng: np.random.Generator,
                     tolerance: float = 0.1) -> list[StepPair]:
    """One matched-distance control per bond pair (see the module docstring): a random step pair of the same trace,
    not a bond of the same type, whose token distance is within ``tolerance`` (relative) of the bond's, else the
    nearest such pair. Bond pairs without any candidate get no control."""
    n = tokenized.n_steps
    if n < 2 or not pairs:
        return []
    centers = tokenized.centers()
    nonempty = np.array([end > start for start, end in tokenized.spans])
    later_idx, earlier_idx = np.tril_indices(n, k=-1)
    keep = nonempty[later_idx] & nonempty[earlier_idx]
    later_idx, earlier_idx = later_idx[keep], earlier_idx[keep]
    distances = centers[later_idx] - centers[earlier_idx]
    by_type: dict[str, set[tuple[int, int]]] = {}
    for pair in pairs:
        by_type.setdefault(pair.bond, set()).add((pair.later, pair.earlier))
    controls = []
    for pair in pairs:
        own = by_type[pair.bond]
        allowed = np.array([(a, b) not in own for a, b in zip(later_idx.tolist(), earlier_idx.tolist())], dtype=bool)
        if not allowed.any():
            continue
        gaps = np.abs(distances - pair.distance)
        gaps = np.where(allowed, gaps, np.inf)
        within = np.flatnonzero(gaps <= tolerance * max(pair.distance, 1.0))
        if within.size:
            choice = int(rng.choice(within))
        else:
            nearest = np.flatnonzero(gaps == gaps.min())
            choice = int(rng.choice(nearest))
        controls.append(StepPair(CONTROL_PREFIX + pair.bond, int(later_idx[choice]), int(earlier_idx[choice]),
                                 float(distances[choice]), matched_to=(pair.later, pair.earlier)))
    return controls


# ----------------------------------------------------------------------------------------------------- measuring
def step_logits(model: Any, tokenized: TokenizedTrace, token_mode: TokenMode = "mean") -> np.ndarray:
    """Step-to-step attention logits of one trace: array ``(layers, steps, steps)`` whose ``[l, i, j]`` is the
    head-averaged logit of later step ``i`` (queries) on step ``j`` (keys) in layer ``l`` (see ``token_mode``).
    Entries with ``j >= i`` are not meaningful (causal attention) and left at 0 (``"max"`` mode)."""
    import torch

    n = tokenized.n_steps
    seq = len(tokenized.input_ids)
    if n == 0:
        return np.zeros((len(attention_modules(model)), 0, 0))
    averaging = torch.zeros(n, seq)
    for index, (start, end) in enumerate(tokenized.spans):
        if end > start:
            averaging[index, start:end] = 1.0 / (end - start)
    per_layer: dict[int, np.ndarray] = {}

    def on_layer(layer: int, q: Any, k: Any, scaling: float) -> None:
        k = _repeat_kv(k, q.shape[1])[0].float()  # (heads, seq, d): each query head with its KV group
        q = q[0].float()
        averaging_here = averaging.to(q.device)
        if token_mode == "mean":
            q_mean = averaging_here @ q  # (heads, steps, d): broadcasting over heads
            k_mean = averaging_here @ k
            values = torch.matmul(q_mean, k_mean.transpose(-1, -2)) * scaling  # (heads, steps, steps)
        else:
            logits = torch.matmul(q, k.transpose(-1, -2)) * scaling  # (heads, seq, seq)
            values = torch.zeros(q.shape[0], n, n, device=q.device)
            for j, (start, end) in enumerate(tokenized.spans):
                if end <= start:
                    continue
                best = logits[:, :, start:end].amax(dim=-1)  # (heads, seq): each query's best key in step j
                values[:, :, j] = best @ averaging_here.T
        per_layer[layer] = values.mean(dim=0).cpu().numpy().astype(np.float64)

    ids = torch.tensor([tokenized.input_ids], dtype=torch.long, device=next(model.parameters()).device)
    with torch.inference_mode(), QKCapture(model, on_layer):
        _body(model)(input_ids=ids, use_cache=False)
    return np.stack([per_layer[i] for i in sorted(per_layer)])


@dataclass
class PairEnergy:
    """The measured q.k of one step pair: ``qk[l]`` is the head-averaged logit in layer ``l``."""

    trace_id: str
    bond: str
    later: int
    earlier: int
    distance: float
    qk: np.ndarray
    matched_to: tuple[int, int] | None = None

    @property
    def step_distance(self) -> int:
        return self.later - self.earlier


@dataclass
class EnergyResult:
    """All measured pairs of a run plus its provenance; see :meth:`table` and :meth:`summary`."""

    model: str
    config: EnergyConfig
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    pairs: list[PairEnergy]
    traces: list[dict[str, Any]] = field(default_factory=list)
    labeler: str | None = None

    def bonds(self) -> list[str]:
        """Bond (and control) names present, in canonical order."""
        names = {p.bond for p in self.pairs}
        order = [b for b in ALL_BONDS if b in names] + [CONTROL_PREFIX + b for b in ALL_BONDS
                                                         if CONTROL_PREFIX + b in names]
        return order

    def _values(self, bond: str) -> tuple[np.ndarray, np.ndarray]:
        chosen = [p for p in self.pairs if p.bond == bond]
        if not chosen:
            return np.zeros((0, self.n_layers)), np.zeros(0)
        return np.stack([p.qk for p in chosen]), np.array([p.distance for p in chosen])

    def table(self) -> list[dict[str, Any]]:
        """Tidy rows: bond, layer (int, or ``"mean"`` for the layer average), mean_qk, mean_energy (= -mean_qk),
        n_pairs, mean_distance (tokens)."""
        rows = []
        for bond in self.bonds():
            values, distances = self._values(bond)
            for layer in [*range(self.n_layers), "mean"]:
                column = values.mean(axis=1) if layer == "mean" else values[:, layer]
                mean_qk = float(column.mean())
                rows.append({"bond": bond, "layer": layer, "mean_qk": mean_qk, "mean_energy": -mean_qk,
                             "n_pairs": int(values.shape[0]), "mean_distance": float(distances.mean())})
        return rows

    def paired_differences(self, bond: str) -> np.ndarray:
        """Layer-averaged q.k of each bond pair minus that of its own matched control (pairs with a control)."""
        by_key = {(p.trace_id, p.later, p.earlier): p for p in self.pairs if p.bond == bond}
        diffs = [float(by_key[(c.trace_id, *c.matched_to)].qk.mean() - c.qk.mean())
                 for c in self.pairs if c.bond == CONTROL_PREFIX + bond and c.matched_to is not None
                 and (c.trace_id, *c.matched_to) in by_key]
        return np.array(diffs)

    def summary(self) -> dict[str, Any]:
        """Per bond: layer-averaged mean q.k and energy, pairs, distance, its control and ``bond - control`` (mean of
        paired differences, bootstrap 95% interval); and the ordering checks of the paper's D > R > E."""
        rng = np.random.default_rng(self.config.seed)
        per_bond: dict[str, dict[str, Any]] = {}
        for bond in [b for b in ALL_BONDS if b in self.bonds()]:
            values, distances = self._values(bond)
            control_values, control_distances = self._values(CONTROL_PREFIX + bond)
            diffs = self.paired_differences(bond)
            entry: dict[str, Any] = {
                "mean_qk": float(values.mean()), "mean_energy": float(-values.mean()), "n_pairs": len(values),
                "mean_distance": float(distances.mean()),
                "mean_step_distance": float(np.mean([p.step_distance for p in self.pairs if p.bond == bond])),
                "control_mean_qk": float(control_values.mean()) if len(control_values) else None,
                "control_mean_distance": float(control_distances.mean()) if len(control_distances) else None,
            }
            if diffs.size:
                boots = rng.choice(diffs, size=(self.config.n_bootstrap, diffs.size)).mean(axis=1)
                entry.update(bond_minus_control=float(diffs.mean()),
                             bond_minus_control_ci95=[float(np.percentile(boots, 2.5)),
                                                      float(np.percentile(boots, 97.5))])
            else:
                entry.update(bond_minus_control=None, bond_minus_control_ci95=None)
            per_bond[bond] = entry
        present = [b for b in MAIN_BONDS if b in per_bond]
        raw = [per_bond[b]["mean_qk"] for b in present]
        corrected = [per_bond[b]["bond_minus_control"] for b in present]
        complete = len(present) == len(MAIN_BONDS)
        return {
            "model": self.model, "labeler": self.labeler, "token_mode": self.config.token_mode,
            "max_tokens": self.config.max_tokens, "n_traces": len(self.traces),
            "n_layers": self.n_layers, "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads,
            "head_dim": self.head_dim, "bonds": per_bond,
            "ordering": " > ".join(sorted(present, key=lambda b: -per_bond[b]["mean_qk"])),
            "ordering_holds": bool(complete and raw[0] > raw[1] > raw[2]),
            "ordering_holds_after_control": bool(complete and all(c is not None for c in corrected)
                                                 and corrected[0] > corrected[1] > corrected[2]),
            "paper_qk_qwq_distilled": PAPER_QK_QWQ,
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``ENERGY.json`` record: summary, table, config, per-trace provenance and every pair."""
        return {
            "summary": self.summary(), "table": self.table(), "config": asdict(self.config), "traces": self.traces,
            "pairs": [{"trace_id": p.trace_id, "bond": p.bond, "later": p.later, "earlier": p.earlier,
                       "distance": p.distance, "matched_to": list(p.matched_to) if p.matched_to else None,
                       "qk": np.round(p.qk, 6).tolist()} for p in self.pairs],
        }

    def save(self, path: str | Path) -> Path:
        """Write ``ENERGY.json`` atomically as strict JSON (:func:`molesyn_lib.safeio.write_json`)."""
        from .safeio import write_json

        return write_json(path, self.to_dict(), indent=1)


def _model_shape(model: Any) -> tuple[int, int, int, int]:
    modules = attention_modules(model)
    config = model.config
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    return len(modules), heads, kv_heads, _head_dim(modules[0])


def measure_energy(model: Any, tokenizer: Any, traces: Sequence[Trace], labeler: Any = DEFAULT_LABELER,
                   config: EnergyConfig = EnergyConfig(), behaviors: Sequence[Sequence[str]] | None = None,
                   prompt_fn: Callable[[Trace], str] | None = None, model_name: str | None = None,
                   progress: bool = True) -> EnergyResult:
    """Measure bond energies of ``traces`` under ``model``.

    Args:
        model, tokenizer: a Hugging Face causal LM with rotary attention and its tokenizer.
        traces: the traces (labelled on their full length, then cut to the token budget).
        labeler: a labeller name or instance (see :mod:`molesyn_lib.labelers`), or ``None`` to use
            ``trace.behaviors`` (gold labels).
        config: see :class:`EnergyConfig`.
        behaviors: precomputed behaviours per trace (overrides ``labeler``).
        prompt_fn: the text before the steps for a trace (default: the question through ``question_template``), e.g.
            the lab's ``Q:...>`` prompt for a lab student.
        model_name: recorded in the result.
        progress: show a progress bar over traces.
    """
    from .progress import tqdm

    traces = list(traces)
    labeler_name = None
    if behaviors is None:
        if labeler is None:
            missing = [t.trace_id for t in traces if t.behaviors is None]
            if missing:
                raise InputError(f"trace {missing[0]} has no behaviour labels; pass a labeller",
                                 traces[0].source or None)
            behaviors = [list(t.behaviors or []) for t in traces]
            labeler_name = "trace"
        else:
            from .labelers import get_labeler, label_corpus

            try:
                labeler_obj = get_labeler(labeler) if isinstance(labeler, str) else labeler
            except ValueError as exc:
                raise MolesynError(str(exc)) from None
            behaviors = label_corpus(traces, labeler_obj) if traces else []
            labeler_name = getattr(labeler_obj, "name", str(labeler))
    if len(behaviors) != len(traces):
        raise MolesynError(f"{len(behaviors)} behaviour lists for {len(traces)} traces")
    n_layers, n_heads, n_kv, head_dim = _model_shape(model)
    rng = np.random.default_rng(config.seed)
    pairs: list[PairEnergy] = []
    records = []
    for trace, trace_behaviors in tqdm(list(zip(traces, behaviors)), desc="bond energies", unit="trace",
                                       disable=not progress):
        if len(trace_behaviors) != len(trace.steps):
            raise InputError(f"trace {trace.trace_id}: {len(trace_behaviors)} behaviours for {len(trace.steps)} "
                             "steps", trace.source or None)
        tokenized = tokenize_trace(trace, tokenizer, config, prompt_fn(trace) if prompt_fn else None)
        bonds = bond_pairs(trace, trace_behaviors, tokenized, config)
        controls = matched_controls(bonds, tokenized, rng, config.control_tolerance)
        records.append({"trace_id": trace.trace_id, "model": trace.model, "n_tokens": len(tokenized.input_ids),
                        "n_steps": tokenized.n_steps, "n_steps_total": tokenized.n_steps_total,
                        "n_bond_pairs": len(bonds), "n_control_pairs": len(controls)})
        if not bonds:
            continue
        matrix = step_logits(model, tokenized, config.token_mode)
        for pair in (*bonds, *controls):
            pairs.append(PairEnergy(trace.trace_id, pair.bond, pair.later, pair.earlier, pair.distance,
                                    matrix[:, pair.later, pair.earlier].copy(), pair.matched_to))
    name = model_name or getattr(getattr(model, "config", None), "_name_or_path", None) or type(model).__name__
    return EnergyResult(model=str(name), config=config, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
                        head_dim=head_dim, pairs=pairs, traces=records, labeler=labeler_name)


def load_energy_model(name_or_path: str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for an energy run: ``"smollm2"`` and other ids/folders through
    :func:`molesyn_lib.models.load_causal_lm` when that module is available, else a local folder through
    ``AutoModelForCausalLM`` (offline)."""
    try:
        from .models import load_causal_lm
    except ImportError:
        load_causal_lm = None
    if load_causal_lm is not None:
        return load_causal_lm(name_or_path)
    path = Path(name_or_path)
    if not path.is_dir():
        raise MolesynError(f"model {name_or_path!r} is not a local folder (and molesyn_lib.models is unavailable)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    model.eval()
    return model, tokenizer


__all__ = [
    "ALL_BONDS",
    "MAIN_BONDS",
    "PAPER_QK_QWQ",
    "EnergyConfig",
    "EnergyResult",
    "PairEnergy",
    "QKCapture",
    "StepPair",
    "TokenizedTrace",
    "attention_logits",
    "attention_modules",
    "bond_pairs",
    "check_against_attention_weights",
    "load_energy_model",
    "matched_controls",
    "measure_energy",
    "step_logits",
    "tokenize_trace",
]
