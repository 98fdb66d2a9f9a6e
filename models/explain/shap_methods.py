"""SHAP values with the ``shap`` package (0.51), on the Keras 3 model itself.

Routes, and why (measured with shap 0.51, Keras 3.15, TensorFlow 2.21):

* **GradientExplainer** (expected gradients) and **DeepExplainer** (DeepLIFT
  rules) accept Keras 3 models: shap checks ``isinstance(model,
  tf.keras.Model)`` and under TensorFlow 2.21 ``tf.keras`` *is* Keras 3. They
  refuse the ``tf_keras`` twin of :mod:`models.twin` (``<class
  'tf_keras...Functional'> is not currently a supported model type``), so the
  twin is no route here. Both get the *head* (:meth:`Subject.head`): the
  model cut to the explained class, ``[batch, 1]``.
* DeepExplainer replaces the gradient of every TensorFlow op on the path from
  the inputs to the output by its own rule and knows a fixed list of ops. An
  op outside that list (the ``While`` loop of an LSTM, ``Erf`` in GELU,
  ``Einsum`` in attention) fails deep inside TensorFlow, and a failure leaves
  ``tensorflow.python.eager.execute.record_gradient`` pointing at shap's
  replacement, which breaks every later gradient in the process. So the ops
  of the head's traced graph are checked first (the method is unavailable
  with the ops named) and the hook is put back after every call.
* **KernelExplainer** needs only predictions, so it explains any model. It
  works on feature groups (:meth:`Subject.groups`): a group switched off
  takes a reference's values (several background rows for tables, averaged;
  the mean of the background, or the padding id for tokens, otherwise).
* **PartitionExplainer** with ``shap.maskers.Image`` (blur, inpainting or a
  constant): a hierarchy of image regions, for image inputs. Other inputs
  are held at the sample's values. The first call compiles shap's numba code
  (about 15 s once per process).
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np

from models.explain.subject import ExplainError, Subject
from models.runner import Cancelled


@contextlib.contextmanager
def _quiet():
    # shap warns about the TensorFlow version on every explainer, and Keras about
    # list-vs-single inputs on every call shap makes; neither is the user's concern.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _shap():
    with _quiet():
        import shap
    return shap


def _per_input(values, n_inputs: int) -> list[np.ndarray]:
    """shap's output (an array, or a list per input) as one array per input, sample 0, last axis cut."""
    parts = values if isinstance(values, list) and n_inputs > 1 else [values]
    out = []
    for v in parts:
        v = np.asarray(v[0] if isinstance(v, list) else v, dtype=np.float64)
        out.append(v[0, ..., 0] if v.ndim >= 2 and v.shape[-1] == 1 else v[0])
    return out


def _tokens_reason(subject: Subject, title: str) -> str | None:
    tokens = [i.name for i in subject.inputs if i.tokens]
    if tokens:
        return (f"{title} follows gradients into every input; {', '.join(map(repr, tokens))} "
                "holds token ids, which have none (use kernel SHAP, LIME or attention)")
    return None


# --------------------------------------------------------------------------- GradientExplainer


def gradient_unavailable(subject: Subject) -> str | None:
    return _tokens_reason(subject, "The GradientExplainer")


def gradient_shap(subject: Subject, xs, head, options: dict, state) -> dict:
    shap = _shap()
    n_bg = max(1, int(options.get("background", 50)))
    background = [b[:n_bg] for b in subject.background]
    single = len(xs) == 1
    with _quiet():
        explainer = subject.memo(f"gshap:{id(head)}:{n_bg}", lambda: shap.GradientExplainer(
            head, background[0] if single else background, batch_size=50))
        values = explainer.shap_values(xs[0] if single else list(xs),
                                       nsamples=int(options.get("nsamples", 200)),
                                       rseed=int(options.get("seed", 0)))
    return {"attributions": _per_input(values, len(xs))}


# --------------------------------------------------------------------------- DeepExplainer


def _traced_ops(head, subject: Subject) -> list[str]:
    """Op types on the path from the inputs to the head's output, in its traced graph."""
    from models import backend

    tf = backend.tf()
    specs = [tf.TensorSpec((None,) + tuple(i.shape), tf.float32) for i in subject.inputs]

    @tf.function
    def run(*xs):
        return head(list(xs), training=False)

    graph = run.get_concrete_function(*specs).graph
    placeholders = {t.name for t in graph.inputs[:len(specs)]}
    reached, types = set(), []
    todo = [op for op in graph.get_operations() if op.outputs and op.outputs[0].name in placeholders]
    while todo:
        op = todo.pop()
        if op.name in reached:
            continue
        reached.add(op.name)
        if op.type != "Placeholder":
            types.append((op.type, op.outputs[0].dtype.is_floating if op.outputs else False))
        for out in op.outputs:
            todo.extend(out.consumers())
    return types


