"""The lab students' tokenizer: one token per character over printable ASCII, built offline (no downloads).

Every lab text (prompts, steps, cue words of all teachers and replacement sets) is printable ASCII, so one fixed
vocabulary serves every condition and checkpoints trained on different teachers stay interchangeable (needed for
sequential A-then-B training). Special tokens: ``<pad>`` (0), ``<unk>``, ``<s>``, ``</s>`` (EOS). Padding is on the
left, as decoder-only generation needs.
"""
from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")
#: The character alphabet: printable ASCII without tabs/newlines beyond ``\n``.
ALPHABET = tuple(dict.fromkeys(string.digits + string.ascii_letters + string.punctuation + " \n"))


def char_tokenizer(alphabet: tuple[str, ...] = ALPHABET) -> PreTrainedTokenizerFast:
    """A character-level ``PreTrainedTokenizerFast`` (encode/decode round-trips exactly on the alphabet)."""
    vocab = {token: index for index, token in enumerate((*SPECIAL_TOKENS, *alphabet))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>")
    tokenizer.padding_side = "left"
    return tokenizer
