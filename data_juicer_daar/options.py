"""Every setting of the package, declared once: its default, its help, its flag and the rule its value obeys.

A setting is a dataclass field made by ``option``: the ``daar`` command turns a config class into
argparse options (``add_options``, nested config dataclasses included) and builds it back
(``from_args``); the config derives from ``Settings``, whose ``__post_init__`` applies each field's
rule, so the command, the Python API and the ops check a value the same way, once, before any work.
The ops' parameters are such dataclasses too (``dj/op_base.ScoringSettings``, the selectors'
``TopkSpec``, the filter's ``ScoreRange``); ``settings`` builds one for an op and names the op in
the error.
"""

from __future__ import annotations

import argparse
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Rule(ABC):
    """What a setting's value must be; ``check`` raises one ``ConfigError`` line (``option=name``) otherwise."""

    nullable = False

    @abstractmethod
    def ok(self, value: Any) -> bool:
        """Whether a value other than None obeys the rule."""

    @abstractmethod
    def describe(self) -> str:
        """The rule as the error says it ("an integer >= 1")."""

    def check(self, name: str, value: Any) -> None:
        if (value is None and self.nullable) or (value is not None and self.ok(value)):
            return
        raise ConfigError(f"{name} must be {self.describe()}{' or null' if self.nullable else ''}, got {value!r}", option=name)


@dataclass(frozen=True)
class Number(Rule):
    """A finite number (an int when ``integer``) inside the bounds (``open_*``: the bound itself excluded)."""

    integer: bool = False
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    nullable: bool = False
    what: str = ""  # how the rule reads in an error, when not from the bounds

    def ok(self, value: Any) -> bool:
        kind = int if self.integer else (int, float)
        if not isinstance(value, kind) or isinstance(value, bool) or not math.isfinite(value):
            return False
        above = self.low is None or value > self.low or (not self.open_low and value == self.low)
        return above and (self.high is None or value < self.high or (not self.open_high and value == self.high))

    def describe(self) -> str:
        if self.what:
            return self.what
        show = (lambda v: str(int(v))) if self.integer else (lambda v: f"{v:g}")
        lo = "" if self.low is None else f"{'>' if self.open_low else '>='} {show(self.low)}"
        hi = "" if self.high is None else f"{'<' if self.open_high else '<='} {show(self.high)}"
        rule = " and ".join(r for r in (lo, hi) if r)
        return f"{'an integer' if self.integer else 'a finite number'}{' ' + rule if rule else ''}"


@dataclass(frozen=True)
class OneOf(Rule):
    """One of the ``choices`` (names)."""

    choices: tuple[str, ...]
    nullable: bool = False

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.choices

    def describe(self) -> str:
        return f"one of {', '.join(self.choices)}"


@dataclass(frozen=True)
class Name(Rule):
    """A non-empty string: a field name, a path."""

    what: str = "a non-empty string"
    nullable: bool = False

    def ok(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value)

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class Flag(Rule):
    """true or false."""

    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Widths(Rule):
    """A non-empty list of positive integers."""

    nullable: bool = False

    def ok(self, value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(Number(integer=True, low=1, high=MAX_WIDTH).ok(v) for v in value)

    def describe(self) -> str:
        return f"a list of widths (integers from 1 to {MAX_WIDTH}, e.g. 512,256)"


DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")
MAX_WIDTH = 65536  # a head layer of d x 65536 floats is already ~0.2 GB for d = 768


@dataclass(frozen=True)
class Device(Rule):
    """A device name: cpu, cuda, cuda:N or mps (null: pick)."""

    nullable: bool = True

    def ok(self, value: Any) -> bool:
        if not isinstance(value, str) or DEVICE.fullmatch(value) is None:
            return False
        if value == "cpu":
            return True
        import torch  # only for a device other than the CPU

        if value == "mps":
            return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        # CUDA: a build without it is explained where the device is picked (backbone.pick_device)
        return not torch.cuda.is_available() or value == "cuda" or int(value.split(":")[1]) < torch.cuda.device_count()

    def describe(self) -> str:
        return "cpu, cuda, cuda:N (N below the visible GPUs) or mps (where this torch build has it)"


def option(
    default: Any = MISSING,
    *,
    check: Rule | None = None,
    help: str | None = None,
    flag: str | None = None,
    factory: Callable[[], Any] | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A setting: a dataclass field with its ``check`` rule; with ``help`` also a command-line option
    (``flag`` defaults to ``--the-name``; a ``OneOf`` rule gives its choices)."""
    meta = {"check": check, "help": help, "flag": flag, "parse": parse}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class Settings:
    """Base of every settings dataclass: building one checks each field by its rule (a subclass with
    checks across fields extends ``__post_init__``)."""

    def __post_init__(self) -> None:
        check_fields(self)


def check_fields(config: Any) -> None:
    """Apply every field's rule (cheapest first: in declaration order); one ``ConfigError`` line."""
    for f in fields(config):
        rule = f.metadata.get("check")
        if rule is not None:
            rule.check(f.name, getattr(config, f.name))


def settings(who: str, make: Callable[..., T], rename: dict[str, str] | None = None, **values: Any) -> T:
    """``make(**values)`` (a settings dataclass, or its builder) for the op ``who``: its error names
    the op, and the parameter by its op name (``rename``: field name -> parameter name)."""
    try:
        return make(**values)
    except ConfigError as exc:
        message, name = str(exc), (rename or {}).get(exc.option, exc.option)
        if name != exc.option and message.startswith(exc.option):
            message = name + message[len(exc.option) :]
        raise ConfigError(f"{who}: {message}", option=name) from None


def int_list(value: str) -> list[int]:
    """ "512,256" -> [512, 256] (argparse turns the ValueError of a bad item into a usage error)."""
    return [int(x) for x in value.split(",")]


def _required(f: Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _default(f: Field) -> Any:
    """The field's default (None for a required one)."""
    if _required(f):
        return None
    return f.default_factory() if f.default is MISSING else f.default


def declared(config: type, name: str) -> Any:
    """The default ``config`` declares for its field ``name``: an op's signature takes its defaults
    from here, so each default is written once (a layout test ties the two)."""
    return _default(next(f for f in fields(config) if f.name == name))


def add_options(parser: argparse.ArgumentParser, config: type, only: Collection[str] | None = None) -> None:
    """Add an option for every field of ``config`` that has ``help`` (or of those named in ``only``)."""
    for f in fields(config):
        if only is not None and f.name not in only:
            continue
        default = _default(f)
        if is_dataclass(default):
            add_options(parser, type(default))
            continue
        meta = f.metadata
        if not meta.get("help"):
            continue
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        if _required(f):  # a setting without a default: a required option
            parser.add_argument(flag, dest=f.name, required=True, help=meta["help"])
            continue
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action="store_false" if default else "store_true", help=meta["help"])
            continue
        shown = "" if default is None else f" (default: {','.join(map(str, default)) if isinstance(default, list) else default})"
        parse = meta["parse"] or (str if default is None else type(default))
        choices = meta["check"].choices if isinstance(meta["check"], OneOf) else None
        parser.add_argument(flag, dest=f.name, type=parse, default=default, choices=choices, help=meta["help"] + shown)


def from_args(config: type[T], args: argparse.Namespace) -> T:
    """``config`` built from parsed options (fields without an option keep their defaults)."""
    values = {}
    for f in fields(config):
        default = _default(f)
        if is_dataclass(default):
            values[f.name] = from_args(type(default), args)
        elif f.metadata.get("help") and hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return config(**values)
