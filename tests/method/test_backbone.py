import numpy as np
import pytest

from data_juicer_daar.method.backbone import Backbone

TEXTS = [
    "Solve 3x + 7 = 22 for x.",
    "def add(a, b):\n    return a + b",
    "All cats are animals. Tom is a cat.",
    "Why do people carry umbrellas? " * 12,
    "短い 🌍 text",
]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return Backbone(tiny_model, num_layers=2, max_length=64, batch_size=2, dtype="float32")  # exact pooling math


def test_only_first_l_blocks_are_kept(tiny):
    assert len(tiny.model.layers) == 2
    assert tiny.model.config.num_hidden_layers == 2


def test_features_match_manual_masked_mean(tiny):
    import torch

    enc = tiny.encode(TEXTS[:1])
    ids = torch.tensor([tiny.tokenize(TEXTS[:1])[0]])
    with torch.inference_mode():
        out = tiny.model(input_ids=ids, output_hidden_states=True)
    np.testing.assert_allclose(enc.features[0], out.last_hidden_state[0].mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(enc.embeddings[0], out.hidden_states[0][0].mean(0).numpy(), atol=1e-5)


def test_vector_does_not_depend_on_batchmates(tiny):
    together = tiny.encode(TEXTS)
    for i, text in enumerate(TEXTS):
        alone = tiny.encode([text])
        np.testing.assert_allclose(alone.features[0], together.features[i], atol=1e-4)
        np.testing.assert_allclose(alone.embeddings[0], together.embeddings[i], atol=1e-4)


def test_input_order_is_kept_despite_length_sorting(tiny):
    forward = tiny.encode(TEXTS).features
    backward = tiny.encode(TEXTS[::-1]).features[::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-4)


def test_truncation_at_max_length(tiny_model):
    short = Backbone(tiny_model, num_layers=2, max_length=8)
    long_text = "Why do people carry umbrellas on rainy days? " * 50
    assert len(short.tokenize([long_text])[0]) == 8
    prefix_ids = short.tokenize([long_text])[0]
    np.testing.assert_allclose(short.forward_ids([prefix_ids]).features, short.encode([long_text]).features, atol=1e-6)


def test_huge_text_is_cut_before_tokenizing(tiny):
    enc = tiny.encode(["x" * 5_000_000])
    assert enc.features.shape == (1, tiny.dim) and np.isfinite(enc.features).all()


def test_empty_text_gets_zero_vectors(tiny):
    enc = tiny.encode(["", TEXTS[0]])
    assert not enc.features[0].any() and enc.features[1].any()


def test_counter_counts_texts(tiny):
    before = Backbone.texts_embedded
    tiny.encode(TEXTS[:3])
    assert Backbone.texts_embedded == before + 3


def test_invalid_settings(tiny_model):
    with pytest.raises(ValueError, match="has only 4 decoder blocks"):
        Backbone(tiny_model, num_layers=5)
    with pytest.raises(ValueError, match="has only 4 decoder blocks"):
        Backbone(tiny_model, num_layers=0)


@pytest.mark.slow
def test_default_model_backbone():
    backbone = Backbone(num_layers=3, max_length=128, batch_size=2)
    assert backbone.model_label == "smollm2-135m-instruct" and backbone.dim == 576
    assert len(backbone.model.layers) == 3
    together = backbone.encode(TEXTS)
    alone = backbone.encode(TEXTS[3:4])
    np.testing.assert_allclose(alone.features[0], together.features[3], atol=1e-4)
    # the math question sits closer to another math question than to code
    math2 = backbone.encode(["Solve 5y - 2 = 13 for y."]).features[0]

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cos(together.features[0], math2) > cos(together.features[1], math2)


def test_auto_number_format_follows_the_hardware(tmp_path):
    from data_juicer_daar.method.backbone import native_bf16_cpu, resolve_dtype

    bf16 = tmp_path / "bf16"
    bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")
    assert native_bf16_cpu(str(bf16)) and native_bf16_cpu(str(arm))
    assert not native_bf16_cpu(str(avx2)) and not native_bf16_cpu(str(tmp_path / "absent"))
    assert resolve_dtype("auto", "cuda") == resolve_dtype(None, "cuda:1") == "bfloat16"
    assert resolve_dtype("auto", "cpu") == ("bfloat16" if native_bf16_cpu() else "float32")
    assert resolve_dtype("float32", "cuda") == "float32" and resolve_dtype("float16", "cpu") == "float16"
