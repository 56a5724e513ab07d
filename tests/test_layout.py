"""The layout's promises: the method never imports Data-Juicer, every error is a ``DaarError`` of
``errors.py``, the selectors share one signature, and the names the tools spell match Data-Juicer's."""

import ast
import inspect
from pathlib import Path

import data_juicer_daar
from data_juicer_daar import errors, keys

PACKAGE = Path(data_juicer_daar.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_method_never_imports_data_juicer():
    files = sorted((PACKAGE / "method").rglob("*.py"))
    assert len(files) >= 10
    offenders = {p.name: sorted(m for m in _imports(p) if m.split(".")[0] == "data_juicer") for p in files}
    assert not {name: mods for name, mods in offenders.items() if mods}
    # and the Data-Juicer side does import it: the boundary is where the layout says
    assert any(m.startswith("data_juicer.") for p in (PACKAGE / "dj").rglob("*.py") for m in _imports(p))


def test_every_error_class_is_a_daar_error_defined_in_errors_py():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "").endswith(("Error", "Exception")) for b in node.bases):
                assert path.name == "errors.py", f"{path.relative_to(PACKAGE)} defines {node.name}"
    classes = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, Exception)]
    assert len(classes) >= 9 and all(issubclass(c, errors.DaarError) for c in classes)


def test_every_raise_in_the_package_is_a_daar_error():
    """A ``raise`` names an error class of ``errors.py`` (or re-raises what it caught): never a bare
    ``ValueError`` that ``daar`` would show as a traceback."""
    daar_errors = {c.__name__ for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.DaarError)}
    raises = 0
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue  # a bare ``raise`` passes on what an ``except`` caught
            raises += 1
            called = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = getattr(called, "id", None) or getattr(called, "attr", None)
            assert name in daar_errors, f"{path.relative_to(PACKAGE)}:{node.lineno} raises {ast.unparse(node.exc)[:60]}"
    assert raises >= 80  # the walk saw the package's raises


def _settings_classes() -> list[type]:
    from data_juicer_daar.dj.op_base import ScoringSettings
    from data_juicer_daar.method.selection import TopkSpec
    from data_juicer_daar.method.synthesis import SynthesisConfig
    from data_juicer_daar.method.text import TextFields
    from data_juicer_daar.method.training import HeadConfig, TrainConfig
    from data_juicer_daar.ops.daar_diversity_score_filter import ScoreRange
    from data_juicer_daar.tools.report.config import ReportConfig

    return [ScoringSettings, TopkSpec, ScoreRange, TextFields, TrainConfig, SynthesisConfig, HeadConfig, ReportConfig]


def test_every_setting_is_declared_with_its_rule_in_a_settings_class():
    """Each setting of ``daar train``, ``daar report`` and every op is a field of a ``Settings``
    dataclass with a rule (``options.option(check=...)``); nothing else checks settings by hand."""
    import dataclasses

    from data_juicer_daar.ops import DaarDiversityScoreFilter, DaarDomainProbeMapper, DaarTopkRewardSelector
    from data_juicer_daar.options import Rule, Settings

    declared, defaults = {}, {}
    for config in _settings_classes():
        assert issubclass(config, Settings)
        for f in dataclasses.fields(config):
            rule = f.metadata.get("check")
            if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
                continue  # a nested settings class, itself checked
            assert isinstance(rule, Rule) or f.name == "shares", f"{config.__name__}.{f.name} has no rule"
            declared[f.name] = rule
            defaults[f.name] = None if f.default is dataclasses.MISSING else f.default
    declared.update(text_format=declared["fmt"])  # the ops' name of TextFields.fmt
    defaults.update(text_format=defaults["fmt"])
    for op in (DaarDomainProbeMapper, DaarDiversityScoreFilter, DaarTopkRewardSelector):
        for klass in op.__mro__:
            if klass.__module__.startswith("data_juicer_daar") and "__init__" in vars(klass):
                for name in inspect.signature(klass.__init__).parameters:
                    if name not in ("self", "args", "kwargs", "probe_path", "domain_ratios"):
                        assert declared.get(name) is not None, f"{op.__name__}: parameter {name} has no declared rule"
                        given = inspect.signature(klass.__init__).parameters[name].default
                        assert given == defaults[name], (
                            f"{op.__name__}: {name} defaults to {given!r}, its declaration to {defaults[name]!r}"
                        )
    # the hand checks the rules replaced are gone from everywhere but options.py
    for path in PACKAGE.rglob("*.py"):
        if path.name != "options.py":
            assert "isinstance(value, bool)" not in path.read_text() or path.parent.name == "report", path


def test_both_selectors_have_one_signature():
    from data_juicer_daar.ops import DaarTopkRewardRaySelector, DaarTopkRewardSelector

    default, ray = inspect.signature(DaarTopkRewardSelector.__init__), inspect.signature(DaarTopkRewardRaySelector.__init__)
    assert default == ray and "coverage" in default.parameters
    assert default.parameters["score_source"].default == keys.DEFAULT_SCORE


def test_every_op_ranks_or_filters_by_the_same_default_score():
    from data_juicer_daar.ops import DaarDiversityScoreFilter, DaarTopkRewardSelector

    for op in (DaarDiversityScoreFilter, DaarTopkRewardSelector):
        assert inspect.signature(op.__init__).parameters["score_source"].default == keys.DEFAULT_SCORE


def test_the_row_fields_the_tools_spell_are_data_juicers():
    from data_juicer.utils.constant import Fields

    assert (keys.META, keys.STATS) == (Fields.meta, Fields.stats)
    assert keys.META.startswith(keys.DJ_PREFIX) and keys.STATS.startswith(keys.DJ_PREFIX)


def test_a_scored_batch_carries_every_value_the_reuse_rule_answers():
    import numpy as np

    from data_juicer_daar.dj.op_base import row_values
    from data_juicer_daar.dj.reuse import VALUE_NAMES
    from data_juicer_daar.dj.score_store import Stored

    one = Stored(np.zeros(1, int), np.zeros(1, int), np.zeros((1, 2), np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32))
    (row,) = row_values(one, [""], "tag", ["a", "b"])
    assert set(row) - {"bundle"} == set(VALUE_NAMES)


def test_report_names_the_parameter_of_an_unknown_score(tmp_path):
    import pytest

    from data_juicer_daar.errors import ConfigError
    from data_juicer_daar.tools.report.config import ReportConfig

    with pytest.raises(ConfigError, match="score must be one of predictor, probe_entropy or null, got 'reward'") as err:
        ReportConfig(pool="pool.jsonl", selection="selected.jsonl", out="report", score="reward")
    assert err.value.option == "score"


def test_the_cli_offers_exactly_the_scores_of_the_table():
    from data_juicer_daar.tools.cli import build_parser

    report = build_parser()._subparsers._group_actions[0].choices["report"]
    score = next(a for a in report._actions if a.dest == "score")
    assert tuple(score.choices) == tuple(keys.SCORES) and score.default is None  # the recipe's selector's, else the default
    assert f"else {keys.DEFAULT_SCORE}" in score.help
