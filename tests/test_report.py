"""``molesyn report``: the page is written, self-contained (figures embedded, nothing loaded from another host), and
bad input is one line; the report's computations (:mod:`molesyn_lib.corpus_report`) on small corpora."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from molesyn_lib.corpus_report import (
    Reference,
    available_references,
    label_with_cache,
    least_sure_steps,
    load_reference,
    marginal_intervals,
    reference_comparison,
    step_statistics,
    typical_trace,
)
from molesyn_lib.labelers import get_labeler
from molesyn_lib.traces import Corpus, load_traces
from molesyn_lib.transfer import TransferGraph

THINK = [
    "We need x such that 2x = 6, which is a linear equation.\n\nSo x = 3, because dividing both sides by 2 gives "
    "it.\n\nWait, let me check that again: 2 * 3 = 6. Correct.\n\nAlternatively, maybe guess and check small values.",
    "Let me try small cases first, for n = 1 the sum is 1.\n\nAlternatively, maybe use induction on n to prove "
    "it.\n\nSo the formula holds for all n, therefore the answer is n^2.\n\nHmm, let me verify with n = 3: 1+3+5 = 9.",
    "The area of a circle is pi r^2, here r = 2 so the area is 4 pi.\n\nHmm, but the question asks for the diameter "
    "instead, which is 4.\n\nTherefore the diameter is 4, twice the radius.",
]


@pytest.fixture
def corpus_file(tmp_path):
    """A tiny corpus as chat messages (one format the report must read)."""
    path = tmp_path / "chat.jsonl"
    with open(path, "w") as handle:
        handle.writelines(json.dumps({"id": f"c{i}", "model": "tiny", "messages": [
                {"role": "user", "content": "Solve it."},
                {"role": "assistant", "content": f"<think>{think}</think>The answer."}]}) + "\n" for i, think in enumerate(THINK * 2))
    return path


def test_shipped_references_have_provenance_and_sequences():
    assert {"r1", "qwq", "oss"} <= set(available_references())
    for key in ("r1", "qwq", "oss"):
        ref = load_reference(key)
        assert ref.graph.labeler and ref.provenance["generator"] == ref.graph.name
        assert ref.provenance["files"] and all(len(f["sha256"]) == 64 for f in ref.provenance["files"])
        assert ref.sequences and sum(map(len, ref.sequences)) == ref.graph.n_steps
        assert (TransferGraph.from_sequences(ref.sequences).counts == ref.graph.counts).all()


def test_report_computations(corpus_file, tmp_cache):
    corpus = load_traces(corpus_file)
    labeler = get_labeler("lexical")
    first = label_with_cache(corpus, labeler)
    again = label_with_cache(corpus, labeler)
    assert not first.cached and again.cached and again.labels == first.labels == labeler.label(corpus)
    intervals = marginal_intervals(first.labels, repeats=50)
    assert list(intervals.index) == ["N", "D", "R", "E"]
    assert np.isclose(intervals["share"].sum(), 1.0)
    assert (intervals["low"] <= intervals["share"] + 1e-12).all()
    assert (intervals["share"] <= intervals["high"] + 1e-12).all()
    ref = Reference("self", TransferGraph.from_sequences(first.labels, name="self", labeler="lexical"), first.labels)
    table = reference_comparison(first.labels, [ref], repeats=20)
    assert table.loc["self", "r"] == pytest.approx(1.0)
    assert 0 < table.loc["self", "p (order null)"] <= 1
    assert typical_trace(corpus) in range(len(corpus)) and typical_trace(corpus, "c2") == 2
    stats = step_statistics(Corpus(corpus))
    assert stats.loc["all", "traces"] == 6 and stats.loc["all", "truncated"] == 0
    assert least_sure_steps(corpus, first).empty  # the lexical labeller gives no probabilities


def _outside_resources(html: str) -> list[str]:
    patterns = [r"<script\b[^>]*\bsrc\s*=", r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//",
                r"\bsrc\s*=\s*[\"']?(?:https?:)?//", r"import\(\s*[\"']?https?://", r"url\(\s*[\"']?https?://",
                r"<a\b[^>]*\bhref\s*=\s*[\"']?https?://"]
    return [m.group(0) for p in patterns for m in re.finditer(p, html, re.IGNORECASE)]


@pytest.mark.slow
def test_report_writes_self_contained_page(corpus_file, tmp_path, tmp_cache):
    out = tmp_path / "out" / "report.html"
    result = subprocess.run([sys.executable, "-m", "molesyn_lib.cli", "report", str(corpus_file), "--labeler",
                             "lexical", "--against", "r1,oss", "--null-repeats", "20", "--bootstrap-repeats", "20",
                             "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert _outside_resources(html) == []
    assert html.count("data:image/png;base64,") >= 4
    for heading in ("Behaviour distribution", "transfer graph beside the references", "molecule of a typical trace",
                    "Steps and truncation", "Labeller confidence"):
        assert heading in html
    assert "DeepSeek-R1" in html and "gpt-oss-120b" in html and "messages" in html
    assert "Traceback" not in html and "Error" not in re.sub(r"<style.*?</style>", "", html, flags=re.DOTALL)
    notebook = json.loads((tmp_path / "out" / "report.ipynb").read_text())
    assert not [o for c in notebook["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.parametrize("args, message", [
    (["--against", "nope"], "unknown reference graph 'nope'; expected one of"),
    (["--labeler", "nope"], "unknown labeller 'nope'"),
])
def test_report_bad_options_are_one_line(corpus_file, tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "molesyn_lib.cli", "report", str(corpus_file), *args, "--out",
                             str(tmp_path / "r.html")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.html").exists()


def test_report_unknown_shape_is_one_line(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"foo": "bar"}) + "\n")
    result = subprocess.run([sys.executable, "-m", "molesyn_lib.cli", "report", str(path), "--labeler", "lexical",
                             "--out", str(tmp_path / "r.html")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "odd.jsonl:1: a trace needs a 'response'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.browser
@pytest.mark.slow
def test_report_opens_in_headless_browser(corpus_file, tmp_path, tmp_cache):
    """The page loads in headless Chromium without broken images, error outputs or requests to other hosts."""
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        if os.environ.get("MOLESYN_REQUIRE_BROWSER") == "1":
            pytest.fail("Debian chromium/chromium-driver are not installed")
        pytest.skip("Debian chromium/chromium-driver are not installed")
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = tmp_path / "report.html"
    from molesyn_lib.cli import main

    assert main(["report", str(corpus_file), "--labeler", "lexical", "--null-repeats", "10", "--bootstrap-repeats",
                 "10", "--quiet", "--out", str(out)]) == 0
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(out.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        broken = driver.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        assert broken == []
        assert driver.execute_script("return document.images.length") >= 4
        requests = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'))")
        assert requests == []
        errors = driver.execute_script("return document.querySelectorAll('.jp-RenderedText[data-mime-type="
                                       "\"application/vnd.jupyter.stderr\"], .output_error').length")
        assert errors == 0
    finally:
        driver.quit()


@pytest.mark.slow
def test_report_with_no_usable_traces_is_one_line(tmp_path, tmp_cache):
    path = tmp_path / "empty.jsonl"
    path.write_text(json.dumps({"response": ""}) + "\n")
    result = subprocess.run([sys.executable, "-m", "molesyn_lib.cli", "report", str(path), "--labeler", "lexical",
                             "--quiet", "--out", str(tmp_path / "r.html")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "no usable traces" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.html").exists()
