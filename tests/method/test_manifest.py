"""The typed manifest: written and read back unchanged, and earlier bundles still load or are refused in one line."""

import json
import shutil

import numpy as np
import pytest

from data_juicer_daar.errors import BundleError
from data_juicer_daar.method.bundle import load_bundle, read_manifest
from data_juicer_daar.method.manifest import Manifest, digest
from data_juicer_daar.method.scoring import Scorer


def test_manifest_reads_back_as_written(tiny_bundle):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    manifest = read_manifest(tiny_bundle)
    assert isinstance(manifest, Manifest) and manifest.to_dict() == data
    assert list(manifest.to_dict()) == list(data)  # same keys in the same order
    assert manifest.backbone.num_layers == data["backbone"]["num_layers"] and manifest.domain_names == [d["name"] for d in data["domains"]]


def test_bundle_written_before_the_number_format_was_recorded_still_loads(tiny_bundle, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    data = json.loads((old / "manifest.json").read_text())
    del data["backbone"]["dtype"]  # format 2 as written before `model_dtype` existed
    data["manifest_sha256"] = digest(data)
    (old / "manifest.json").write_text(json.dumps(data))
    bundle = load_bundle(old)
    assert bundle.manifest.backbone.dtype is None and "dtype" not in bundle.manifest.to_dict()["backbone"]
    texts = ["Which is heavier, a kilo of feathers or a kilo of iron?", "def add(a, b): return a + b"]
    a, b = Scorer(tiny_bundle, dtype="float32").score(texts), Scorer(old, dtype="float32").score(texts)
    np.testing.assert_array_equal(a.probs, b.probs)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("metrics"), r"manifest is incomplete \(missing \['metrics'\]"),
        (lambda d: d.update(extra=1), r"manifest is incomplete \(missing nothing, unknown \['extra'\]\)"),
        (lambda d: d["backbone"].update(width=3), r"manifest is incomplete \(backbone: "),
    ],
)
def test_manifest_with_entries_missing_or_unknown_is_refused_in_one_line(tiny_bundle, tmp_path, change, message):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    data = json.loads((bad / "manifest.json").read_text())
    change(data)
    data["manifest_sha256"] = digest(data)  # re-signed: the typed reading must still catch it
    (bad / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message) as err:
        read_manifest(bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["text"].update(template="daar-text-v9"), "text template 'daar-text-v9'"),
        (lambda d: d["text"]["fields"].update(fmt="xml"), "text format 'xml'"),
        (lambda d: d["backbone"].update(pooling="last_token"), "pooling 'last_token'"),
        (lambda d: d["backbone"].update(dtype="int8"), "number format 'int8'"),
        (lambda d: d["backbone"].update(num_layers=0), "backbone sizes 0"),
        (lambda d: d["domains"][1].update(name=d["domains"][0]["name"]), "two domains of one name"),
        (lambda d: d["domains"][0].update(name=""), "domains \\["),
    ],
)
def test_a_forged_manifest_with_values_no_training_writes_is_refused(tiny_bundle, tmp_path, change, message):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    data = json.loads((bad / "manifest.json").read_text())
    change(data)
    data["manifest_sha256"] = digest(data)  # edited and re-signed: the digest alone cannot catch it
    (bad / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=message) as err:
        read_manifest(bad)
    assert "which this package never writes" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(text="v1"),
        lambda d: d.update(domains={"a": 1}),
        lambda d: d["backbone"].update(dtype=["float32"]),
        lambda d: d["domains"][0].update(name={"x": 1}),
        lambda d: d["text"].update(fields=None),
    ],
)
def test_a_forged_manifest_of_the_wrong_shapes_is_one_line_not_a_traceback(tiny_bundle, tmp_path, change):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_bundle, bad)
    data = json.loads((bad / "manifest.json").read_text())
    change(data)
    data["manifest_sha256"] = digest(data)
    (bad / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="which this package never writes"):
        read_manifest(bad)
