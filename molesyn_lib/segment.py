"""Deterministic segmentation of a reasoning text into steps.

The paper does not say how it splits a Long CoT into steps, so molesyn uses a documented, configurable rule:

1. split at paragraph boundaries (one or more blank lines);
2. inside a paragraph, split before a sentence that opens with a discourse marker that usually starts a new move
   ("Wait", "But wait", "Alternatively", "Let me check", "Hmm", "Actually", ...; see :data:`DEFAULT_MARKERS`);
3. split paragraphs longer than ``max_chars`` at sentence boundaries;
4. merge every piece shorter than ``min_chars`` into the piece that follows it (into the previous one at the end),
   so that a lone "Wait." or a heading travels with the content it introduces.

Traces that already come as a list of ``steps`` are never re-segmented.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Sentence openers that start a new step inside a paragraph (matched case-sensitively at a sentence start).
DEFAULT_MARKERS: tuple[str, ...] = (
    "But wait", "Wait", "Hold on", "Hmm", "Alternatively", "Another approach", "Another way", "Let me check",
    "Let me verify", "Let me double-check", "Let me double check", "Let me re-examine", "Let me recheck",
    "Let me think again", "Let me reconsider", "Let me try", "Actually", "On second thought", "Oh", "Oops",
    "Double-check", "To verify", "Now", "So the answer", "Therefore, the answer",
)

_PARAGRAPH_RE = re.compile(r"\n\s*\n+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\$(])")


@dataclass(frozen=True)
class SegmentConfig:
    """How raw reasoning text is cut into steps.

    Attributes:
        split_paragraphs: split at blank lines.
        split_markers: split before sentences that open with one of ``markers``.
        markers: the discourse markers (case-sensitive, must open a sentence).
        min_chars: pieces shorter than this (after stripping) are merged into the next piece.
        max_chars: paragraphs longer than this are split at sentence ends (``None`` keeps them whole).
    """

    split_paragraphs: bool = True
    split_markers: bool = True
    markers: tuple[str, ...] = field(default=DEFAULT_MARKERS)
    min_chars: int = 40
    max_chars: int | None = 1500

    def marker_regex(self) -> re.Pattern[str]:
        alternatives = "|".join(re.escape(m) for m in sorted(self.markers, key=len, reverse=True))
        # a split point: after sentence punctuation (or a newline) and before a marker that is a whole word
        return re.compile(rf"(?:(?<=[.!?:])\s+|\n+)(?=(?:{alternatives})\b)")


_MARKER_CACHE: dict[SegmentConfig, re.Pattern[str]] = {}


def _split_long(paragraph: str, max_chars: int) -> list[str]:
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END_RE.split(paragraph):
        if current and len(current) + len(sentence) + 1 > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    return pieces


def segment_text(text: str, config: SegmentConfig | None = None) -> list[str]:
    """Split ``text`` into steps with ``config`` (default :class:`SegmentConfig`). Returns stripped, non-empty steps."""
    config = config or SegmentConfig()
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return []
    paragraphs = _PARAGRAPH_RE.split(text) if config.split_paragraphs else [text]
    pieces: list[str] = []
    if config.split_markers:
        marker_re = _MARKER_CACHE.get(config)
        if marker_re is None:
            marker_re = _MARKER_CACHE.setdefault(config, config.marker_regex())
    for paragraph in paragraphs:
        parts = marker_re.split(paragraph) if config.split_markers else [paragraph]
        for part in parts:
            part = part.strip()
            if not part:
                continue
            pieces.extend(_split_long(part, config.max_chars) if config.max_chars else [part])
    return merge_short(pieces, config.min_chars)


def merge_short(pieces: list[str], min_chars: int) -> list[str]:
    """Merge pieces shorter than ``min_chars`` into the following piece (the last one into the previous piece)."""
    if min_chars <= 0:
        return [p for p in pieces if p]
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        piece = f"{carry}\n{piece}" if carry else piece
        if len(piece) < min_chars:
            carry = piece
            continue
        carry = ""
        merged.append(piece)
    if carry:
        if merged:
            merged[-1] = f"{merged[-1]}\n{carry}"
        else:
            merged.append(carry)
    return merged
