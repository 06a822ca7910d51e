"""``molesyn data``: what the data directory holds, and downloading the public source files into it.

* ``molesyn data list [--verify]``: the data directory in use and, per dataset folder, which files are present or
  missing (with sizes; ``--verify`` also checks sha256).
* ``molesyn data fetch [--dest DIR] [--only NAME ...]``: download the missing files from their pinned upstream
  commits (re-packing where the manifest says so), verifying checksums. Offline it prints, one line per file, what
  is missing, where to get it and where to put it, and exits 1.
* ``molesyn data manifest --from DIR --out FILE``: regenerate the manifest from a complete reference copy.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import datafetch
from ..config import data_dir
from ..safeio import check_output, write_json


def _dest(args: argparse.Namespace) -> Path:
    return Path(args.dest).expanduser().resolve() if getattr(args, "dest", None) else data_dir()


def _list(args: argparse.Namespace) -> int:
    files = datafetch.select_files(datafetch.load_manifest(args.manifest), args.only)
    dest = _dest(args)
    print(f"data directory: {dest}{'' if dest.is_dir() else ' (does not exist)'}")
    states = datafetch.inspect_data_dir(dest, files, verify=args.verify)
    width = max(len(s.file.name) for s in states)
    for dataset in dict.fromkeys(s.file.dataset for s in states):
        group = [s for s in states if s.file.dataset == dataset]
        present = sum(s.status == "present" for s in group)
        print(f"\n{dataset}/  ({present}/{len(group)} present)")
        for state in group:
            note = ""
            if state.status == "mismatch":
                note = f"  (expected {datafetch.human_size(state.file.size)}"
                note += ", sha256 differs)" if state.size == state.file.size else ")"
            elif state.status == "present" and state.verified:
                note = "  sha256 ok"
            size = datafetch.human_size(state.size if state.size is not None else state.file.size)
            print(f"  {state.status:<8} {state.file.name:<{width}} {size:>10}  [{state.file.method}]{note}")
    extras = datafetch.extra_files(dest, files) if not args.only else []
    if extras:
        print("\nnot in the manifest: " + ", ".join(str(p.relative_to(dest)) for p in extras))
    missing = [s for s in states if s.status != "present"]
    if missing:
        print(f"\n{len(missing)} of {len(states)} files missing or different; `molesyn data fetch` downloads them")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    files = datafetch.select_files(datafetch.load_manifest(args.manifest), args.only)
    dest = _dest(args)
    base_url = args.base_url
    results = datafetch.fetch(dest, files, base_url=base_url, timeout=(args.connect_timeout, args.read_timeout),
                              progress=not args.no_progress)
    for result in results:
        if result.status in ("fetched", "mismatch", "failed"):
            print(f"{result.status:<9} {result.file.relpath}: {result.message}",
                  file=sys.stdout if result.ok else sys.stderr)
    done = sum(r.ok for r in results)
    print(f"{done}/{len(results)} files in place under {dest}")
    bad = [r for r in results if not r.ok]
    if not bad:
        return 0
    if any(r.status == "unreachable" for r in bad):
        print(f"no network access to {base_url}: these files are missing; download them on a connected machine "
              f"(`molesyn data fetch --dest DIR`) or by hand:", file=sys.stderr)
    for line in datafetch.offline_instructions(bad, dest, base_url):
        print(line, file=sys.stderr)
    return 1


def _manifest(args: argparse.Namespace) -> int:
    out = check_output(args.out)
    manifest = datafetch.generate_manifest(Path(args.source).expanduser().resolve())
    write_json(out, manifest, indent=1, ensure_ascii=False)
    print(f"wrote {len(manifest['files'])} files to {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="list or download the data directory's files",
                                   description="The data directory (MOLESYN_DATA / --data-dir, default "
                                               "../shared/data): list what is there, fetch what is missing.")
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dest", default=None, help="data directory (default: the configured one)")
        p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                       help="dataset folders or dataset/file paths to consider (default: all)")
        p.add_argument("--manifest", default=None, help=argparse.SUPPRESS)

    listing = sub.add_parser("list", help="show which data files are present or missing")
    common(listing)
    listing.add_argument("--verify", action="store_true", help="also check every file's sha256 (slower)")
    listing.set_defaults(func=_list)

    fetch = sub.add_parser("fetch", help="download missing data files from their pinned upstream commits")
    common(fetch)
    fetch.add_argument("--base-url", default=datafetch.RAW_GITHUB,
                       help=f"where OWNER/REPO/COMMIT/PATH is served (default {datafetch.RAW_GITHUB})")
    fetch.add_argument("--connect-timeout", type=float, default=datafetch.DEFAULT_TIMEOUT[0], metavar="S")
    fetch.add_argument("--read-timeout", type=float, default=datafetch.DEFAULT_TIMEOUT[1], metavar="S")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bars")
    fetch.set_defaults(func=_fetch)

    manifest = sub.add_parser("manifest", help="regenerate the data manifest from a complete reference copy")
    manifest.add_argument("--from", dest="source", required=True, help="the reference data directory")
    manifest.add_argument("--out", required=True, help="where to write the manifest JSON")
    manifest.set_defaults(func=_manifest)
