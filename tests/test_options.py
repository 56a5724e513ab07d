"""The `daar` flags are derived from the config dataclasses: same defaults, every setting reachable."""

import dataclasses

import pytest

from data_juicer_daar.method.synthesis import SynthesisConfig
from data_juicer_daar.method.text import TextFields
from data_juicer_daar.method.training import HeadConfig, TrainConfig
from data_juicer_daar.options import from_args
from data_juicer_daar.tools.cli import EMBED_OPTIONS, build_parser

REQUIRED = ["train", "--corpus", "pool.jsonl", "--out", "probe"]


def test_no_flags_give_the_config_defaults():
    assert from_args(TrainConfig, build_parser().parse_args(REQUIRED)) == TrainConfig()


def test_every_setting_has_a_flag_that_reaches_it():
    args = build_parser().parse_args(
        [
            *REQUIRED,
            "--layers",
            "5",
            "--domains",
            "d.yaml",
            "--gen-batch",
            "3",
            "--no-calibrate",
            "--synthesize",
            "--hidden",
            "8,4",
            "--max-epochs",
            "7",
            "--format",
            "sharegpt",
            "--conversations-key",
            "chats",
            "--val-fraction",
            "0.3",
            "--top-p",
            "0.5",
        ]
    )
    config = from_args(TrainConfig, args)
    assert (config.num_layers, config.domains_file, config.synthesis.batch, config.calibrate, config.synthesize) == (
        5,
        "d.yaml",
        3,
        False,
        True,
    )
    assert (config.heads.hidden, config.heads.max_epochs, config.fields.fmt, config.fields.conversations_key) == (
        [8, 4],
        7,
        "sharegpt",
        "chats",
    )
    assert (config.val_fraction, config.synthesis.top_p) == (0.3, 0.5)
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for cls in (TrainConfig, HeadConfig, SynthesisConfig, TextFields):
        for f in dataclasses.fields(cls):
            if "help" in f.metadata:
                assert (f.metadata["flag"] or "--" + f.name.replace("_", "-")) in help_text, f.name


def test_embed_shares_the_train_defaults():
    args = build_parser().parse_args(["embed"])
    d = TrainConfig()
    assert (args.num_layers, args.max_length, args.batch_size, args.model) == (d.num_layers, d.max_length, d.batch_size, d.model)
    assert from_args(TextFields, args) == TextFields()
    assert "fields" in EMBED_OPTIONS


@pytest.mark.parametrize("bad", [["--hidden", "8,x"], ["--format", "xml"], ["--layers", "three"], ["--pseudo-labels", "magic"]])
def test_bad_flag_values_are_one_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*REQUIRED, *bad])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"daar train: error: argument {bad[0]}")
