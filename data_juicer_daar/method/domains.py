"""Target domains: a name, a description and optional trusted seed examples each.

A domain file is YAML or JSON: ``{"domains": [{"name", "description", "examples": [...]}, ...]}``
(examples in any form ``text.render`` understands). K is the number of domains listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import DomainFileError

DEFAULT_DOMAINS_FILE = Path(__file__).parent.parent / "resources" / "default_domains.yaml"


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    examples: tuple[dict, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "examples": list(self.examples)}


def _parse(raw: Any, source: str) -> list[Domain]:
    items = raw.get("domains") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise DomainFileError(f"{source}: expected a list under 'domains'")
    domains = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise DomainFileError(f"{source}: domain #{i + 1} needs a non-empty string 'name'")
        name = item["name"].strip()
        if name.startswith("<"):
            raise DomainFileError(f"{source}: domain name {name!r} may not start with '<' (reserved)")
        description = item.get("description")
        if not isinstance(description, str) or not description.strip():
            raise DomainFileError(f"{source}: domain {name!r} needs a non-empty string 'description'")
        examples = item.get("examples") or []
        if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
            raise DomainFileError(f"{source}: examples of domain {name!r} must be a list of mappings")
        domains.append(Domain(name, " ".join(description.split()), tuple(examples)))
    names = [d.name for d in domains]
    if len(domains) < 2:
        raise DomainFileError(f"{source}: at least 2 domains are needed, found {len(domains)}")
    if len(set(names)) != len(names):
        raise DomainFileError(f"{source}: domain names must be unique, got {names}")
    return domains


def load_domains(path: str | Path | None = None) -> list[Domain]:
    """Domains from a YAML/JSON file; ``None`` gives the built-in four."""
    path = Path(path) if path is not None else DEFAULT_DOMAINS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DomainFileError(f"cannot read domain file {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DomainFileError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({type(exc).__name__})") from None
    return _parse(raw, str(path))
