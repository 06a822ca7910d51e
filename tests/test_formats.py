"""Trace formats (:mod:`molesyn_lib.formats`): every container and record shape reads, gives exactly the steps and the
graph of the plain ``response`` JSONL, and a malformed or unknown input is one line naming the file and record."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from molesyn_lib.cli import main
from molesyn_lib.commands.inspect import inspect_source
from molesyn_lib.errors import InputError
from molesyn_lib.formats import ReadOptions, TraceReader, detect_container, parse_hf_name, thought_markers_to_think
from molesyn_lib.labelers import get_labeler
from molesyn_lib.traces import load_traces
from molesyn_lib.transfer import TransferGraph

THINK = [
    "\nWe need x such that 2x = 6, which is a linear equation.\n\nSo x = 3, because dividing both sides by 2 gives "
    "it.\n\nWait, let me check that again: 2 * 3 = 6. Correct.\n",
    "\nLet me try small cases first, for n = 1 the sum is 1.\n\nAlternatively, maybe use induction on n to "
    "prove it.\n\nSo the formula holds for all n, therefore the answer is n^2.\n",
    "\nThe area of a circle is pi r^2, here r = 2 so the area is 4 pi.\n\nHmm, but the question asks for the "
    "diameter instead, which is 4.\n",
]
FINAL = ["\n\nThe answer is 3.", "\n\n**n^2**", "\n\n4"]
QUESTIONS = ["Solve 2x = 6.", "Sum of the first n odd numbers?", "Diameter of a circle of radius 2?"]
MODELS = ["m1", "m2", "m1"]


def plain_records() -> list[dict]:
    return [{"id": f"t{i}", "model": MODELS[i], "question": QUESTIONS[i],
             "response": f"<think>{THINK[i]}</think>{FINAL[i]}"} for i in range(3)]


def messages_records() -> list[dict]:
    return [{"id": f"t{i}", "model": MODELS[i], "messages": [
        {"role": "system", "content": "Think step by step."}, {"role": "user", "content": QUESTIONS[i]},
        {"role": "assistant", "content": f"<think>{THINK[i]}</think>{FINAL[i]}"}]} for i in range(3)]


def messages_reasoning_records() -> list[dict]:
    return [{"id": f"t{i}", "model": MODELS[i], "messages": [
        {"role": "user", "content": QUESTIONS[i]},
        {"role": "assistant", "content": FINAL[i], "reasoning_content": THINK[i]}]} for i in range(3)]


def sharegpt_records() -> list[dict]:
    return [{"system": "Your role as an assistant ...", "model": MODELS[i], "conversations": [
        {"from": "user", "value": QUESTIONS[i]},
        {"from": "assistant", "value": f"<|begin_of_thought|>{THINK[i]}<|end_of_thought|>"
                                       f"<|begin_of_solution|>{FINAL[i]}<|end_of_solution|>"}]} for i in range(3)]


def reasoning_records() -> list[dict]:
    return [{"id": f"t{i}", "model": MODELS[i], "prompt": QUESTIONS[i], "reasoning_content": THINK[i],
             "content": FINAL[i]} for i in range(3)]


def reasoning_alt_records() -> list[dict]:
    return [{"id": f"t{i}", "model": MODELS[i], "reasoning": THINK[i], "content": FINAL[i]} for i in range(3)]


def completion_records() -> list[dict]:
    return [{"id": f"chatcmpl-{i}", "object": "chat.completion", "model": MODELS[i], "choices": [
        {"index": 0, "finish_reason": "stop",
         "message": {"role": "assistant", "content": FINAL[i], "reasoning_content": THINK[i]}}]} for i in range(3)]


def batch_records() -> list[dict]:
    return [{"id": f"batch_req_{i}", "custom_id": f"t{i}", "response": {"status_code": 200, "body": c}}
            for i, c in enumerate(completion_records())]


SHAPE_FIXTURES = {"response": plain_records, "messages": messages_records, "messages-reasoning":
                  messages_reasoning_records, "sharegpt": sharegpt_records, "reasoning": reasoning_records,
                  "reasoning-alt": reasoning_alt_records, "completion": completion_records,
                  "batch": batch_records}


def write_jsonl(path, records, compress=False):
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_container(tmp_path, name, records):
    """Write ``records`` in container ``name``; return the source string to read."""
    if name == "jsonl":
        return str(write_jsonl(tmp_path / "t.jsonl", records))
    if name == "jsonl.gz":
        return str(write_jsonl(tmp_path / "t.jsonl.gz", records, compress=True))
    if name == "gz-no-suffix":
        return str(write_jsonl(tmp_path / "t.data", records, compress=True))
    if name == "json":
        (tmp_path / "t.json").write_text(json.dumps(records, indent=2))
        return str(tmp_path / "t.json")
    if name == "json.gz":
        (tmp_path / "t.json.gz").write_bytes(gzip.compress(json.dumps(records).encode()))
        return str(tmp_path / "t.json.gz")
    import pyarrow as pa

    table = pa.Table.from_pylist(records)
    if name == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, tmp_path / "t.parquet", row_group_size=2)
        return str(tmp_path / "t.parquet")
    if name in ("arrow", "arrow-stream"):
        path = tmp_path / f"t.{name}"
        with pa.OSFile(str(path), "wb") as sink:
            writer = (pa.ipc.new_file if name == "arrow" else pa.ipc.new_stream)(sink, table.schema)
            for batch in table.to_batches(max_chunksize=2):
                writer.write_batch(batch)
            writer.close()
        return str(path)
    import datasets

    if name == "hf-disk":
        datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "ds"))
        return str(tmp_path / "ds")
    if name == "hf-disk-split":
        datasets.DatasetDict({"train": datasets.Dataset.from_list(records[:1]),
                              "test": datasets.Dataset.from_list(records)}).save_to_disk(str(tmp_path / "dd"))
        return str(tmp_path / "dd") + ":test"
    raise AssertionError(name)


CONTAINERS = ["jsonl", "jsonl.gz", "gz-no-suffix", "json", "json.gz", "parquet", "arrow", "arrow-stream", "hf-disk",
              "hf-disk-split"]


@pytest.fixture(scope="module")
def reference():
    """Steps, labels and graph of the plain response JSONL."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        corpus = load_traces(write_jsonl(Path(tmp) / "plain.jsonl", plain_records()))
    labels = get_labeler("lexical").label(corpus)
    return corpus, labels, TransferGraph.from_sequences(labels)


