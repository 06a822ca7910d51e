"""The paper's four step behaviours (N, D, R, E), their bond names and their definitions.

The definitions are the ones printed in the paper's MOLE-SYN prompts (Chen et al. 2026, Appendix E); every labeller,
synthesiser prompt and plot in molesyn reads them from here so that there is one source of truth.
"""
from __future__ import annotations

from typing import Final, Literal

Behavior = Literal["N", "D", "R", "E"]

#: The four behaviour codes in the fixed order used by every matrix in molesyn.
STATES: Final[tuple[str, ...]] = ("N", "D", "R", "E")
STATE_INDEX: Final[dict[str, int]] = {s: i for i, s in enumerate(STATES)}

NAMES: Final[dict[str, str]] = {
    "N": "Normal operation",
    "D": "Deep reasoning",
    "R": "Self-reflection",
    "E": "Self-exploration",
}

#: The chemical analogy of each behaviour (N is the background, no bond of its own).
BONDS: Final[dict[str, str]] = {
    "N": "none (backbone filler)",
    "D": "covalent bond",
    "R": "hydrogen bond",
    "E": "van der Waals force",
}

#: Definitions as printed in the paper's MOLE-SYN prompts.
DEFINITIONS: Final[dict[str, str]] = {
    "N": (
        "Normal operation: straightforward, direct operations (arithmetic, factual recall, simple step-by-step "
        "logic) without introducing new logical nodes."
    ),
    "D": (
        "Deep reasoning: multi-step causal, deductive or analogical thinking that extends the chain by introducing "
        "new logical nodes or hidden assumptions."
    ),
    "R": (
        "Self-reflection: commenting on its own thought process (confidence, strategy, uncertainty, mistakes, "
        "reconsidering earlier reasoning) and tracing back to previous logical nodes."
    ),
    "E": (
        "Self-exploration: generating new possibilities, hypotheses or questions, branching into alternative paths "
        "rather than following one conclusion."
    ),
}

#: The per-behaviour instruction of the MOLE-SYN prompts.
INSTRUCTIONS: Final[dict[str, str]] = {
    "N": "Please conduct normal operation on the response.",
    "D": "Please further deepen the reasoning on the response.",
    "R": "Please reflect on the response and provide a self-reflection.",
    "E": "Please explore a novel reasoning path in the response.",
}

#: Colours used for the behaviours in every figure.
COLORS: Final[dict[str, str]] = {"N": "#9e9e9e", "D": "#1f77b4", "R": "#d62728", "E": "#2ca02c"}


def check_behavior(value: object) -> str:
    """Return ``value`` if it is one of N, D, R, E, else raise ``ValueError`` naming the allowed values."""
    if not isinstance(value, str) or value not in STATE_INDEX:
        raise ValueError(f"behaviour must be one of {', '.join(STATES)}, got {value!r}")
    return value
