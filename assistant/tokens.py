"""Small helpers over llama.cpp's tokens and next-token distribution."""

from __future__ import annotations

from typing import Any


def shared_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens two token lists share."""
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def next_probabilities(llama: Any) -> Any:
    """The next token's probabilities after what llama.cpp last evaluated."""
    import numpy as np

    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
    probs = np.exp(logits.astype(np.float64) - logits.max())
    return probs / probs.sum()
