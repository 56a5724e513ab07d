"""The bundle's manifest, typed: what the heads were trained with, on what, and how well.

``manifest.json`` is this dataclass as JSON (``to_dict``/``from_dict``, same keys, same order);
every reader uses the attributes. ``metrics``, ``synthesis`` and ``training`` stay plain dicts:
they are records for people (the CLI, the report), not settings anything computes with.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any

from ..errors import BundleError
from .backbone import DTYPES
from .text import FORMATS, TEMPLATE_VERSION

POOLING = "masked_mean(final_norm(block_L))"  # the one pooling scoring applies


@dataclass(frozen=True)
class BackboneFacts:
    """The truncated backbone the features came from."""

    model: str  # the model's label (or directory)
    fingerprint: str  # SHA-256 over every tensor the first L blocks read
    num_layers: int  # decoder blocks kept, L
    dim: int  # feature width
    pooling: str
    max_length: int  # tokens per sample
    dtype: str | None = None  # the number format the training features were computed in (None: float32, older bundles)


@dataclass(frozen=True)
class Manifest:
    """Everything a bundle records besides its weights."""

    package_version: str
    backbone: BackboneFacts
    text: dict[str, Any]  # {"template": version, "fields": TextFields as a dict}
    domains: list[dict[str, str]]  # [{"name", "description"}], the bundle's domain order
    heads: dict[str, Any]  # {"hidden": widths, "standardised_input": true}
    subdomains: dict[str, Any]  # {"count", "space"}
    synthesis: dict[str, Any]  # {"enabled", "per_domain", ["key"]}
    training: dict[str, Any]  # every TrainConfig field
    metrics: dict[str, Any]  # validation metrics, sizes, wall times
    format_version: int | None = None  # set by ``bundle.save_bundle``
    weights_sha256: str | None = None
    manifest_sha256: str | None = None

    @property
    def domain_names(self) -> list[str]:
        return [d["name"] for d in self.domains]

    @property
    def hidden(self) -> list[int]:
        return list(self.heads["hidden"])

    @property
    def subdomain_count(self) -> int:
        return int(self.subdomains["count"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (unset entries left out, so an older bundle's manifest reads back as written)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if is_dataclass(value):
                value = {g.name: getattr(value, g.name) for g in fields(value) if getattr(value, g.name) is not None}
            if value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Manifest:
        """The manifest of ``data`` (read from ``where``); a missing or unknown entry is a one-line ``BundleError``."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = sorted(required - set(data))
        unknown = sorted(set(data) - names)
        if missing or unknown:
            raise BundleError(f"{where}: manifest is incomplete (missing {missing or 'nothing'}, unknown {unknown or 'nothing'})")
        try:
            backbone = BackboneFacts(**data["backbone"])
        except TypeError as exc:
            raise BundleError(f"{where}: manifest is incomplete (backbone: {exc})") from None
        manifest = cls(**{**data, "backbone": backbone})
        problem = manifest.problem()
        if problem:
            raise BundleError(f"{where}: manifest holds {problem}, which this package never writes: retrain the bundle")
        return manifest

    def problem(self) -> str | None:
        """What in the manifest no training writes (None: every value is one scoring can honour).
        The digest proves the manifest was not edited by accident; this catches a forged one."""
        b = self.backbone
        positive = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (b.num_layers, b.dim, b.max_length))
        names = [d.get("name") if isinstance(d, dict) else None for d in self.domains] if isinstance(self.domains, list) else []
        named = all(isinstance(n, str) and n for n in names)
        text = self.text if isinstance(self.text, dict) else {}
        fields_ = text.get("fields") if isinstance(text.get("fields"), dict) else {}
        checks = [
            (b.pooling == POOLING, f"pooling {b.pooling!r}"),
            (b.dtype is None or (isinstance(b.dtype, str) and b.dtype in DTYPES), f"number format {b.dtype!r}"),
            (positive, f"backbone sizes {b.num_layers!r}, {b.dim!r}, {b.max_length!r}"),
            (text.get("template") == TEMPLATE_VERSION, f"text template {text.get('template', self.text)!r}"),
            (fields_.get("fmt") in FORMATS, f"text format {fields_.get('fmt')!r}"),
            (len(names) >= 2 and named, f"domains {names!r}"),
            (named and len(set(names)) == len(names), f"two domains of one name ({names!r})"),
        ]
        return next((what for ok, what in checks if not ok), None)

    @functools.cached_property
    def heads_id(self) -> str:
        """Identity of the trained heads: changes whenever the bundle is retrained (the manifest
        holds the weights' digest; not the backbone's ``fingerprint``); computed once (scoring tags
        every batch with it)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def digest(data: dict[str, Any]) -> str:
    """Digest of everything in a manifest's JSON form but the digest itself (any edit changes it)."""
    body = {k: v for k, v in data.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
