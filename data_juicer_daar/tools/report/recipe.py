"""``daar report --recipe``: what the recipe that made a selection tells the report: its scored pool
(the ``stats_export_path`` an op before the selector writes), its selection (``export_path``), the
selector's bundle and score, and the selector's rule in words."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ...errors import ConfigError
from ...method.selection import TopkSpec
from ...options import settings

SELECTORS = ("daar_topk_reward_selector", "daar_topk_reward_ray_selector")
#: the selector parameters the rule is made of (``TopkSpec`` fields)
RULE = ("topk", "top_ratio", "mode", "coverage", "score_source", "share_exponent", "rate_cap")


@dataclass(frozen=True)
class FromRecipe:
    pool: str | None  # None: no op before the selector keeps the scored pool
    selection: str | None
    bundle: str | None
    score: str
    rule: str  # "<selector>: <rule>"


def _ops(cfg: dict) -> list[tuple[str, dict]]:
    """(op name, its parameters) of the recipe's process list, in order."""
    ops = []
    for op in cfg.get("process") or []:
        for name, params in op.items() if isinstance(op, dict) else []:
            ops.append((name, params if isinstance(params, dict) else {}))
    return ops


def read_recipe(path: str) -> FromRecipe:
    """The report's inputs as the recipe at ``path`` names them (relative paths are Data-Juicer's:
    from the folder the command runs in). One ``ConfigError`` line when it names no DaaR selector."""
    try:
        cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the recipe {path}: {exc.strerror or exc}", option="recipe") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the recipe {path} is not YAML: {' '.join(str(exc).split())}", option="recipe") from None
    ops = _ops(cfg) if isinstance(cfg, dict) else []
    at = [i for i, (name, _) in enumerate(ops) if name in SELECTORS]
    if not at:
        raise ConfigError(
            f"the recipe {path} has no {' or '.join(SELECTORS)} in its process list: give --pool and --selection instead",
            option="recipe",
        )
    who, params = ops[at[-1]]
    rule = {k: params[k] for k in RULE if k in params}
    if isinstance(params.get("domain_ratios"), dict):
        rule["shares"] = params["domain_ratios"]
    try:
        spec = settings(who, TopkSpec, **rule)
    except ConfigError as exc:
        raise ConfigError(f"the recipe {path}: {exc}", option="recipe") from None
    kept = [p["stats_export_path"] for _, p in ops[: at[-1]] if isinstance(p.get("stats_export_path"), str)]
    export = cfg.get("export_path")
    return FromRecipe(
        pool=kept[-1] if kept else None,
        selection=export if isinstance(export, str) else None,
        bundle=params.get("bundle_path") if isinstance(params.get("bundle_path"), str) else None,
        score=spec.score_source,
        rule=f"{who}: {spec.describe()}",
    )
