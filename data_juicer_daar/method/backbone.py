"""The frozen, truncated LLM that embeds samples.

Only the first L decoder blocks are built and loaded (the rest are neither run nor kept in memory).
One forward pass gives two mean-pooled vectors per text, both over real tokens only:
``features`` (the model's final norm applied to block L's output; the probe's input) and
``embeddings`` (the token-embedding layer's output; stage 1's centroids and k-means).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from loguru import logger
from tqdm import tqdm

from ..errors import ConfigError
from .models import model_fingerprint, model_label, quiet_loading, resolve_model


@dataclass
class Encoded:
    features: np.ndarray  # (n, d) float32: block-L output, final norm, masked mean
    embeddings: np.ndarray  # (n, d) float32: token embeddings, masked mean


def pad_batch(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids and attention mask, both (b, t) with t the longest sequence."""
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return input_ids, mask


DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
AUTO = "auto"
#: what a ``dtype`` setting may name: a number format, or "auto" (the fastest safe one here)
DTYPE_CHOICES = (AUTO, *DTYPES)
#: /proc/cpuinfo flags of CPUs with native bfloat16 arithmetic (x86 AVX512-BF16 / AMX, Arm BF16)
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """This CPU's feature flags (Linux ``flags``/Arm ``Features`` lines; empty when unknown)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    return frozenset(
        f for line in text.splitlines() if line.split(":")[0].strip() in ("flags", "Features") for f in line.split(":", 1)[1].split()
    )


def native_bf16_cpu(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (False when unknown)."""
    return any(f in cpu_flags(cpuinfo) for f in BF16_FLAGS)


def resolve_dtype(dtype: str | None, device: str) -> str:
    """The number format a backbone runs in: ``dtype`` itself, or for "auto"/``None`` bfloat16 on
    CUDA and on CPUs with native bfloat16 (2.2-2.6x faster there, same selection: benchmarks §7), else
    float32 (plain AVX2 CPUs are slower in bfloat16). ``dtype`` is a checked setting (of ``DTYPE_CHOICES``)."""
    if dtype in (None, AUTO):
        return "bfloat16" if device.startswith("cuda") or (device == "cpu" and native_bf16_cpu()) else "float32"
    return dtype


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else "cuda" when present, else "cpu"; a CUDA device torch cannot see is
    a one-line ``ConfigError``."""
    if device and device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r}: no CUDA device is visible to torch {torch.__version__}; install a CUDA build of "
            "torch (docs/ops.md: GPU) or use --device cpu"
        )
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


class Backbone:
    """Frozen truncated decoder: ``encode(texts)`` -> :class:`Encoded`.

    :param model: ``None``/default alias or a local Hugging Face model directory.
    :param num_layers: L, the decoder blocks kept (paper: layers 1-10 work; default 3).
    :param max_length: tokens kept per text; longer texts are truncated.
    :param batch_size: texts per forward pass (batches are length-sorted, padded to their longest).
    :param device: "cpu", "cuda", "cuda:1", ...; ``None`` picks cuda when present.
    :param dtype: "bfloat16", "float16", "float32", or "auto"/``None``: see ``resolve_dtype``.
    :param trust_remote_code: allow model code from the model directory (off by default).
    """

    #: texts embedded by every Backbone in this process (lets tests prove work is not repeated)
    texts_embedded = 0

    def __init__(
        self,
        model: str | Path | None = None,
        num_layers: int = 3,
        max_length: int = 1024,
        batch_size: int = 32,
        device: str | None = None,
        trust_remote_code: bool = False,
        dtype: str | None = None,
    ) -> None:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        self.model_dir = resolve_model(model)
        self.model_label = model_label(self.model_dir)
        self.fingerprint = model_fingerprint(self.model_dir, num_layers)  # the tensors this backbone reads
        self.num_layers, self.max_length, self.batch_size = num_layers, max_length, batch_size
        self.device = pick_device(device)
        dtype_setting, self.dtype = dtype, resolve_dtype(dtype, self.device)  # the number format that ran, by name
        dtype = DTYPES[self.dtype]

        config = AutoConfig.from_pretrained(self.model_dir, trust_remote_code=trust_remote_code)
        total = config.num_hidden_layers
        if not 1 <= num_layers <= total:  # the settings' rule says >= 1; how many blocks there are only the model says
            raise ConfigError(f"num_layers={num_layers} but {self.model_dir.name} has only {total} decoder blocks (1 to {total})")
        config.num_hidden_layers = num_layers
        if isinstance(getattr(config, "layer_types", None), list):
            config.layer_types = config.layer_types[:num_layers]
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "right"  # real tokens never attend to padding in a causal model
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # blocks >= L are absent from the config, so their weights are skipped at load time
        with quiet_loading():
            self.model = AutoModel.from_pretrained(self.model_dir, config=config, dtype=dtype, trust_remote_code=trust_remote_code)
        self.model.eval().requires_grad_(False).to(self.device)
        self.dim = int(config.hidden_size)
        how = f"{'auto: ' if dtype_setting in (None, AUTO) else ''}{self.dtype}"
        logger.info(f"backbone {self.model_label}: {num_layers}/{total} blocks on {self.device} in {how}")

    def to(self, device: str) -> Backbone:
        """Move to ``device`` (Data-Juicer's model management calls this when it frees models)."""
        self.model.to(device)
        self.device = str(device)
        return self

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated at ``max_length`` (characters are pre-cut to bound cost)."""
        char_cap = self.max_length * 32  # a token is far shorter than 32 characters in practice
        enc = self.tokenizer(
            [t[:char_cap] for t in texts],
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=True,
        )
        return enc["input_ids"]

    @torch.inference_mode()
    def forward_ids(self, ids: Sequence[Sequence[int]], progress: bool = False) -> Encoded:
        """Embed pre-tokenized texts in length-sorted, dynamically padded batches; input order kept."""
        n, d = len(ids), self.dim
        features = np.zeros((n, d), dtype=np.float32)
        embeddings = np.zeros((n, d), dtype=np.float32)
        order = sorted(range(n), key=lambda i: -len(ids[i]))
        pad = self.tokenizer.pad_token_id
        starts = range(0, n, self.batch_size)
        for start in tqdm(starts, desc="embedding", unit="batch", disable=not progress, leave=False):
            chunk = [i for i in order[start : start + self.batch_size] if len(ids[i]) > 0]
            if not chunk:
                continue
            input_ids, mask = pad_batch([ids[i] for i in chunk], pad)
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            out = self.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
            weights = mask.unsqueeze(-1).float()  # (b, t, 1)
            count = weights.sum(1)  # (b, 1)
            feat = (out.last_hidden_state.float() * weights).sum(1) / count  # (b, d)
            emb = (out.hidden_states[0].float() * weights).sum(1) / count  # (b, d)
            features[chunk] = feat.cpu().numpy()
            embeddings[chunk] = emb.cpu().numpy()
        Backbone.texts_embedded += n
        return Encoded(features, embeddings)

    def encode(self, texts: Sequence[str], progress: bool = False) -> Encoded:
        """Embed texts; an empty text gets zero vectors (callers give such samples a defined result)."""
        ids = [row if text else [] for row, text in zip(self.tokenize(list(texts)), texts)]
        return self.forward_ids(ids, progress=progress)
