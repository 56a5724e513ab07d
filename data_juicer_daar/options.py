"""Command-line options derived from the config dataclasses.

A setting's flag, help and default live on its dataclass field (``option``), so the ``daar``
command, the Python API and the defaults cannot drift apart: ``add_options`` turns a config class
into argparse options (nested config dataclasses included) and ``from_args`` builds it back.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import MISSING, Field, field, fields, is_dataclass
from typing import Any, TypeVar
from collections.abc import Callable, Collection

from .errors import ConfigError

T = TypeVar("T")


def option(
    default: Any = MISSING,
    *,
    help: str,
    flag: str | None = None,
    factory: Callable[[], Any] | None = None,
    choices: Collection[str] | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A dataclass field that is also a command-line option (``flag`` defaults to ``--the-name``)."""
    meta = {"help": help, "flag": flag, "choices": choices, "parse": parse}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def int_list(value: str) -> list[int]:
    """ "512,256" -> [512, 256] (argparse turns the ValueError of a bad item into a usage error)."""
    return [int(x) for x in value.split(",")]


def _default(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def add_options(parser: argparse.ArgumentParser, config: type, only: Collection[str] | None = None) -> None:
    """Add an option for every ``option`` field of ``config`` (or of those named in ``only``)."""
    for f in fields(config):
        if only is not None and f.name not in only:
            continue
        default = _default(f)
        if is_dataclass(default):
            add_options(parser, type(default))
            continue
        if "help" not in f.metadata:
            continue
        meta = f.metadata
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action="store_false" if default else "store_true", help=meta["help"])
            continue
        shown = "" if default is None else f" (default: {','.join(map(str, default)) if isinstance(default, list) else default})"
        parse = meta["parse"] or (str if default is None else type(default))
        parser.add_argument(flag, dest=f.name, type=parse, default=default, choices=meta["choices"], help=meta["help"] + shown)


def from_args(config: type[T], args: argparse.Namespace) -> T:
    """``config`` built from parsed options (fields without an option keep their defaults)."""
    values = {}
    for f in fields(config):
        default = _default(f)
        if is_dataclass(default):
            values[f.name] = from_args(type(default), args)
        elif "help" in f.metadata and hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return config(**values)


def check_number(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
) -> None:
    """One-line ``ConfigError`` (``option=name``) unless ``value`` is a finite number (an int when
    ``integer``) inside the bounds (``open_*``: the bound itself is excluded)."""
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or value > low or (not open_low and value == low))
    ok = ok and (high is None or value < high or (not open_high and value == high))
    if not ok:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if open_high else '<='} {high:g}"
        rule = " and ".join(r for r in (lo, hi) if r)
        raise ConfigError(
            f"{name} must be {'an integer' if integer else 'a finite number'}{' ' + rule if rule else ''}, got {value!r}", option=name
        )


def check_choice(name: str, value: Any, allowed: Collection[str]) -> None:
    """One-line ``ConfigError`` (``option=name``) unless ``value`` is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}", option=name)


DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


def check_device(name: str, value: Any) -> None:
    """One-line ``ConfigError`` unless ``value`` is None, "cpu", "cuda", "cuda:N" or "mps"."""
    if value is not None and not (isinstance(value, str) and DEVICE.fullmatch(value)):
        raise ConfigError(f"{name} must be cpu, cuda, cuda:N or mps, got {value!r}", option=name)
