"""A trained probe bundle: ``manifest.json`` + ``heads.safetensors`` (+ ``synthetic.jsonl``).

The manifest records what the heads were trained with (backbone identity and fingerprint, L,
pooling, max length, text template, domains, sub-domains, options, metrics, package version). Loading
is strict: a missing file, damaged weights, an edited manifest (it carries a digest of itself and of
the weights), an older or newer format or a shape mismatch is a one-line ``BundleError``. No pickle
anywhere: JSON and safetensors only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jsonlines
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import BundleError, ModelError
from .heads import Head
from .manifest import Manifest, digest
from .models import model_fingerprint, resolve_model
from .subdomains import Subdomains

FORMAT_VERSION = 2  # 2: sub-domains and the manifest's own digest
MANIFEST = "manifest.json"
WEIGHTS = "heads.safetensors"
SYNTHETIC = "synthetic.jsonl"
BUNDLE_FILES = frozenset({MANIFEST, WEIGHTS, SYNTHETIC})


@dataclass
class Bundle:
    path: Path
    manifest: Manifest
    probe: Head
    predictor: Head
    subdomains: Subdomains

    @property
    def domains(self) -> list[str]:
        return self.manifest.domain_names

    @property
    def heads_id(self) -> str:
        return self.manifest.heads_id


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_bundle(path: Path) -> bool:
    """Whether the directory ``path`` holds a bundle's files and nothing else."""
    names = {p.name for p in path.iterdir()}
    if MANIFEST not in names or not names <= BUNDLE_FILES:
        return False
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "manifest_sha256" in manifest and "format_version" in manifest


