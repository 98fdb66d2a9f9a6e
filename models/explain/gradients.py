"""Gradient methods, written here on ``tf.GradientTape`` over the Keras 3 model itself.

* **Saliency**: the absolute gradient of the explained output with respect to
  each input value (with SmoothGrad: averaged over noisy copies).
* **Integrated gradients** (Sundararajan et al. 2017): the gradient averaged
  along the straight path from a baseline to the sample, times the
  difference; the attributions add up to f(sample) - f(baseline), and the
  gap is reported.
* **Grad-CAM** (Selvaraju et al. 2017): a convolution's feature maps weighted
  by the mean gradient of the output over each map, rectified, scaled to
  [0, 1] and stretched to the input's size.

Token inputs (integer ids) get no gradient; they are held at the sample's
values and their attributions are ``None``.
"""
from __future__ import annotations

import numpy as np

from models.explain.subject import ExplainError, Subject

IG_CHUNK = 64   # interpolation steps per model call


def _float_inputs(subject: Subject) -> list[int]:
    return [i for i, info in enumerate(subject.inputs) if not info.tokens]


def needs_float_input(subject: Subject, title: str) -> str | None:
    if not _float_inputs(subject):
        names = ", ".join(repr(i.name) for i in subject.inputs)
        return (f"{title} needs an input of numbers; {names} holds token ids, which have no "
                "gradient (use LIME, kernel SHAP or attention)")
    return None


def gradients(head, xs: list[np.ndarray], wrt: list[int]) -> list[np.ndarray]:
    """d head / d xs[i] for i in ``wrt``, row by row (rows do not interact at inference)."""
    from models import backend

    tf = backend.tf()
    tensors = [tf.convert_to_tensor(x) for x in xs]
    with tf.GradientTape() as tape:
        for i in wrt:
            tape.watch(tensors[i])
        total = tf.reduce_sum(head(tensors, training=False))
    grads = tape.gradient(total, [tensors[i] for i in wrt])
    return [np.zeros(xs[i].shape, np.float32) if g is None else np.asarray(g, dtype=np.float32)
            for i, g in zip(wrt, grads)]


def saliency(subject: Subject, xs, head, options: dict, state) -> dict:
    wrt = _float_inputs(subject)
    smooth = int(options.get("smooth", 0))
    if smooth <= 0:
        grads = gradients(head, xs, wrt)
    else:
        rng = np.random.default_rng(int(options.get("seed", 0)))
        noise = float(options.get("noise", 0.15))
        total = [np.zeros(xs[i].shape, np.float64) for i in wrt]
        for _ in range(smooth):
            state.checkpoint()
            noisy = list(xs)
            for i in wrt:
                spread = float(np.ptp(subject.background[i])) or 1.0
                noisy[i] = (xs[i] + rng.normal(0.0, noise * spread, xs[i].shape)).astype(xs[i].dtype)
            for t, g in zip(total, gradients(head, noisy, wrt)):
                t += g
        grads = [t / smooth for t in total]
    out: list = [None] * len(xs)
    for i, g in zip(wrt, grads):
        out[i] = np.abs(g[0])
    return {"attributions": out}


def integrated_gradients(subject: Subject, xs, head, options: dict, state) -> dict:
    wrt = _float_inputs(subject)
    steps = max(2, int(options.get("steps", 32)))
    base = [subject.baseline[i] if options.get("baseline") == "mean" else
            np.zeros_like(xs[i]) for i in range(len(xs))]
    alphas = (np.arange(steps, dtype=np.float64) + 0.5) / steps  # midpoints: exact for linear paths
    total = {i: np.zeros(xs[i].shape[1:], np.float64) for i in wrt}
    for start in range(0, steps, IG_CHUNK):
        state.checkpoint()
        a = alphas[start:start + IG_CHUNK]
        path = []
        for i, x in enumerate(xs):
            if i in total:
                shape = (len(a),) + (1,) * (x.ndim - 1)
                path.append((base[i] + a.reshape(shape) * (x - base[i])).astype(x.dtype))
            else:
                path.append(np.repeat(x, len(a), axis=0))
        for i, g in zip(wrt, gradients(head, path, wrt)):
            total[i] += g.sum(0)
    out: list = [None] * len(xs)
    for i in wrt:
        out[i] = (total[i] / steps) * (xs[i][0] - base[i][0])
    f_x = float(subject.predict(xs, head)[0, 0])
    f_b = float(subject.predict([base[i] if i in total else xs[i] for i in range(len(xs))], head)[0, 0])
    gap = f_x - f_b - float(sum(np.sum(out[i]) for i in wrt))
    return {"attributions": out,
            "extras": {"f_sample": f_x, "f_baseline": f_b, "completeness_gap": gap}}


