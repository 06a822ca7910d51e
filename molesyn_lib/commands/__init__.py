"""Subcommand modules of the ``molesyn`` CLI; each defines ``register(subparsers)``."""