def assert_same(corpus, reference):
    ref_corpus, ref_labels, ref_graph = reference
    assert [t.steps for t in corpus] == [t.steps for t in ref_corpus]
    assert [t.model for t in corpus] == [t.model for t in ref_corpus]
    assert [t.final for t in corpus] == [t.final for t in ref_corpus]
    assert [t.truncated for t in corpus] == [t.truncated for t in ref_corpus]
    labels = get_labeler("lexical").label(corpus)
    assert labels == ref_labels
    graph = TransferGraph.from_sequences(labels)
    assert (graph.counts == ref_graph.counts).all() and (graph.behavior_counts == ref_graph.behavior_counts).all()


@pytest.mark.parametrize("shape", list(SHAPE_FIXTURES))
def test_every_shape_gives_the_plain_graph(tmp_path, shape, reference):
    source = write_container(tmp_path, "jsonl", SHAPE_FIXTURES[shape]())
    corpus = load_traces(source)
    assert_same(corpus, reference)
    if shape not in ("sharegpt",):
        assert [t.question for t in corpus][:1] in ([QUESTIONS[0]], [None])


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("shape", ["response", "messages", "sharegpt", "completion"])
def test_every_container_gives_the_plain_graph(tmp_path, container, shape, reference):
    source = write_container(tmp_path, container, SHAPE_FIXTURES[shape]())
    reader = TraceReader(source)
    expected = "hf-disk" if container.startswith("hf-disk") else container.split(".")[0].split("-")[0]
    expected = "jsonl" if container == "gz-no-suffix" else expected
    assert reader.container == expected, reader.container_reason
    assert_same(load_traces(source), reference)