def check_out(out: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """``out`` if a bundle may be written there, else a one-line ``BundleError``, before any work.

    A bundle replaces ``out`` whole, so ``out`` must be new, an empty directory or a bundle (its
    three files and nothing else); never a file, a link, a directory of other files or one that
    holds (or is) one of ``inputs`` (the corpus, the domain file, the models). Its nearest existing
    parent must be a writable directory."""
    out = Path(out)
    target = out.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if target == source or target in source.parents:
            how = "is" if target == source else "holds"
            raise BundleError(
                f"{out} {how} {given}, an input of this training: a bundle replaces its directory whole; write it elsewhere", option="out"
            )
    if out.is_symlink():
        raise BundleError(f"{out} is a symbolic link: refusing to replace it; give the bundle a directory of its own", option="out")
    if out.exists():
        if not out.is_dir():
            raise BundleError(f"{out} is an existing file, not a bundle directory: refusing to replace it; choose a new path", option="out")
        if any(out.iterdir()) and not _is_bundle(out):
            held = sorted(p.name for p in out.iterdir())
            shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
            raise BundleError(
                f"{out} is a directory holding {shown}, not a bundle: refusing to replace it; choose a new or empty directory", option="out"
            )
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise BundleError(f"cannot write {out}: {parent} is not a writable directory", option="out")
    return out


def current_umask() -> int:
    """The process umask, read without changing it."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_bundle(out: str | Path, manifest: Manifest, probe: Head, predictor: Head, synthetic: list[dict], subdomains: Subdomains) -> Path:
    """Write a bundle atomically: a crash never leaves a half-written bundle at ``out``, and only a
    bundle or an empty directory is ever replaced (``check_out``)."""
    out = check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    os.chmod(staging, 0o777 & ~current_umask())  # as readable as what the user makes (mkdtemp's 0700 shuts out a shared filesystem)
    try:
        tensors = {f"probe.{k}": v.contiguous() for k, v in probe.state_dict().items()}
        tensors.update({f"predictor.{k}": v.contiguous() for k, v in predictor.state_dict().items()})
        tensors.update({f"subdomains.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in subdomains.tensors().items()})
        save_file(tensors, str(staging / WEIGHTS))
        with jsonlines.open(staging / SYNTHETIC, "w") as writer:
            writer.write_all(synthetic)
        data = {**manifest.to_dict(), "format_version": FORMAT_VERSION, "weights_sha256": _sha256(staging / WEIGHTS)}
        data["manifest_sha256"] = digest(data)
        (staging / MANIFEST).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        for file in staging.iterdir():
            os.chmod(file, 0o666 & ~current_umask())
        old = None
        check_out(out)  # again: the directory may have changed while training ran
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def read_manifest(path: str | Path) -> Manifest:
    """The bundle's manifest, checked: format version, digest, every entry present."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"probe bundle {path} does not exist (train one with `daar train --corpus FILE --out {path}`)")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"probe bundle {path} has no {MANIFEST}: not a bundle written by `daar train`") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"probe bundle {path}: {MANIFEST} is unreadable ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format_version"), int):
        raise BundleError(f"probe bundle {path}: {MANIFEST} has no format_version")
    if manifest["format_version"] > FORMAT_VERSION:
        raise BundleError(
            f"probe bundle {path} has format {manifest['format_version']}, newer than this "
            f"package reads ({FORMAT_VERSION}): upgrade data_juicer_daar"
        )
    if manifest["format_version"] < FORMAT_VERSION:
        raise BundleError(
            f"probe bundle {path} has format {manifest['format_version']}, written by an older version "
            f"(no sub-domains, manifest not integrity-checked): retrain it with `daar train`"
        )
    if manifest.get("manifest_sha256") != digest(manifest):
        raise BundleError(f"probe bundle {path}: {MANIFEST} was edited after training (its digest differs): restore it or retrain")
    return Manifest.from_dict(manifest, f"probe bundle {path}")


def read_synthetic(path: str | Path) -> list[dict]:
    with jsonlines.open(Path(path) / SYNTHETIC) as reader:
        return list(reader)


def _expected_shapes(manifest: Manifest) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape the manifest implies (built on the meta device: no kernels run)."""
    dim, k = int(manifest.backbone.dim), len(manifest.domains)
    with torch.device("meta"):
        parts = {"probe.": Head(dim, k, manifest.hidden), "predictor.": Head(dim, 1, manifest.hidden)}
    shapes = {prefix + n: tuple(t.shape) for prefix, head in parts.items() for n, t in head.state_dict().items()}
    count = manifest.subdomain_count
    shapes.update({"subdomains.mean": (dim,), "subdomains.scale": (dim,), "subdomains.centroids": (count, dim)})
    return shapes


def verify_bundle(path: str | Path) -> Manifest:
    """Check a bundle without loading its heads (manifest, weights digest, every tensor's name and
    shape); returns the manifest. No torch kernel runs, so ops call it before Data-Juicer forks."""
    path = Path(path)
    manifest = read_manifest(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"probe bundle {path} has no {WEIGHTS}")
    if _sha256(weights) != manifest.weights_sha256:
        raise BundleError(f"probe bundle {path}: {WEIGHTS} is corrupted (digest differs from the manifest)")
    try:
        expected = _expected_shapes(manifest)
        with safe_open(str(weights), framework="pt") as f:
            found = {n: tuple(f.get_slice(n).get_shape()) for n in f.keys()}
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"probe bundle {path}: manifest is incomplete ({type(exc).__name__}: {exc})") from None
    except SafetensorError as exc:
        raise BundleError(f"probe bundle {path}: {WEIGHTS} is unreadable ({exc})") from None
    if found != expected:
        name = next(n for n in sorted(set(found) | set(expected)) if found.get(n) != expected.get(n))
        raise BundleError(
            f"probe bundle {path}: weights do not match the manifest ({name}: {found.get(name)} in the file, {expected.get(name)} expected)"
        )
    return manifest


def load_bundle(path: str | Path) -> Bundle:
    """Load and validate a bundle directory."""
    path = Path(path)
    manifest = verify_bundle(path)
    dim, k = int(manifest.backbone.dim), len(manifest.domains)
    probe, predictor = Head(dim, k, manifest.hidden), Head(dim, 1, manifest.hidden)
    tensors = load_file(str(path / WEIGHTS))
    for prefix, head in (("probe.", probe), ("predictor.", predictor)):
        head.load_state_dict({n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)}, strict=True)
    probe.eval(), predictor.eval()
    subdomains = Subdomains(*(tensors[f"subdomains.{k}"].numpy() for k in ("mean", "scale", "centroids")))
    return Bundle(path, manifest, probe, predictor, subdomains)


def check_model(manifest: Manifest, bundle_path: str | Path, model: str | None = None) -> Path:
    """The backbone directory for a bundle's ``manifest``, checked without running it: directory,
    config and fingerprint against the bundle's. One-line ``ModelError``/``BundleError``."""
    facts = manifest.backbone
    model_dir = resolve_model(model or facts.model)
    try:
        json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"]
        fingerprint = model_fingerprint(model_dir, int(facts.num_layers))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"model {model_dir}: config.json is unreadable or invalid ({type(exc).__name__})") from None
    if fingerprint != facts.fingerprint:
        raise BundleError(
            f"probe bundle {bundle_path} was trained on backbone {facts.model} "
            f"(fingerprint {facts.fingerprint}) but {model_dir} has "
            f"fingerprint {fingerprint}: retrain the bundle for this model"
        )
    return model_dir


def check_bundle(bundle_path: str | Path, model: str | None = None) -> tuple[Manifest, Path]:
    """Everything about a bundle and its backbone that can be checked without loading either (heads'
    digest and shapes, model directory, config, fingerprint). Returns (manifest, model directory).
    Runs no torch kernel, so ops call it before Data-Juicer forks its workers."""
    manifest = verify_bundle(bundle_path)
    return manifest, check_model(manifest, bundle_path, model)
