"""Segmentation rules: paragraphs, discourse markers, minimum length, long paragraphs."""
from molesyn_lib.segment import SegmentConfig, merge_short, segment_text


def test_paragraphs_and_markers():
    text = ("We need the sum of the first ten odd numbers here.\n\nThat is 1 + 3 + 5 + ... + 17 + 19 = 100 in total. Wait, let me "
            "recount the terms to be sure of it. Alternatively, use the formula n squared for the sum.")
    steps = segment_text(text)
    assert steps == ["We need the sum of the first ten odd numbers here.",
                     "That is 1 + 3 + 5 + ... + 17 + 19 = 100 in total.",
                     "Wait, let me recount the terms to be sure of it.",
                     "Alternatively, use the formula n squared for the sum."]


def test_marker_must_open_a_sentence_and_be_a_word():
    steps = segment_text("The waiting time is long, and we wait. Waiter counts are irrelevant to the result here.")
    assert len(steps) == 1


def test_short_pieces_merge_forward_and_last_backward():
    assert merge_short(["Wait.", "The second value should be 7, not 8, so fix it."], 20) == [
        "Wait.\nThe second value should be 7, not 8, so fix it."]
    assert merge_short(["A long enough first piece of text.", "ok"], 20) == ["A long enough first piece of text.\nok"]
    assert merge_short(["tiny"], 20) == ["tiny"]


def test_config_switches_and_long_paragraphs():
    text = "Alpha beta gamma delta. Wait, epsilon zeta eta theta."
    assert segment_text(text, SegmentConfig(split_markers=False, min_chars=1)) == [text]
    long_paragraph = " ".join(f"Sentence number {i} is here." for i in range(60))
    pieces = segment_text(long_paragraph, SegmentConfig(max_chars=200, min_chars=1))
    assert len(pieces) > 1 and all(len(p) <= 200 for p in pieces)
    assert " ".join(pieces) == long_paragraph


def test_deterministic_and_empty():
    assert segment_text("") == []
    text = "One idea that is developed at length.\n\nHmm, another thought that follows it now."
    assert segment_text(text) == segment_text(text)