def test_questions_and_ids_are_carried(tmp_path):
    corpus = load_traces(write_container(tmp_path, "parquet", messages_records()))
    assert [t.question for t in corpus] == QUESTIONS and [t.trace_id for t in corpus] == ["t0", "t1", "t2"]
    batch = load_traces(write_jsonl(tmp_path / "batch.jsonl", batch_records()))
    assert [t.trace_id for t in batch] == ["t0", "t1", "t2"] and [t.model for t in batch] == MODELS
    sharegpt = load_traces(write_container(tmp_path, "jsonl", sharegpt_records()))
    assert [t.question for t in sharegpt] == QUESTIONS
    assert sharegpt[0].trace_id == "t.jsonl:1"


def test_truncated_markers_and_finish_reason(tmp_path):
    assert thought_markers_to_think("<|begin_of_thought|>A<|end_of_thought|><|begin_of_solution|>B"
                                    "<|end_of_solution|>") == "<think>A</think>B"
    records = sharegpt_records()
    records[0]["conversations"][1]["value"] = "<|begin_of_thought|>" + THINK[0]
    completions = completion_records()
    completions[1]["choices"][0].update(finish_reason="length")
    completions[1]["choices"][0]["message"]["content"] = ""
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, records[:1] + completions[1:2])
    corpus = load_traces(path)
    assert [t.truncated for t in corpus] == [True, True]
    assert load_traces(path, truncated="skip").skipped["truncated"] == 2


def test_overrides_think_question_model_fields(tmp_path):
    records = [{"problem_text": QUESTIONS[i], "teacher": MODELS[i], "deepseek_thinking_trajectory": THINK[i],
                "attempt": FINAL[i]} for i in range(3)]
    source = write_container(tmp_path, "parquet", records)
    with pytest.raises(InputError, match=r"t\.parquet:1: a trace needs a 'response'.*fields attempt, deepseek_"):
        load_traces(source)
    options = ReadOptions(think_field="deepseek_thinking_trajectory", question_field="problem_text",
                          model_field="teacher")
    corpus = load_traces(source, read_options=options)
    assert [t.steps for t in corpus] == [t.steps for t in load_traces(write_jsonl(tmp_path / "p.jsonl",
                                                                                  plain_records()))]
    assert [t.question for t in corpus] == QUESTIONS and [t.model for t in corpus] == MODELS
    assert len(load_traces(source, model="m1", read_options=options)) == 2
    # --format forces the container and the shape
    forced = ReadOptions(format="jsonl,reasoning", think_field="deepseek_thinking_trajectory")
    assert len(load_traces(write_jsonl(tmp_path / "r.txt", records), read_options=forced)) == 3


def test_detection_is_explained(tmp_path):
    name, why = detect_container(write_container(tmp_path, "parquet", plain_records()))
    assert name == "parquet" and "PAR1" in why
    name, why = detect_container(write_container(tmp_path, "json.gz", plain_records()))
    assert name == "json" and "gzip" in why
    single = tmp_path / "one.json"
    single.write_text(json.dumps(completion_records()[0], indent=2))
    assert detect_container(single)[0] == "json" and len(load_traces(single)) == 1
    assert parse_hf_name("hf://open-r1/OpenR1-Math-220k/default:train") == ("open-r1/OpenR1-Math-220k", "default",
                                                                              "train")
    assert parse_hf_name("hf://org/name") == ("org/name", None, "train")


