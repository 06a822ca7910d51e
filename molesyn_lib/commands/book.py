"""``molesyn book``: execute the chapters with papermill and build the HTML book (jupyter-book 1.x).

* ``molesyn book run --profile smoke|standard|full [--chapters 01 03] [--timeout S] [--resume]``
* ``molesyn book build [--lenient] [--published [PROFILE]]``: the HTML book from ``book/chapters``, or (with
  ``--published``) from the chapters published under ``published/<profile>/`` (default ``standard``), executing nothing
* ``molesyn book publish --profile standard [--chapters ...]``: store the chapters that ran ok with the profile,
  their results and provenance, under ``published/<profile>/`` (see :mod:`molesyn_lib.book.publish`)
* ``molesyn book check``: list error outputs in the executed chapters
* ``molesyn book [--profile full] [--chapters ...] [--lenient]`` (or ``molesyn book all ...``): run, then build

Exit status: 0 when every chapter ran and the book built, 1 when a chapter failed or timed out (the book is still
built from everything that ran), 2 for bad input or a failed build.
"""
from __future__ import annotations

import argparse
import sys

from .. import book
from ..book import publish


def _add_root(parser: argparse.ArgumentParser, top: bool = False) -> None:
    # Subcommands SUPPRESS the default so that `molesyn book --root X run` keeps X.
    parser.add_argument("--root", default=None if top else argparse.SUPPRESS,
                        help="project root holding _toc.yml, notebooks/, params/ and book/ (default: the working "
                             "directory or its nearest parent with _toc.yml, else the installed project)")


def _add_run_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    # The options exist on `molesyn book` itself (`molesyn book --profile full`, as `make book` calls it) and on
    # its subcommands; the subcommands SUPPRESS their defaults so that values given before the subcommand survive.
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--profile", choices=book.PROFILES, default=default("smoke"),
                        help="parameter profile from params/<profile>.yaml (default: smoke)")
    parser.add_argument("--chapters", nargs="+", metavar="NN", default=default(None),
                        help="chapter numbers or notebook stems to run (default: all)")
    parser.add_argument("--timeout", type=float, default=default(None), metavar="S",
                        help="wall-clock limit per chapter in seconds (default: "
                             + ", ".join(f"{p} {t:g}" for p, t in book.DEFAULT_TIMEOUT_S.items()) + ")")
    parser.add_argument("--kernel", default=default("python3"), help="Jupyter kernel (default: python3)")
    parser.add_argument("--resume", action="store_true", default=default(False),
                        help="skip chapters whose last run with this profile succeeded and whose notebook and "
                             "parameters are unchanged")
    parser.add_argument("--no-progress", action="store_true", default=default(False), help="no progress bar")


def _add_lenient(parser: argparse.ArgumentParser, top: bool = False) -> None:
    parser.add_argument("--lenient", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="do not treat warnings as errors")


def _report(records: list[book.ChapterRecord]) -> int:
    bad = [r for r in records if r.status in ("failed", "timeout")]
    counts = {status: sum(r.status == status for r in records) for status in book.STATUSES}
    print("chapters: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n))
    for record in bad:
        assert record.error is not None
        print(f"  {record.chapter} [{record.profile}] {record.status}: {record.error.describe()}", file=sys.stderr)
        print(f"    executed notebook: {record.executed or '-'}; log: {record.log}", file=sys.stderr)
    return 1 if bad else 0


def _run(args: argparse.Namespace) -> int:
    records = book.run_chapters(book.find_root(args.root), profile=args.profile, chapters=args.chapters,
                                timeout_s=args.timeout, kernel=args.kernel, resume=args.resume,
                                progress=not args.no_progress)
    return _report(records)


def _build(args: argparse.Namespace) -> int:
    root = book.find_root(args.root)
    if args.published:
        html = publish.build_published(root, profile=args.published, strict=not args.lenient)
        print(f"HTML book ({args.published}, published): {html / 'index.html'}")
        return 0
    html = book.build_book(root, strict=not args.lenient)
    print(f"HTML book: {html / 'index.html'}")
    failing = book.check_executed_notebooks(root)
    for stem, errors in failing.items():
        print(f"warning: {stem} contains error output at {errors[0].describe()}", file=sys.stderr)
    return 0


def _publish(args: argparse.Namespace) -> int:
    publish.publish(book.find_root(args.root), profile=args.profile, chapters=args.chapters)
    return 0


def _check(args: argparse.Namespace) -> int:
    failing = book.check_executed_notebooks(book.find_root(args.root))
    if not failing:
        print("no error outputs in book/chapters")
        return 0
    for stem, errors in failing.items():
        for error in errors:
            print(f"{stem}: {error.describe()}")
    return 1


def _all(args: argparse.Namespace) -> int:
    root = book.find_root(args.root)
    records = book.run_chapters(root, profile=args.profile, chapters=args.chapters, timeout_s=args.timeout,
                                kernel=args.kernel, resume=args.resume, progress=not args.no_progress)
    status = _report(records)
    html = book.build_book(root, strict=not args.lenient)
    print(f"HTML book: {html / 'index.html'}")
    return status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("book", help="execute the chapters and build the HTML book",
                                   description="Execute the chapter notebooks with papermill and build the HTML "
                                               "book. Without a subcommand: run the chapters (smoke profile unless "
                                               "--profile says otherwise), then build.")
    _add_root(parser, top=True)
    _add_run_options(parser, top=True)
    _add_lenient(parser, top=True)
    parser.set_defaults(func=_all)
    sub = parser.add_subparsers(dest="book_command", metavar="SUBCOMMAND")

    run = sub.add_parser("run", help="execute chapters with papermill into book/chapters")
    _add_root(run)
    _add_run_options(run)
    run.set_defaults(func=_run)

    build = sub.add_parser("build", help="build the HTML book with jupyter-book (warnings are errors)")
    _add_root(build)
    _add_lenient(build)
    build.add_argument("--published", nargs="?", const="standard", default=None, choices=book.PROFILES,
                       metavar="PROFILE", help="render the chapters published under published/PROFILE/ (default "
                                               "standard) into build/published-PROFILE/_build/html; runs nothing")
    build.set_defaults(func=_build)

    publishing = sub.add_parser("publish", help="store the chapters that ran ok with a profile under published/<profile>/")
    _add_root(publishing)
    publishing.add_argument("--profile", choices=book.PROFILES, default="standard",
                            help="the profile whose runs to publish (default: standard)")
    publishing.add_argument("--chapters", nargs="+", metavar="NN", default=None,
                            help="chapter numbers or stems (default: every chapter with a good run of the profile)")
    publishing.set_defaults(func=_publish)

    check = sub.add_parser("check", help="list error outputs in the executed chapters (exit 1 if any)")
    _add_root(check)
    check.set_defaults(func=_check)

    everything = sub.add_parser("all", help="run the chapters, then build the book (same as no subcommand)")
    _add_root(everything)
    _add_run_options(everything)
    _add_lenient(everything)
    everything.set_defaults(func=_all)
