"""The reuse rule: which DaaR values a row already carries, and under which tag.

Every value an op writes is tagged with the scoring tag (bundle heads + text settings + number
format). A later op reuses a stored value only under its own tag; anything else counts as missing
and is scored again. Pure functions over a row's stats and meta dicts, so Ray workers, which
cannot score, apply the same rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from data_juicer.utils.constant import Fields

from .. import keys
from ..method.scoring import entropy
from ..method.text import TextFields

#: the names ``stored_values`` answers: every score of ``keys.SCORES`` and every ``keys.META_VALUES``
VALUE_NAMES = (*keys.SCORES, *keys.META_VALUES)


def scoring_tag(heads_id: str, fields: TextFields, dtype: str) -> str:
    """What a stored DaaR value depends on: the bundle's heads (``Manifest.heads_id``), how rows
    were rendered and the backbone's number format."""
    return hashlib.sha256(json.dumps([heads_id, asdict(fields), dtype], sort_keys=True).encode()).hexdigest()[:16]


def _tag_of(record: Any) -> str | None:
    return record.get(keys.SCORING_TAG) if isinstance(record, dict) else None


def other_tag(stat: Any, meta: Any, tag: str) -> bool:
    """The row carries DaaR values, none of them under ``tag`` (another bundle or text setting)."""
    tags = {_tag_of(stat), _tag_of(meta)} - {None}
    return bool(tags) and tag not in tags


def _stored(stat: dict, meta: dict, name: str) -> Any:
    """Where each value is kept: a score in the filter's stats, else in (or derived from) the
    mapper's meta; every other value in the mapper's meta."""
    score = keys.SCORES.get(name)
    if score is None:
        return meta.get(keys.META_VALUES[name])
    if stat.get(score.stats_key) is not None:
        return stat[score.stats_key]
    if score.meta_key is not None:
        return meta.get(score.meta_key)
    probs = meta.get(keys.DOMAIN_PROBS)  # the probe entropy is the entropy of the stored softmax
    return None if probs is None else float(entropy(torch.tensor(probs, dtype=torch.float32)))


def stored_values(stat: Any, meta: Any, tag: str, wanted: Sequence[str]) -> dict[str, Any] | None:
    """The ``wanted`` values (of ``VALUE_NAMES``) an earlier op stored for a row under ``tag``, plus
    ``bundle``: the tag; None when any is missing. A record written under another tag counts as
    missing."""
    stat = stat if _tag_of(stat) == tag else {}
    meta = meta if _tag_of(meta) == tag else {}
    out: dict[str, Any] = {"bundle": tag}
    for name in wanted:
        value = _stored(stat, meta, name)
        if value is None:
            return None
        out[name] = value
    return out


def _tag_hits(column: pa.ChunkedArray, tag: str) -> np.ndarray | None:
    """Per row, whether a stats or meta column (an Arrow struct, or the JSON text Data-Juicer keeps
    them as) holds ``SCORING_TAG: tag``; None for any other column type."""
    kind = column.type
    if isinstance(kind, pa.BaseExtensionType):  # Data-Juicer's Json feature: JSON text underneath
        column, kind = pa.chunked_array([c.storage for c in column.chunks], type=kind.storage_type), kind.storage_type
    if pa.types.is_struct(kind):
        if kind.get_field_index(keys.SCORING_TAG) < 0:
            return np.zeros(len(column), dtype=bool)
        hit = pc.equal(pc.struct_field(column, keys.SCORING_TAG), tag)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        hit = pc.match_substring_regex(column, rf'"{keys.SCORING_TAG}"\s*:\s*"{tag}"')
    else:
        return None
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False).astype(bool)


def carried_mask(table: pa.Table, tag: str, wanted: Sequence[str]) -> np.ndarray | None:
    """Per row of an Arrow ``table`` (a Data-Juicer dataset's columns), whether it carries every
    ``wanted`` value under ``tag``, read from the tag fields alone (the ops write a tag and its values
    together): a score is in the stats or derived from the meta, every other value is in the meta.
    None when a stats or meta column is neither an Arrow struct nor JSON text (then
    ``stored_values`` row by row)."""
    tagged = {}
    for name in (Fields.stats, Fields.meta):
        hits = _tag_hits(table.column(name), tag) if name in table.column_names else np.zeros(table.num_rows, dtype=bool)
        if hits is None:
            return None
        tagged[name] = hits
    mask = np.ones(table.num_rows, dtype=bool)
    for name in wanted:
        mask &= (tagged[Fields.stats] | tagged[Fields.meta]) if name in keys.SCORES else tagged[Fields.meta]
    return mask
