"""Generated token tasks for the attention, transformer and memory templates.

Tokens are the ids 1..10; id 0 is padding (shown as ``.``): it never occurs
in the inputs and, as a target, means "nothing to answer at this step".
Every sample has a target token per step (task ``"sequence"``), so a model
ends in a softmax over the 11 ids at each step.
"""
from __future__ import annotations

import numpy as np

from models.data import DataError, RawData, register_builtin

VOCABULARY = 10
TOKEN_NAMES = ["."] + [str(i) for i in range(1, VOCABULARY + 1)]


def _tokens(rng, n: int, length: int) -> np.ndarray:
    return rng.integers(1, VOCABULARY + 1, size=(n, length)).astype(np.int32)


def _check(n: int, length: int) -> None:
    if int(n) < 10:
        raise DataError(f"n must be at least 10 samples; got {n}")
    if not 1 <= int(length) <= 64:
        raise DataError(f"length must be from 1 to 64 tokens; got {length}")


def _sequence_task(x, y, note: str, modality: str = "text") -> RawData:
    return RawData(x=x, y=y.astype(np.int32), task="sequence", class_names=list(TOKEN_NAMES),
                   notes=[note, "tokens are the ids 1..10; 0 is padding (never in the input)"],
                   modality=modality, target_name="target tokens")


def load_reverse(seed: int = 0, n: int = 5000, length: int = 8, **_) -> RawData:
    """Random sequences of ``length`` tokens; the target is the same sequence backwards."""
    _check(n, length)
    x = _tokens(np.random.default_rng([seed, 11]), int(n), int(length))
    return _sequence_task(x, x[:, ::-1], f"{n} random sequences of {length} tokens from 10; "
                                         "the target is the sequence reversed")


def load_sort(seed: int = 0, n: int = 8000, length: int = 8, **_) -> RawData:
    """Random sequences of ``length`` tokens; the target is the same tokens in sorted order."""
    _check(n, length)
    x = _tokens(np.random.default_rng([seed, 12]), int(n), int(length))
    return _sequence_task(x, np.sort(x, axis=1), f"{n} random sequences of {length} tokens from "
                                                  "10; the target is the sequence sorted")


def load_recall(seed: int = 0, n: int = 6000, pairs: int = 4, **_) -> RawData:
    """Associative recall: ``pairs`` (key, value) pairs, then each key again as a question.

    Two inputs of ``2 * pairs`` steps: ``keys`` holds the keys (distinct) and
    then the same keys in a new order as questions; ``values`` holds each
    key's value and then padding. The target is padding while the pairs are
    shown and, at each question, the value that was stored with that key.
    """
    _check(n, 2 * int(pairs))
    pairs = int(pairs)
    if not 1 <= pairs <= VOCABULARY:
        raise DataError(f"pairs must be from 1 to {VOCABULARY} (keys are distinct tokens); got {pairs}")
    rng = np.random.default_rng([seed, 13])
    n = int(n)
    keys = np.argsort(rng.random((n, VOCABULARY)), axis=1)[:, :pairs].astype(np.int32) + 1
    values = _tokens(rng, n, pairs)
    order = np.argsort(rng.random((n, pairs)), axis=1)
    asked = np.take_along_axis(keys, order, axis=1)
    answers = np.take_along_axis(values, order, axis=1)
    blank = np.zeros((n, pairs), np.int32)
    x = {"keys": np.concatenate([keys, asked], axis=1),
         "values": np.concatenate([values, blank], axis=1)}
    y = np.concatenate([blank, answers], axis=1)
    return _sequence_task(x, y, f"{n} sequences of {pairs} (key, value) pairs followed by the "
                                f"{pairs} keys in a new order; the target at each question is "
                                "the value stored with that key", modality="table")


register_builtin("reverse", task="sequence", shape=(8,), classes=len(TOKEN_NAMES),
                 description="random sequences of 8 tokens from 10, to be reversed (attention)",
                 load=load_reverse)
register_builtin("sort", task="sequence", shape=(8,), classes=len(TOKEN_NAMES),
                 description="random sequences of 8 tokens from 10, to be sorted (transformer)",
                 load=load_sort)
register_builtin("recall", task="sequence", shape={"keys": (8,), "values": (8,)},
                 classes=len(TOKEN_NAMES),
                 description="associative recall: 4 key-value pairs, then the keys again; "
                             "answer each with its value (memory networks)",
                 load=load_recall)