# --------------------------------------------------------------------------- Grad-CAM


def conv_layers(model) -> list[str]:
    """The convolution layers (1-D and 2-D) at the model's top level, in order."""
    names = []
    for layer in model.layers:
        if "Conv" not in type(layer).__name__ or len(layer._inbound_nodes) != 1:
            continue
        rank = len(layer.output.shape)
        if rank in (3, 4):
            names.append(layer.name)
    return names


def nested_conv(model) -> str | None:
    """The name of a sub-model holding convolutions, if the top level has none."""
    from models import backend

    keras = backend.keras()
    for layer in model.layers:
        if isinstance(layer, keras.Model) and (conv_layers(layer) or nested_conv(layer)):
            return layer.name
    return None


def gradcam_unavailable(subject: Subject) -> str | None:
    if conv_layers(subject.model):
        return None
    inner = nested_conv(subject.model)
    if inner:
        return (f"Grad-CAM looks at the model's own convolution layers; they sit inside the "
                f"sub-model {inner!r} (ungroup it, or use saliency)")
    return "Grad-CAM needs a convolution layer (Conv1D or Conv2D); this model has none"


def source_input(model, tensor) -> int:
    """Which of the model's inputs ``tensor`` is computed from (the first one found)."""
    names = [t.name for t in model.inputs]
    seen, todo = set(), [tensor]
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        history = getattr(t, "_keras_history", None)
        if history is None:
            continue
        if type(history.operation).__name__ == "InputLayer" and t.name in names:
            return names.index(t.name)
        node = history.operation._inbound_nodes[history.node_index]
        todo.extend(node.input_tensors)
    raise ExplainError("the convolution does not depend on any model input")


def gradcam(subject: Subject, xs, head, options: dict, state) -> dict:
    from models import backend

    keras = backend.keras()
    tf = backend.tf()
    layers = conv_layers(subject.model)
    name = options.get("layer") or layers[-1]
    if name not in layers:
        raise ExplainError(f"{name!r} is not a convolution layer of the model; choose one of "
                           + ", ".join(layers))
    conv = subject.model.get_layer(name)

    def make():
        with backend.keras_lock:
            return keras.Model(subject.model.inputs, [conv.output, head.output]), \
                source_input(subject.model, conv.output)

    probe, src = subject.memo(f"gradcam:{name}:{id(head)}", make)
    with tf.GradientTape() as tape:
        maps, out = probe([tf.convert_to_tensor(x) for x in xs], training=False)
        tape.watch(maps)
        score = tf.reduce_sum(out)
    grads = np.asarray(tape.gradient(score, maps))[0]
    maps = np.asarray(maps)[0]
    spatial = tuple(range(maps.ndim - 1))
    weights = grads.mean(axis=spatial)
    cam = np.maximum((maps * weights).sum(-1), 0.0)
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else cam
    shape = subject.inputs[src].shape
    cam = _stretch(cam, shape[:cam.ndim])
    cam = np.broadcast_to(cam.reshape(cam.shape + (1,) * (len(shape) - cam.ndim)), shape).copy()
    out_attr: list = [None] * len(xs)
    out_attr[src] = cam.astype(np.float32)
    extras = {"layer": name}
    if peak <= 0:
        extras["note"] = "no feature map of this layer raises the output here (the map is empty)"
    return {"attributions": out_attr, "extras": extras}


def _stretch(cam: np.ndarray, size: tuple) -> np.ndarray:
    """Bilinear resize of a 1-D or 2-D map to ``size``."""
    if cam.shape == tuple(size):
        return cam
    if cam.ndim == 1:
        src = (np.arange(cam.shape[0]) + 0.5) / cam.shape[0]
        dst = (np.arange(size[0]) + 0.5) / size[0]
        return np.interp(dst, src, cam)
    from models import backend

    tf = backend.tf()
    return np.asarray(tf.image.resize(cam[..., None], size, method="bilinear"))[..., 0]


__all__ = ["saliency", "integrated_gradients", "gradcam", "conv_layers", "gradcam_unavailable",
           "needs_float_input", "gradients"]