def test_inspect_reports_format_fields_counts(tmp_path, capsys):
    records = sharegpt_records() + [{"conversations": [{"from": "user", "value": "hi"},
                                                       {"from": "gpt", "value": "<think>  </think>"}]}]
    source = write_container(tmp_path, "parquet", records)
    summary = inspect_source(source)
    assert summary["container"] == "parquet" and summary["shapes"] == {"sharegpt": 4}
    assert summary["records"] == 4 and summary["traces"] == 3 and summary["skipped"] == {"empty": 1}
    assert summary["fields"]["conversations"] == 4
    assert main(["inspect", source]) == 0
    out = capsys.readouterr().out
    assert "container:  parquet" in out and "sharegpt (4)" in out and "3 traces" not in out and "traces:     3" in out
    assert main(["inspect", source, "--json", "--limit", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 2


def test_cli_graph_reads_parquet_with_flags(tmp_path):
    records = [{"thoughts": THINK[i], "content": FINAL[i], "who": MODELS[i]} for i in range(3)]
    source = write_container(tmp_path, "parquet", records)
    out = tmp_path / "g.json"
    assert main(["graph", source, "--labeler", "lexical", "--think-field", "thoughts", "--model-field", "who",
                 "--model", "m1", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["n_traces"] == 2


BAD = [
    ("jsonl", [{"foo": 1}], r"bad\.jsonl:1: a trace needs a 'response'.*fields foo; accepted shapes: "),
    ("jsonl", [{"messages": [{"role": "user", "content": "q"}]}], r"bad\.jsonl:1: malformed messages record: "
     r"'messages' has no assistant turn"),
    ("jsonl", [plain_records()[0], {"messages": [{"role": "user"}, "x"]}], r"bad\.jsonl:2: malformed messages "
     r"record: 'messages'\[1\] must be an object"),
    ("jsonl", [{"conversations": [{"from": "gpt", "value": 7}]}], r"bad\.jsonl:1: malformed sharegpt record: "
     r"assistant 'value' must be text"),
    ("jsonl", [{"choices": []}], r"bad\.jsonl:1: malformed completion record: 'choices' must be a non-empty"),
    ("jsonl", [{"choices": [{"text": "legacy"}]}], r"bad\.jsonl:1: malformed completion record: 'choices'\[0\] has "
     r"no 'message'"),
    ("jsonl", [{"reasoning_content": {"a": 1}, "content": "x"}], r"bad\.jsonl:1: a trace needs"),
    ("json", [plain_records()[0], 5], r"bad\.json:2: expected a JSON object, got int"),
    ("parquet", [plain_records()[0], {"foo": "x"}], r"bad\.parquet:2: a trace needs a 'response'"),
]


@pytest.mark.parametrize("container, records, message", BAD)
def test_malformed_records_are_one_line(tmp_path, container, records, message):
    if container == "jsonl":
        path = write_jsonl(tmp_path / "bad.jsonl", records)
    elif container == "json":
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(records))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "bad.parquet"
        pq.write_table(pa.Table.from_pylist(records), path)
    with pytest.raises(InputError, match=message) as info:
        load_traces(path)
    assert "\n" not in str(info.value)


def test_malformed_containers_are_one_line(tmp_path, monkeypatch):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00garbage" * 10)
    cases = [(broken, r"broken\.parquet: not a readable Parquet file")]
    truncated_json = tmp_path / "cut.json"
    truncated_json.write_text('[{"response": "a"}, {"resp')
    cases.append((truncated_json, r"cut\.json(:\d+)?: not valid JSON"))
    (tmp_path / "folder").mkdir()
    cases.append((tmp_path / "folder", r"folder: a folder must be a datasets.save_to_disk folder"))
    cases.append((write_container(tmp_path, "hf-disk-split", plain_records()).replace(":test", ":dev"),
                  r"dd:dev: choose a split with FOLDER:SPLIT; this folder has train, test"))
    for source, message in cases:
        with pytest.raises(InputError, match=message) as info:
            load_traces(source)
        assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"unknown --format 'yaml'; containers: jsonl"):
        load_traces(broken, read_options=ReadOptions(format="yaml"))


def test_hf_name_offline_says_what_is_missing(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, "-m", "molesyn_lib.cli", "inspect", "hf://nobody/no-such-set:test"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "dataset 'nobody/no-such-set' split 'test' is not in the local cache" in lines[0]
    assert "HF_HUB_OFFLINE=1" in lines[0]