# shap registers a rule for these ops that only holds for element-wise ops; the op
# itself reduces (Max is reduce_max: global max pooling), so the rule fails on it.
_BROKEN_RULES = frozenset({"Max"})


def deep_unavailable(subject: Subject) -> str | None:
    reason = _tokens_reason(subject, "The DeepExplainer")
    if reason:
        return reason

    def check():
        from shap.explainers._deep.deep_tf import op_handlers
        from tensorflow.python.framework import ops as tf_ops

        registry = tf_ops._gradient_registry._registry
        missing = sorted({t for t, floating in _traced_ops(subject.head(0), subject)
                          if floating and (t in _BROKEN_RULES or (
                              t not in op_handlers and t in registry
                              and registry[t]["type"] is not None))})
        if missing:
            return ("the DeepExplainer of shap 0.51 has no rule for the TensorFlow op"
                    + ("s " if len(missing) > 1 else " ") + ", ".join(missing[:6])
                    + " in this model (recurrent loops, GELU, attention, max pooling over "
                      "a whole axis...); use the GradientExplainer (shap) or kernel SHAP")
        return None

    with _quiet():
        return subject.memo("deep-ops", check)


@contextlib.contextmanager
def _restore_tape_hook():
    # shap swaps TensorFlow's record_gradient for its own while it traces and only
    # swaps it back when tracing succeeds; put it back whatever happens.
    from tensorflow.python.eager import execute

    original = execute.record_gradient
    try:
        yield
    finally:
        execute.record_gradient = original


def deep_shap(subject: Subject, xs, head, options: dict, state) -> dict:
    shap = _shap()
    n_bg = max(1, int(options.get("background", 50)))
    background = [b[:n_bg].astype(np.float32) for b in subject.background]
    try:
        with _quiet(), _restore_tape_hook():
            explainer = subject.memo(f"dshap:{id(head)}:{n_bg}",
                                     lambda: shap.DeepExplainer(head, background))
            values = explainer.shap_values([x.astype(np.float32) for x in xs], check_additivity=False)
    except Cancelled:
        raise
    except Exception as exc:  # TensorFlow wraps the LookupError in its StagingError
        # An op whose rule does not fit this use (the check cannot foresee every one).
        first = " ".join(str(exc).split())[:200]
        raise ExplainError(f"the DeepExplainer of shap 0.51 fails on this model ({first}); use "
                           "the GradientExplainer (shap) or kernel SHAP") from None
    attributions = _per_input(values, len(xs))
    expected = float(np.asarray(explainer.expected_value).ravel()[0])
    f_x = float(subject.predict(xs, head)[0, 0])
    gap = f_x - expected - float(sum(a.sum() for a in attributions))
    return {"attributions": attributions,
            "extras": {"base_value": expected, "f_sample": f_x, "additivity_gap": gap}}


# --------------------------------------------------------------------------- KernelExplainer


def _references(subject: Subject, count: int) -> list[np.ndarray]:
    """What a switched-off group takes: ``count`` background rows, or the baseline (count 1)."""
    if count <= 1:
        return [b for b in subject.baseline]
    return [np.zeros_like(b[:count]) if info.tokens else b[:count]
            for b, info in zip(subject.background, subject.inputs)]


def mix(xs, refs, ids_list, offsets, z: np.ndarray) -> list[np.ndarray]:
    """Rows where each group is the sample's (z = 1) or each reference's (z = 0).

    Returns one array per input with ``len(z) * len(refs)`` rows (z-major).
    """
    k = len(refs[0])
    out = []
    for x, ref, ids, off in zip(xs, refs, ids_list, offsets):
        if off < 0:  # an input that is not switched keeps the sample's values
            out.append(np.repeat(x, len(z) * k, axis=0))
            continue
        on = z[:, ids + off].astype(bool)                     # [m, *shape]
        on = np.repeat(on, k, axis=0)
        tiled_ref = np.tile(ref, (len(z),) + (1,) * (ref.ndim - 1))
        out.append(np.where(on, x, tiled_ref).astype(x.dtype))
    return out


