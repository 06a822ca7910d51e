"""Faults: a cache directory that runs out of space gives a clear CacheError, not a traceback deep in sqlite."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def test_full_disk_for_the_embedding_cache(tmp_path):
    # RLIMIT_FSIZE makes every write past 64 KiB fail with EFBIG, the way a full disk fails writes.
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from molesyn_lib.embeddings import EmbeddingCache
        from molesyn_lib.errors import CacheError
        cache = EmbeddingCache({str(tmp_path / "cache" / "emb.sqlite")!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        try:
            for batch in range(100):
                cache.put_many({{f"k{{batch}}-{{i}}": np.ones(384, np.float32) for i in range(50)}})
        except CacheError as exc:
            print("CACHE-ERROR:", exc)
            sys.exit(3)
        print("no error")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot write to the embedding cache" in result.stdout
    assert "MOLESYN_CACHE" in result.stdout
