"""The ``molesyn`` command line: one subcommand module per area in :mod:`molesyn_lib.commands`.

Every module there defines ``register(subparsers)``, adding its subcommands with ``set_defaults(func=...)``; the
function receives the parsed arguments and returns an exit code. Bad input is reported as one line on stderr
(``molesyn: error: FILE:LINE: ...``) with exit status 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Sequence

from . import __version__, commands
from .errors import MolesynError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="molesyn", description="The molecular structure of Long CoT: analyse, "
                                     "synthesise and study reasoning traces (Chen et al. 2026).")
    parser.add_argument("--version", action="version", version=f"molesyn {__version__}")
    parser.add_argument("--data-dir", help="data directory (default: $MOLESYN_DATA, else ../shared/data)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["MOLESYN_DATA"] = args.data_dir
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MolesynError as exc:
        print(f"molesyn: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"molesyn: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"molesyn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # a second Ctrl-C (e.g. while the interpreter waits for worker threads on exit) ends the process at once
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, lambda *_: os._exit(130))
        print("molesyn: interrupted (press Ctrl-C again to exit at once)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
