"""``molesyn report TRACES --out report.html``: the molecular report of a corpus, as one self-contained HTML page.

The report is the notebook template ``molesyn_lib/templates/report.ipynb`` executed with papermill (parameters: the
trace sources, labeller, references, format overrides...) and rendered with nbconvert. Figures are embedded as
``data:`` images and the page loads nothing from outside (the scripts nbconvert's template would fetch from a CDN
are removed), so it opens offline and can be mailed around. The executed notebook is kept beside the page
(``report.ipynb``) for users who want to rerun or extend a section. The sections and their computations are in
:mod:`molesyn_lib.corpus_report`.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..corpus_report import available_references, load_reference
from ..errors import InputError, MolesynError
from ..formats import ReadOptions, TraceReader, add_read_options
from ..labelers import available_labelers
from ..labelers.base import DEFAULT_LABELER

TEMPLATE = "report.ipynb"
#: Tags that would make the browser fetch something from another host (removed from the rendered page).
_OUTSIDE_SCRIPT_RE = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>", re.IGNORECASE)
_OUTSIDE_LINK_RE = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)
_MATHJAX_CONFIG_RE = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL)
#: Inline scripts that import modules from another host (nbconvert's lazy mermaid.js loader).
_OUTSIDE_IMPORT_RE = re.compile(r"<script\b[^>]*>(?:(?!</script>).)*?import\(\s*[\"']?https?://(?:(?!</script>).)*"
                                r"</script>", re.DOTALL | re.IGNORECASE)


@dataclass
class ReportConfig:
    """The parameters of one report (the template's parameter cell has the same names).

    Attributes:
        traces: trace sources (files, ``datasets`` folders, ``hf://org/name:split``), absolute paths.
        labeler: behaviour labeller.
        against: reference graphs to compare with (see :func:`molesyn_lib.corpus_report.available_references`).
        model: keep only traces of this model.
        read_format / think_field / question_field / model_field: format overrides (:class:`ReadOptions`).
        drop_truncated: skip traces whose thinking block never closes.
        limit: at most this many traces per source.
        trace_id: the trace whose molecule is drawn (default: one of median length).
        null_repeats / bootstrap_repeats: draws of the order-shuffled null and of the trace bootstrap.
        folding_traces: traces (the first ones) whose steps are embedded for the folding statistics; 0 skips them.
        folding_null_repeats: draws of the within-trace label-permutation null of the folding statistics.
        seed: random seed.
        use_cache: reuse cached labels of an identical earlier run.
    """

    traces: list[str]
    labeler: str = DEFAULT_LABELER
    against: list[str] = field(default_factory=lambda: ["r1", "qwq", "oss"])
    model: str | None = None
    read_format: str | None = None
    think_field: str | None = None
    question_field: str | None = None
    model_field: str | None = None
    drop_truncated: bool = False
    limit: int | None = None
    trace_id: str | None = None
    null_repeats: int = 200
    bootstrap_repeats: int = 200
    folding_traces: int = 20
    folding_null_repeats: int = 20
    seed: int = 0
    use_cache: bool = True

    def read_options(self) -> ReadOptions:
        return ReadOptions(format=self.read_format, think_field=self.think_field,
                           question_field=self.question_field, model_field=self.model_field)

    def check(self) -> None:
        """Fail early, as one line, on what would otherwise fail inside the notebook: unknown labeller or
        reference, unreadable source or first record."""
        if self.labeler not in available_labelers():
            raise InputError(f"unknown labeller {self.labeler!r}; available: {', '.join(available_labelers())}")
        for key in self.against:
            load_reference(key)
        for source in self.traces:
            next(iter(TraceReader(source, self.read_options())), None)


def template_path() -> Path:
    """The report notebook template shipped with the package."""
    return Path(str(resources.files("molesyn_lib") / "templates" / TEMPLATE))


def self_contained(html: str) -> str:
    """Remove what would load from another host (CDN scripts such as require.js and MathJax, outside style sheets)."""
    html = _MATHJAX_CONFIG_RE.sub("", html)
    html = _OUTSIDE_IMPORT_RE.sub("", html)
    html = _OUTSIDE_SCRIPT_RE.sub("", html)
    return _OUTSIDE_LINK_RE.sub("", html)


def render_html(notebook_path: Path, show_code: bool = False) -> str:
    """The executed notebook as one HTML page (figures embedded, no outside resources)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input=not show_code, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    node = nbformat.read(notebook_path, as_version=4)
    node.metadata.pop("widgets", None)  # widget state makes nbconvert load the widget manager from a CDN
    for cell in node.cells:  # progress-bar widgets: keep their text fallback, drop the widget view
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data and "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
    body, _ = exporter.from_notebook_node(node)
    return self_contained(body)


def build_report(config: ReportConfig, out: Path, notebook: Path | None = None, show_code: bool = False,
                 progress: bool = True) -> tuple[Path, Path]:
    """Execute the template for ``config`` and write the HTML page to ``out``; return ``(html, notebook)``."""
    try:
        import nbconvert  # noqa: F401
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError as exc:
        raise MolesynError(f"molesyn report needs papermill and nbconvert ({exc}); pip install papermill nbconvert "
                           "ipykernel") from None

    out = Path(out)
    notebook = Path(notebook) if notebook is not None else out.with_suffix(".ipynb")
    out.parent.mkdir(parents=True, exist_ok=True)
    notebook.parent.mkdir(parents=True, exist_ok=True)
    parameters: dict[str, Any] = asdict(config)
    try:
        papermill.execute_notebook(str(template_path()), str(notebook), parameters=parameters, kernel_name="python3",
                                   progress_bar=progress, cwd=str(Path.cwd()), log_output=False,
                                   extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as exc:
        raise MolesynError(f"the report notebook failed in cell {exc.exec_count}: {exc.ename}: "
                           f"{str(exc.evalue).splitlines()[0] if str(exc.evalue) else ''} (executed notebook: "
                           f"{notebook})") from None
    html = render_html(notebook, show_code=show_code)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out, notebook


def _source(value: str) -> str:
    """A trace source as the notebook should see it: ``hf://`` names as given, paths made absolute."""
    if value.startswith("hf:/"):
        return value
    return str(Path(value).expanduser().resolve()) if Path(value).exists() else value


def run_report(args: argparse.Namespace) -> int:
    against = [a.strip() for a in (args.against or "").split(",") if a.strip()]
    config = ReportConfig(
        traces=[_source(t) for t in args.traces], labeler=args.labeler, against=against, model=args.model,
        read_format=args.format, think_field=args.think_field, question_field=args.question_field,
        model_field=args.model_field, drop_truncated=args.drop_truncated, limit=args.limit, trace_id=args.trace_id,
        null_repeats=args.null_repeats, bootstrap_repeats=args.bootstrap_repeats,
        folding_traces=args.folding_traces, folding_null_repeats=args.folding_null_repeats, seed=args.seed,
        use_cache=not args.no_cache)
    config.check()
    html, notebook = build_report(config, Path(args.out), Path(args.notebook) if args.notebook else None,
                                  show_code=args.show_code, progress=not args.quiet)
    print(f"wrote {html} (executed notebook: {notebook})", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="one self-contained HTML page of what molesyn says about a corpus",
                                   description="Label a corpus and write its molecular report: behaviour "
                                               "distribution with intervals, transfer graph beside reference "
                                               "teachers with the order-shuffled null, the molecule of a typical "
                                               "trace, step-length, truncation and labeller-confidence statistics.")
    parser.add_argument("traces", nargs="+", help="trace sources, in any format `molesyn inspect` reads")
    parser.add_argument("--out", required=True, help="the HTML page to write")
    parser.add_argument("--notebook", help="where to keep the executed notebook (default: beside --out, .ipynb)")
    parser.add_argument("--labeler", default=DEFAULT_LABELER,
                        help=f"behaviour labeller (default {DEFAULT_LABELER}; 'lexical' is fast and rougher)")
    parser.add_argument("--against", default=",".join(available_references()),
                        help="reference graphs, comma-separated (default: all shipped: "
                             f"{', '.join(available_references())}; empty for none)")
    parser.add_argument("--model", help="keep only traces whose model equals this name")
    parser.add_argument("--drop-truncated", action="store_true", help="skip traces whose thinking never closes")
    parser.add_argument("--limit", type=int, help="at most this many traces per source")
    parser.add_argument("--trace-id", help="draw the molecule of this trace (default: one of median length)")
    parser.add_argument("--null-repeats", type=int, default=200, help="order-shuffled null draws (default 200)")
    parser.add_argument("--bootstrap-repeats", type=int, default=200, help="trace-bootstrap draws (default 200)")
    parser.add_argument("--folding-traces", type=int, default=20,
                        help="embed the steps of this many traces for the folding statistics (0: skip; default 20)")
    parser.add_argument("--folding-null-repeats", type=int, default=20,
                        help="label-permutation null draws of the folding statistics (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cache", action="store_true", help="label again even if cached labels exist")
    parser.add_argument("--show-code", action="store_true", help="include the notebook's code in the page")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_read_options(parser)
    parser.set_defaults(func=run_report)
