"""The data directory's inventory and downloader: ``molesyn data list`` and ``molesyn data fetch``.

The manifest (``molesyn_lib/data_manifest.json``, made by :func:`generate_manifest` from the project's reference
copy of the data) lists every data file: its dataset folder, name, size and sha256, the upstream repository and
pinned commit, and how the file is made from upstream:

* ``copy``: a byte-for-byte copy of one upstream file, downloaded from ``raw.githubusercontent.com`` at the pinned
  commit;
* ``repack``: several upstream files re-packed into one file by a named recipe (:data:`RECIPES`), for example the
  ReasoningFlow per-document JSON files into one JSONL. The upstream files are downloaded (in parallel), the recipe
  writes the output, and the result must match the recorded checksum like a copied file.

Every download goes to ``<file>.partial`` and is renamed into place only after its size and sha256 match; on a
mismatch the ``.partial`` file is kept for inspection. Network calls have timeouts; once a host is unreachable the
remaining files from it are not attempted, and each missing file is reported on one line with where to get it and
where to put it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .errors import InputError, MolesynError

RAW_GITHUB = "https://raw.githubusercontent.com"
MANIFEST_SCHEMA_VERSION = 1
#: (connect, read) timeouts of every HTTP request, seconds.
DEFAULT_TIMEOUT = (10.0, 60.0)
USER_AGENT = "molesyn-data-fetch/1"


# --------------------------------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class RepackItem:
    """One output record's upstream inputs.

    Attributes:
        files: role -> upstream path (relative to the repository root), e.g. ``{"doc": "data/x.json"}``.
        const: fields the recipe copies into the record as they are (e.g. the generator's name).
    """

    files: dict[str, str]
    const: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataFile:
    """One file of the data directory, as listed in the manifest.

    Attributes:
        dataset: the dataset folder (``reasoningflow``).
        name: the path inside the dataset folder (``traces/aime2024_5models.jsonl``).
        size: bytes of the reference copy.
        sha256: hex digest of the reference copy.
        method: ``copy`` or ``repack``.
        repository: upstream GitHub ``owner/name``.
        commit: the pinned upstream commit.
        license: the upstream licence as recorded in SOURCE.md.
        upstream_path: (copy) the file's path in the repository.
        recipe: (repack) the name of the re-packing function in :data:`RECIPES`.
        items: (repack) the upstream inputs of each output record, in output order.
    """

    dataset: str
    name: str
    size: int
    sha256: str
    method: str
    repository: str
    commit: str
    license: str = ""
    upstream_path: str | None = None
    recipe: str | None = None
    items: tuple[RepackItem, ...] = ()

    @property
    def relpath(self) -> str:
        return f"{self.dataset}/{self.name}"

    def raw_base(self, base_url: str = RAW_GITHUB) -> str:
        return f"{base_url.rstrip('/')}/{self.repository}/{self.commit}/"

    def urls(self, base_url: str = RAW_GITHUB) -> list[str]:
        """Download URLs: the file itself (copy) or every upstream input (repack)."""
        if self.method == "copy":
            return [self.raw_base(base_url) + str(self.upstream_path)]
        return [self.raw_base(base_url) + path for item in self.items for path in item.files.values()]

    def where_to_get(self, base_url: str = RAW_GITHUB) -> str:
        if self.method == "copy":
            return self.urls(base_url)[0]
        paths = [path for item in self.items for path in item.files.values()]
        folders = sorted({path.rsplit("/", 1)[0] + "/" for path in paths})
        common = os.path.commonprefix(folders)
        common = common[: common.rfind("/") + 1]
        spread = f" ({len(folders)} folders)" if len(folders) > 1 else ""
        count = f"{len(paths)} upstream file{'s' if len(paths) != 1 else ''}"
        return f"{count} re-packed by recipe {self.recipe} from {self.raw_base(base_url)}{common}{spread}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"dataset": self.dataset, "name": self.name, "size": self.size, "sha256": self.sha256,
                                "method": self.method, "repository": self.repository, "commit": self.commit,
                                "license": self.license}
        if self.method == "copy":
            data["upstream_path"] = self.upstream_path
            data["urls"] = self.urls()
        else:
            data["recipe"] = self.recipe
            data["raw_base"] = self.raw_base()
            data["items"] = [item.files["doc"] if set(item.files) == {"doc"} and not item.const
                             else {"files": item.files, "const": item.const} for item in self.items]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataFile:
        items = []
        for item in data.get("items", []):
            if isinstance(item, str):
                items.append(RepackItem(files={"doc": item}))
            else:
                items.append(RepackItem(files=dict(item["files"]), const=dict(item.get("const", {}))))
        return cls(dataset=data["dataset"], name=data["name"], size=int(data["size"]), sha256=data["sha256"],
                   method=data["method"], repository=data["repository"], commit=data["commit"],
                   license=data.get("license", ""), upstream_path=data.get("upstream_path"),
                   recipe=data.get("recipe"), items=tuple(items))


def load_manifest(path: str | Path | None = None) -> list[DataFile]:
    """The files of a manifest (default: the one shipped in the package)."""
    if path is None:
        text = resources.files("molesyn_lib").joinpath("data_manifest.json").read_text(encoding="utf-8")
        where: str | Path = "molesyn_lib/data_manifest.json"
    else:
        where = Path(path)
        text = where.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", where, exc.lineno) from exc
    try:
        files = [DataFile.from_dict(item) for item in data["files"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed manifest entry: {exc!r}", where) from exc
    unknown = sorted({f.recipe for f in files if f.method == "repack" and f.recipe not in RECIPES})
    if unknown:
        raise InputError(f"unknown re-packing recipe(s): {', '.join(map(str, unknown))}", where)
    return files


def select_files(files: Sequence[DataFile], only: Iterable[str] | None) -> list[DataFile]:
    """Files of the named datasets or ``dataset/name`` paths (``None``: all)."""
    if not only:
        return list(files)
    wanted = [str(name).strip("/") for name in only]
    chosen = [f for f in files if f.dataset in wanted or f.relpath in wanted]
    unknown = [w for w in wanted if not any(f.dataset == w or f.relpath == w for f in files)]
    if unknown:
        datasets = sorted({f.dataset for f in files})
        raise MolesynError(f"unknown dataset or file {', '.join(unknown)} (datasets: {', '.join(datasets)})")
    return chosen


# ------------------------------------------------------------------------------------------------ recipes
def _jsonl(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _loads(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"upstream file is not valid JSON: {exc}", where) from exc


def repack_reasoningflow_traces(items: Sequence[tuple[RepackItem, dict[str, bytes]]]) -> bytes:
    """ReasoningFlow per-document files ``data/v1_raw_data/<doc_id>.json`` -> the traces JSONL.

    Each record is ``{doc_id, generator, domain, question_id, question, correct_answer, response}`` taken from the
    document's ``doc_id``, ``metadata`` and ``raw_text``.
    """
    records = []
    for item, blobs in items:
        doc = _loads(blobs["doc"], item.files["doc"])
        meta, text = doc.get("metadata", {}), doc.get("raw_text", {})
        records.append({"doc_id": doc["doc_id"], "generator": meta.get("generator"), "domain": meta.get("domain"),
                        "question_id": meta.get("question_id"), "question": text.get("question"),
                        "correct_answer": meta.get("correct_answer"), "response": text.get("response")})
    return _jsonl(records)


def repack_reasoningflow_responses(items: Sequence[tuple[RepackItem, dict[str, bytes]]]) -> bytes:
    """ReasoningFlow ``data_raw/v1/<generator>_<domain>_responses.jsonl`` files -> the traces JSONL.

    Every upstream line ``{question_id, question, correct_answer, response}`` becomes
    ``{doc_id: "<question_id>_<generator>", generator, domain, question_id, question, correct_answer, response}``;
    ``generator`` and ``domain`` come from the item's constants.
    """
    records = []
    for item, blobs in items:
        generator, domain = item.const["generator"], item.const["domain"]
        for number, line in enumerate(blobs["doc"].decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"upstream line is not valid JSON: {exc.msg}", item.files["doc"], number) from exc
            records.append({"doc_id": f"{row['question_id']}_{generator}", "generator": generator, "domain": domain,
                            "question_id": row["question_id"], "question": row.get("question"),
                            "correct_answer": row.get("correct_answer"), "response": row.get("response")})
    return _jsonl(records)


def repack_json_documents(items: Sequence[tuple[RepackItem, dict[str, bytes]]]) -> bytes:
    """One JSON document per upstream file -> one JSONL line each, content and key order unchanged
    (ReasoningFlow annotated graphs)."""
    return _jsonl(_loads(blobs["doc"], item.files["doc"]) for item, blobs in items)


def repack_thought_anchors(items: Sequence[tuple[RepackItem, dict[str, bytes]]]) -> bytes:
    """Thought Anchors ``<model>/<type>/<problem>/{problem,base_solution,chunks_labeled}.json`` -> one JSONL row
    ``{model, base_solution_type, problem_id, problem, base_solution, chunks}`` per problem folder."""
    records = []
    for item, blobs in items:
        records.append({**item.const,
                        "problem": _loads(blobs["problem"], item.files["problem"]),
                        "base_solution": _loads(blobs["base_solution"], item.files["base_solution"]),
                        "chunks": _loads(blobs["chunks"], item.files["chunks"])})
    return _jsonl(records)


STEERING_QUESTION = re.compile(r"Please answer the following question:\n\n(.*?)\n\nIt requires a few steps",
                               re.DOTALL)


def repack_steering_questions(items: Sequence[tuple[RepackItem, dict[str, bytes]]]) -> bytes:
    """The 100 task texts of steering-thinking-llms, cut out of an instruct model's ``response`` prompts, as
    ``[{"idx": i, "question": text}, ...]`` (JSON, one-space indent)."""
    (item, blobs), = items
    rows = _loads(blobs["doc"], item.files["doc"])
    questions = []
    for index, row in enumerate(rows):
        match = STEERING_QUESTION.search(row.get("response", ""))
        if not match:
            raise InputError(f"record {index} has no 'Please answer the following question' prompt",
                             item.files["doc"])
        questions.append({"idx": index, "question": match.group(1)})
    return json.dumps(questions, indent=1, ensure_ascii=False).encode("utf-8")


Recipe = Callable[[Sequence[tuple[RepackItem, dict[str, bytes]]]], bytes]
#: Re-packing functions by name: each turns the downloaded upstream inputs of every item into the output bytes.
RECIPES: dict[str, Recipe] = {
    "reasoningflow_traces": repack_reasoningflow_traces,
    "reasoningflow_responses": repack_reasoningflow_responses,
    "json_documents": repack_json_documents,
    "thought_anchors": repack_thought_anchors,
    "steering_questions": repack_steering_questions,
}


# ---------------------------------------------------------------------------------------------- inventory
def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class FileState:
    """A manifest file's state in a data directory.

    Attributes:
        file: the manifest entry.
        path: where it belongs.
        status: ``present`` (size matches; sha256 too when verified), ``missing``, ``mismatch`` (size or sha256
            differ), ``partial`` (only a ``.partial`` download is there).
        size: bytes on disk (``None`` when missing).
        verified: whether the sha256 was checked.
    """

    file: DataFile
    path: Path
    status: str
    size: int | None
    verified: bool = False


def inspect_data_dir(dest: str | Path, files: Sequence[DataFile], verify: bool = False) -> list[FileState]:
    """Which manifest files are present in ``dest`` (sizes compared; sha256 too with ``verify``)."""
    root = Path(dest)
    states = []
    for item in files:
        path = root / item.dataset / item.name
        if path.is_file():
            size = path.stat().st_size
            ok = size == item.size and (not verify or sha256_file(path) == item.sha256)
            states.append(FileState(item, path, "present" if ok else "mismatch", size, verified=verify))
        elif path.with_name(path.name + ".partial").is_file():
            states.append(FileState(item, path, "partial", path.with_name(path.name + ".partial").stat().st_size))
        else:
            states.append(FileState(item, path, "missing", None))
    return states


def extra_files(dest: str | Path, files: Sequence[DataFile]) -> list[Path]:
    """Files in the manifest's dataset folders that the manifest does not list (SOURCE.md excluded)."""
    root = Path(dest)
    known = {root / f.dataset / f.name for f in files}
    extras = []
    for dataset in sorted({f.dataset for f in files}):
        folder = root / dataset
        if folder.is_dir():
            extras += [p for p in sorted(folder.rglob("*")) if p.is_file() and p not in known
                       and p.name != "SOURCE.md" and not p.name.endswith(".partial")]
    return extras


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


# -------------------------------------------------------------------------------------------------- fetching
@dataclass
class FetchResult:
    """What :func:`fetch` did for one file.

    Attributes:
        file: the manifest entry.
        path: the file's place in the data directory.
        status: ``present`` (already there and verified), ``fetched``, ``mismatch`` (downloaded or re-packed
            bytes differ from the manifest; kept as ``.partial``), ``unreachable`` (no network or the host is
            down), ``failed`` (HTTP error, bad upstream content, or the disk refused the write).
        message: one line for the user.
    """

    file: DataFile
    path: Path
    status: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("present", "fetched")


class Unreachable(Exception):
    """The host could not be reached (DNS, refused connection, connect timeout)."""


class HttpFailure(Exception):
    """The server answered with an error status or the transfer broke off."""


def _session() -> Any:
    import requests

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def _get(session: Any, url: str, timeout: tuple[float, float]) -> bytes:
    import requests

    try:
        response = session.get(url, timeout=timeout)
    except (requests.ConnectionError, requests.ConnectTimeout) as exc:
        if isinstance(exc, requests.ReadTimeout):
            raise HttpFailure(f"{url}: read timed out after {timeout[1]:g} s") from exc
        raise Unreachable(f"{urlparse(url).netloc}: {type(exc).__name__}") from exc
    except requests.RequestException as exc:
        raise HttpFailure(f"{url}: {exc}") from exc
    if response.status_code != 200:
        raise HttpFailure(f"{url}: HTTP {response.status_code}")
    return response.content


def _write_partial_and_verify(data: bytes, item: DataFile, target: Path) -> FetchResult:
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != item.size or digest != item.sha256:
        return FetchResult(item, target, "mismatch",
                           f"checksum mismatch: expected {item.size} bytes sha256 {item.sha256[:12]}..., got "
                           f"{len(data)} bytes sha256 {digest[:12]}...; kept as {partial}")
    os.replace(partial, target)
    return FetchResult(item, target, "fetched", f"fetched ({human_size(len(data))}, sha256 verified)")


def fetch(dest: str | Path, files: Sequence[DataFile], base_url: str = RAW_GITHUB,
          timeout: tuple[float, float] = DEFAULT_TIMEOUT, workers: int = 8, progress: bool = True) -> list[FetchResult]:
    """Download (or re-pack) every manifest file missing from ``dest``, verifying size and sha256.

    Files already present with the right checksum are left alone. A file whose bytes do not match is kept as
    ``<name>.partial`` and reported; an existing file is only replaced by a verified download.

    Args:
        dest: the data directory to fill.
        files: the manifest entries to fetch.
        base_url: where ``<owner>/<repo>/<commit>/<path>`` is served (default ``raw.githubusercontent.com``; a
            mirror or a test server).
        timeout: (connect, read) seconds per request.
        workers: parallel downloads of a re-packed file's inputs.
        progress: show tqdm progress bars.
    """
    from .progress import tqdm

    root = Path(dest)
    session = _session()
    unreachable: dict[str, str] = {}
    results: list[FetchResult] = []
    for item in tqdm(files, desc="data files", unit="file", disable=not progress):
        target = root / item.dataset / item.name
        if target.is_file() and target.stat().st_size == item.size and sha256_file(target) == item.sha256:
            results.append(FetchResult(item, target, "present", "already present (sha256 verified)"))
            continue
        host = urlparse(base_url).netloc
        if host in unreachable:
            results.append(FetchResult(item, target, "unreachable", unreachable[host]))
            continue
        try:
            if item.method == "copy":
                data = _get(session, item.urls(base_url)[0], timeout)
            else:
                data = _repack(session, item, base_url, timeout, workers, progress)
            results.append(_write_partial_and_verify(data, item, target))
        except Unreachable as exc:
            unreachable[host] = f"host unreachable ({exc})"
            results.append(FetchResult(item, target, "unreachable", unreachable[host]))
        except (HttpFailure, InputError) as exc:
            results.append(FetchResult(item, target, "failed", str(exc)))
        except OSError as exc:
            results.append(FetchResult(item, target, "failed", f"cannot write {target}: {exc.strerror or exc}"))
    return results


def _repack(session: Any, item: DataFile, base_url: str, timeout: tuple[float, float], workers: int,
            progress: bool) -> bytes:
    from .progress import tqdm

    recipe = RECIPES[str(item.recipe)]
    jobs = [(index, role, item.raw_base(base_url) + path)
            for index, part in enumerate(item.items) for role, path in part.files.items()]
    blobs: list[dict[str, bytes]] = [{} for _ in item.items]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [(index, role, pool.submit(_get, session, url, timeout)) for index, role, url in jobs]
        for index, role, future in tqdm(futures, desc=item.relpath, unit="file", leave=False, disable=not progress):
            blobs[index][role] = future.result()
    return recipe(list(zip(item.items, blobs)))


def offline_instructions(results: Sequence[FetchResult], dest: str | Path, base_url: str = RAW_GITHUB) -> list[str]:
    """One line per file that is not in place: what it is, where to get it, where to put it."""
    lines = []
    for result in results:
        if result.ok:
            continue
        lines.append(f"missing {result.file.relpath}: get {result.file.where_to_get(base_url)} "
                     f"(sha256 {result.file.sha256[:12]}..., {human_size(result.file.size)}) and put it at "
                     f"{Path(dest) / result.file.dataset / result.file.name}")
    return lines


# -------------------------------------------------------------------------------------- manifest generation
@dataclass(frozen=True)
class Upstream:
    """A pinned upstream repository."""

    repository: str
    commit: str
    license: str


UPSTREAMS = {
    "gsm8k": Upstream("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c", "MIT"),
    "harness": Upstream("Zhuofeng-Li/math-evaluation-harness", "1b9885d817962a8494728376625ce6605772edbd", "MIT"),
    "harness_aime25": Upstream("Zhuofeng-Li/math-evaluation-harness", "a0448031ca940fa85ebc55a461a047874ea5ac5f",
                               "MIT"),
    "qwen_math": Upstream("QwenLM/Qwen2.5-Math", "a45202bd16f1ec06f433442dc1152d0074773465", "MIT"),
    "deltabench": Upstream("OpenStellarTeam/DeltaBench", "a560619d54bdad46821ac5ec8ded77ded3e14170",
                           "none stated (research use, cite)"),
    "processbench": Upstream("QwenLM/ProcessBench", "ee5ae00f2d32205df00655cf9ebbc3caddce0646",
                             "apache-2.0 per the HF dataset card; no LICENSE file in git"),
    "steering": Upstream("cvenhoff/steering-thinking-llms", "93259bc3410c99293351df41141cd16b4110422a",
                         "none stated (research use, cite)"),
    "reasoningflow": Upstream("jinulee-v/reasoningflow", "c5a0696de830886c282d17ef4db0f5b857071788",
                              "none stated (research use, cite)"),
    "thought_anchors": Upstream("interp-reasoning/thought-anchors.com", "68acc04a666716c58273ae70837d4b80bf3e1c69",
                                "MIT"),
}

STEERING_MODELS = ("deepseek-r1-distill-llama-8b", "deepseek-r1-distill-llama-70b", "deepseek-r1-distill-qwen-1.5b",
                   "deepseek-r1-distill-qwen-14b", "deepseek-r1-distill-qwen-32b", "llama-3.1-8b-instruct",
                   "llama-3.3-70b-instruct", "qwen2.5-1.5b-instruct", "qwen2.5-14b-instruct", "qwen2.5-32b-instruct")

#: Byte-for-byte copies: (dataset, name, upstream key, upstream path), as recorded in each SOURCE.md.
COPIES: tuple[tuple[str, str, str, str], ...] = (
    ("benchmarks", "gsm8k_test.jsonl", "gsm8k", "grade_school_math/data/test.jsonl"),
    ("benchmarks", "math500_test.jsonl", "harness", "data/math500/test.jsonl"),
    ("benchmarks", "aime24_test.jsonl", "qwen_math", "evaluation/data/aime24/test.jsonl"),
    ("benchmarks", "aime25_test.jsonl", "harness_aime25", "data/aime25/test.jsonl"),
    ("benchmarks", "amc23_test.jsonl", "qwen_math", "evaluation/data/amc23/test.jsonl"),
    ("benchmarks", "olympiadbench_test.jsonl", "qwen_math", "evaluation/data/olympiadbench/test.jsonl"),
    ("benchmarks", "minerva_math_test.jsonl", "qwen_math", "evaluation/data/minerva_math/test.jsonl"),
    ("deltabench", "Deltabench_v1_examples.jsonl", "deltabench", "data/Deltabench_v1_examples.jsonl"),
    *(("processbench", f"{split}.json", "processbench", f"dataset/{split}.json")
      for split in ("gsm8k", "math", "olympiadbench", "omnimath")),
    *(("steering_thinking_behaviors", f"reasoning_comparison_{model}.json", "steering",
       f"compare-base-reasoning/results/vars/reasoning_comparison_{model}.json") for model in STEERING_MODELS),
    ("reasoningflow", "schema/edge_labels.yaml", "reasoningflow", "schema/edge_labels.yaml"),
    ("reasoningflow", "schema/node_labels.yaml", "reasoningflow", "schema/node_labels.yaml"),
)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _plan_repacks(data_root: Path) -> list[tuple[str, str, str, str, list[RepackItem]]]:
    """(dataset, name, upstream key, recipe, items) of every re-packed file, read off the reference copy."""
    plans: list[tuple[str, str, str, str, list[RepackItem]]] = []
    traces = data_root / "reasoningflow" / "traces"
    for name in ("aime2024_5models.jsonl", "gpqa_diamond_5models.jsonl"):
        docs = [RepackItem({"doc": f"data/v1_raw_data/{row['doc_id']}.json"}) for row in _read_jsonl(traces / name)]
        plans.append(("reasoningflow", f"traces/{name}", "reasoningflow", "reasoningflow_traces", docs))
    rows = _read_jsonl(traces / "bright_theoremqa_3models.jsonl")
    generators = list(dict.fromkeys(row["generator"] for row in rows))
    plans.append(("reasoningflow", "traces/bright_theoremqa_3models.jsonl", "reasoningflow",
                  "reasoningflow_responses",
                  [RepackItem({"doc": f"data_raw/v1/{g}_{rows[0]['domain']}_responses.jsonl"},
                              {"generator": g, "domain": rows[0]["domain"]}) for g in generators]))
    graphs = [("annotations_llm/aime2024_gemini_graphs.jsonl", "v1_llm_gemini-3.1-pro-preview")]
    graphs += [(f"annotations_human/{stem}.jsonl", stem) for stem in ("v0_human_A", "v0_human_B", "v0_human_D",
                                                                       "v1_human_D")]
    for name, folder in graphs:
        docs = [RepackItem({"doc": f"data/{folder}/{row['doc_id']}.json"})
                for row in _read_jsonl(data_root / "reasoningflow" / name)]
        plans.append(("reasoningflow", name, "reasoningflow", "json_documents", docs))
    items = []
    for row in _read_jsonl(data_root / "thought_anchors" / "math_chunks_labeled.jsonl"):
        folder = (f"src/app/data/{row['model'].split('/')[-1].lower()}/{row['base_solution_type']}/"
                  f"{row['problem_id']}/")
        items.append(RepackItem({"problem": folder + "problem.json", "base_solution": folder + "base_solution.json",
                                 "chunks": folder + "chunks_labeled.json"},
                                {"model": row["model"], "base_solution_type": row["base_solution_type"],
                                 "problem_id": row["problem_id"]}))
    plans.append(("thought_anchors", "math_chunks_labeled.jsonl", "thought_anchors", "thought_anchors", items))
    plans.append(("steering_thinking_behaviors", "questions.json", "steering", "steering_questions",
                  [RepackItem({"doc": "compare-base-reasoning/results/vars/"
                                      "reasoning_comparison_qwen2.5-32b-instruct.json"})]))
    return plans


def generate_manifest(data_root: str | Path) -> dict[str, Any]:
    """Build the manifest from a complete reference data directory (sizes and sha256 computed from it)."""
    root = Path(data_root)
    files: list[DataFile] = []

    def entry(dataset: str, name: str, key: str, **extra: Any) -> DataFile:
        path = root / dataset / name
        if not path.is_file():
            raise MolesynError(f"{path}: missing from the reference data directory")
        upstream = UPSTREAMS[key]
        return DataFile(dataset=dataset, name=name, size=path.stat().st_size, sha256=sha256_file(path),
                        repository=upstream.repository, commit=upstream.commit, license=upstream.license, **extra)

    for dataset, name, key, upstream_path in COPIES:
        files.append(entry(dataset, name, key, method="copy", upstream_path=upstream_path))
    for dataset, name, key, recipe, items in _plan_repacks(root):
        files.append(entry(dataset, name, key, method="repack", recipe=recipe, items=tuple(items)))
    files.sort(key=lambda f: (f.dataset, f.name))
    return {"schema_version": MANIFEST_SCHEMA_VERSION,
            "about": "Files of the molesyn data directory: size and sha256 of the reference copy, upstream "
                     "repository and pinned commit, and how each file is made (copy, or repack by a recipe in "
                     "molesyn_lib/datafetch.py). Regenerate with "
                     "`molesyn data manifest --from DATA_DIR --out FILE`.",
            "files": [f.to_dict() for f in files]}
