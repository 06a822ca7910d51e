"""Tests of the attention-energy measurement: the hooked q.k reproduces the model's own attention weights (tiny random
Llama / Qwen2, with and without GQA), step logits equal brute-force token averages, tokenisation keeps whole steps,
bonds are grouped as the molecule says, controls match the bonds' distances, and ``molesyn energy`` runs end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from molesyn_lib import energy
from molesyn_lib.cli import main
from molesyn_lib.energy import (
    EnergyConfig,
    StepPair,
    TokenizedTrace,
    attention_logits,
    bond_pairs,
    check_against_attention_weights,
    matched_controls,
    measure_energy,
    step_logits,
    tokenize_trace,
)
from molesyn_lib.errors import MolesynError
from molesyn_lib.traces import Trace

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 .,=+?\n"


def char_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {c: i for i, c in enumerate(["<pad>", "<unk>", "<s>", *ALPHABET])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>")


def tiny_model(kind: str, kv_heads: int = 2, seed: int = 0):
    """A random tiny model whose attention is far from uniform (large init), so a wrong q.k shows."""
    torch.manual_seed(seed)
    config_cls, model_cls = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[kind]
    config = config_cls(vocab_size=len(ALPHABET) + 3, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=kv_heads, head_dim=8, max_position_embeddings=256,
                        initializer_range=0.5)
    return model_cls(config).eval()


@pytest.mark.parametrize("kind, kv_heads", [("llama", 2), ("qwen2", 2), ("llama", 4), ("qwen2", 1)])
def test_hooked_logits_reproduce_the_models_attention_weights(kind, kv_heads):
    model = tiny_model(kind, kv_heads)
    ids = torch.randint(0, model.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(1))
    assert check_against_attention_weights(model, ids) < 1e-5
    assert model.config._attn_implementation == "sdpa"  # restored after the eager check


def test_the_check_fails_without_rope_or_with_the_wrong_gqa_grouping(monkeypatch):
    model = tiny_model("llama", 2)
    ids = torch.randint(0, model.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(2))
    with monkeypatch.context() as patch:
        patch.setattr(energy, "_rotary_function", lambda module: (lambda q, k, cos, sin: (q, k)))
        assert check_against_attention_weights(model, ids) > 0.1
    with monkeypatch.context() as patch:
        patch.setattr(energy, "_repeat_kv", lambda k, n: k.repeat(1, n // k.shape[1], 1, 1))
        assert check_against_attention_weights(model, ids) > 0.1


def _tokenized(lengths: list[int], start: int = 3) -> TokenizedTrace:
    spans, position = [], start
    for length in lengths:
        spans.append((position, position + length))
        position += length + 1  # one separator token between steps
    return TokenizedTrace(input_ids=list(range(1, position)), spans=spans, n_steps_total=len(lengths),
                          n_question_tokens=start)


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_step_logits_equal_brute_force_token_averages(mode):
    model = tiny_model("qwen2", 2)
    tokenized = _tokenized([4, 6, 3, 5])
    matrix = step_logits(model, tokenized, mode)
    logits = attention_logits(model, torch.tensor([tokenized.input_ids]))
    for layer, full in enumerate(logits):
        full = full[0]  # (heads, seq, seq)
        for later in range(1, 4):
            for earlier in range(later):
                (qs, qe), (ks, ke) = tokenized.spans[later], tokenized.spans[earlier]
                block = full[:, qs:qe, ks:ke]
                expected = block.mean() if mode == "mean" else block.amax(dim=-1).mean()
                assert matrix[layer, later, earlier] == pytest.approx(float(expected), abs=1e-4)


def test_tokenize_trace_keeps_whole_steps_within_the_budget():
    tokenizer = char_tokenizer()
    trace = Trace(trace_id="t", steps=["abc", "de", "fghij"], question="q?")
    config = EnergyConfig(max_tokens=14, question_template="{question}\n", separator="\n")
    tokenized = tokenize_trace(trace, tokenizer, config)
    # "q?\n" = 3 tokens, "abc" at 3..6, "\n", "de" at 7..9; "fghij" (+ separator) would need 6 more -> dropped
    assert tokenized.spans == [(3, 6), (7, 9)]
    assert tokenized.n_steps_total == 3 and len(tokenized.input_ids) == 9
    assert tokenizer.convert_ids_to_tokens(tokenized.input_ids[7:9]) == ["d", "e"]
    long_question = Trace(trace_id="t", steps=["ab"], question="x" * 50)
    cut = tokenize_trace(long_question, tokenizer, EnergyConfig(max_tokens=20))
    assert cut.n_question_tokens == 10 and cut.spans == [(10, 12)]  # the question gets at most half the budget


def test_bond_pairs_follow_the_molecule():
    steps = ["the sum of x and y is ten", "therefore x equals three so y equals seven",
             "wait check the sum of x and y is ten", "alternatively try a table", "so the answer is seven"]
    trace = Trace(trace_id="t", steps=steps)
    tokenized = _tokenized([5, 5, 5, 5, 5])
    pairs = bond_pairs(trace, ["N", "D", "R", "E", "D"], tokenized)
    got = {(p.bond, p.later, p.earlier) for p in pairs}
    assert got == {("covalent", 1, 0), ("covalent", 4, 3), ("hydrogen", 2, 0), ("vdw", 3, 1),
                   ("sequence", 2, 1), ("sequence", 3, 2)}
    hydrogen = next(p for p in pairs if p.bond == "hydrogen")
    assert hydrogen.distance == pytest.approx(12.0)  # two steps of 5 tokens + separators between their centres
    only_main = bond_pairs(trace, ["N", "D", "R", "E", "D"], tokenized,
                           EnergyConfig(bonds=("covalent", "hydrogen", "vdw")))
    assert {p.bond for p in only_main} == {"covalent", "hydrogen", "vdw"}


def test_matched_controls_have_the_bonds_distance_distribution():
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(3, 30, size=40))
    tokenized = _tokenized(lengths)
    centers = tokenized.centers()
    bonds = [StepPair("hydrogen", i, j, float(centers[i] - centers[j]))
             for i, j in [(10, 2), (20, 5), (30, 25), (39, 1), (15, 14), (25, 20), (33, 3)]]
    controls = matched_controls(bonds, tokenized, np.random.default_rng(1), tolerance=0.1)
    assert len(controls) == len(bonds)
    for bond, control in zip(bonds, controls):
        assert control.bond == "control:hydrogen" and control.matched_to == (bond.later, bond.earlier)
        assert (control.later, control.earlier) not in {(b.later, b.earlier) for b in bonds}
        assert control.distance == pytest.approx(centers[control.later] - centers[control.earlier])
        assert abs(control.distance - bond.distance) <= 0.1 * bond.distance
    again = matched_controls(bonds, tokenized, np.random.default_rng(1), tolerance=0.1)
    assert again == controls  # seeded


def _labelled_traces() -> list[Trace]:
    steps = ["the sum of x and y is ten", "therefore x equals three so y equals seven",
             "wait check the sum of x and y is ten", "alternatively try a table of values",
             "so the answer is seven", "hence y is seven"]
    labels = ["N", "D", "R", "E", "D", "D"]
    return [Trace(trace_id=f"t{i}", steps=steps[i:] + steps[:i], question="find y", behaviors=labels[i:] + labels[:i])
            for i in range(3)]


def test_measure_energy_tables_and_summary():
    model, tokenizer = tiny_model("llama", 2), char_tokenizer()
    result = measure_energy(model, tokenizer, _labelled_traces(), labeler=None, progress=False)
    rows = result.table()
    bonds = result.bonds()
    assert {"covalent", "control:covalent"} <= set(bonds)
    assert len(rows) == len(bonds) * (model.config.num_hidden_layers + 1)
    mean_row = next(r for r in rows if r["bond"] == "covalent" and r["layer"] == "mean")
    per_layer = [r["mean_qk"] for r in rows if r["bond"] == "covalent" and r["layer"] != "mean"]
    assert mean_row["mean_qk"] == pytest.approx(np.mean(per_layer))
    assert mean_row["mean_energy"] == pytest.approx(-mean_row["mean_qk"])
    summary = result.summary()
    covalent = summary["bonds"]["covalent"]
    assert covalent["n_pairs"] == sum(1 for p in result.pairs if p.bond == "covalent")
    diffs = result.paired_differences("covalent")
    assert covalent["bond_minus_control"] == pytest.approx(diffs.mean())
    low, high = covalent["bond_minus_control_ci95"]
    assert low <= covalent["bond_minus_control"] <= high
    assert isinstance(summary["ordering_holds"], bool) and summary["n_heads"] == 4 and summary["n_kv_heads"] == 2
    json.dumps(result.to_dict())
    again = measure_energy(model, tokenizer, _labelled_traces(), labeler=None, progress=False)
    assert again.summary() == summary  # deterministic (seeded controls and bootstrap)


def test_measure_energy_needs_labels():
    trace = Trace(trace_id="t", steps=["a b", "c d"])
    with pytest.raises(Exception, match="no behaviour labels"):
        measure_energy(tiny_model("llama"), char_tokenizer(), [trace], labeler=None, progress=False)
    with pytest.raises(MolesynError, match="token_mode"):
        EnergyConfig(token_mode="median")


def test_cli_energy_end_to_end(tmp_path, capsys):
    model_dir = tmp_path / "student"
    tiny_model("qwen2", 2).save_pretrained(model_dir)
    char_tokenizer().save_pretrained(model_dir)
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"id": t.trace_id, "question": t.question, "steps": t.steps,
                                          "gold": t.behaviors}) + "\n" for t in _labelled_traces()))
    out = tmp_path / "energy.json"
    code = main(["energy", "--model", str(model_dir), "--traces", str(traces), "--labeler", "trace",
                 "--n-traces", "2", "--max-tokens", "200", "--out", str(out)])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["summary"]["n_traces"] == 2 and record["config"]["max_tokens"] == 200
    assert "covalent > hydrogen > vdw" in capsys.readouterr().out
    assert {"bond", "layer", "mean_qk", "mean_energy", "n_pairs", "mean_distance"} <= set(record["table"][0])


def test_cli_energy_bad_input_is_one_line(tmp_path, capsys):
    traces = tmp_path / "bad.jsonl"
    traces.write_text('{"id": "a", "steps": ["x"], "gold": ["Q"]}\n')
    code = main(["energy", "--model", str(tmp_path), "--traces", str(traces), "--out", str(tmp_path / "e.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"{traces}:1:" in err[0]
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "steps": ["x y", "z w"]}\n')
    code = main(["energy", "--model", str(tmp_path), "--traces", str(good), "--max-tokens", "4",
                 "--out", str(tmp_path / "e.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("molesyn: error:") and "max_tokens" in err[-1]