def group_layout(subject: Subject, which: list[int] | None = None):
    which = list(range(len(subject.inputs))) if which is None else which
    ids_list, offsets, labels, total = [], [], [], 0
    for i in range(len(subject.inputs)):
        ids, names = subject.groups(i)
        ids_list.append(ids)
        offsets.append(total)
        if i in which:
            labels += names
            total += len(names)
        else:
            offsets[-1] = -1  # never switched: always the sample's values
    return ids_list, offsets, labels, total


def spread(values: np.ndarray, subject: Subject, ids_list, offsets) -> list[np.ndarray | None]:
    """Group values back onto the inputs' elements (each element gets its group's value)."""
    out = []
    for ids, off in zip(ids_list, offsets):
        out.append(None if off < 0 else np.asarray(values, dtype=np.float64)[ids + off])
    return out


def kernel_shap(subject: Subject, xs, head, options: dict, state) -> dict:
    shap = _shap()
    refs_opt = options.get("references", "auto")
    tables_only = all(i.modality == "table" for i in subject.inputs)
    count = (8 if tables_only else 1) if refs_opt in (None, "auto") else int(refs_opt)
    refs = _references(subject, count)
    ids_list, offsets, labels, total = group_layout(subject)
    k = len(refs[0])

    def f(z):
        rows = mix(xs, refs, ids_list, offsets, np.asarray(z))
        pred = subject.predict(rows, head, state)[:, 0]
        return pred.reshape(len(z), k).mean(1)

    nsamples = int(options.get("nsamples", 0)) or min(2 * total + 512, 2048)
    with _quiet():
        explainer = shap.KernelExplainer(f, np.zeros((1, total)), link="identity")
        phi = explainer.shap_values(np.ones((1, total)), nsamples=nsamples, silent=True)
    phi = np.asarray(phi, dtype=np.float64).reshape(-1)[:total]
    return {"attributions": spread(phi, subject, ids_list, offsets),
            "extras": {"base_value": float(np.asarray(explainer.expected_value).ravel()[0]),
                       "groups": labels, "group_values": phi.tolist()}}


# --------------------------------------------------------------------------- Partition


_partition_compiled = False  # shap's numba code compiles on the first Partition call


def image_inputs(subject: Subject) -> list[int]:
    return [i for i, info in enumerate(subject.inputs)
            if info.modality == "image" and not info.tokens and len(info.shape) in (2, 3)]


def partition_unavailable(subject: Subject) -> str | None:
    if not image_inputs(subject):
        return ("the Partition explainer here masks image regions (shap's image masker); "
                "the model has no image input (use kernel SHAP)")
    return None


def partition_shap(subject: Subject, xs, head, options: dict, state, target: int) -> dict:
    shap = _shap()
    images = image_inputs(subject)
    name = options.get("input")
    src = next((i for i in images if subject.inputs[i].name == name), images[0])
    shape = subject.inputs[src].shape
    shape3 = shape if len(shape) == 3 else shape + (1,)
    side = min(shape3[0], shape3[1])
    blur = max(1, (side // 4) | 1)
    masks = {"blur": f"blur({blur},{blur})", "inpaint": "inpaint_telea", "zeros": 0.0}
    mask_value = masks.get(options.get("masker", "blur"))
    if mask_value is None:
        raise ExplainError(f"masker {options.get('masker')!r} is not one of {', '.join(masks)}")
    full = subject.head(None, output=options.get("output", 0), position=options.get("position"))
    global _partition_compiled
    if not _partition_compiled:
        state.progress(state.fraction, "the first Partition run: shap compiles its numba code "
                                       "(about 15 s, once)")

    def f(imgs):
        imgs = np.asarray(imgs, dtype=np.float32).reshape((-1,) + shape)
        rows = [imgs if i == src else np.repeat(x, len(imgs), axis=0) for i, x in enumerate(xs)]
        return subject.predict(rows, full, state)

    with _quiet():
        masker = shap.maskers.Image(mask_value, shape3)
        explainer = shap.PartitionExplainer(f, masker)
        result = explainer(xs[src].reshape((1,) + shape3).astype(np.float64),
                           max_evals=int(options.get("max_evals", 500)), batch_size=100,
                           outputs=np.array([target]), silent=True)
    _partition_compiled = True
    values = np.asarray(result.values, dtype=np.float64)[0, ..., 0].reshape(shape)
    out: list = [None] * len(xs)
    out[src] = values
    return {"attributions": out,
            "extras": {"base_value": float(np.asarray(result.base_values).ravel()[0])}}


__all__ = ["gradient_shap", "deep_shap", "kernel_shap", "partition_shap", "deep_unavailable",
           "gradient_unavailable", "partition_unavailable", "mix", "group_layout", "spread"]
