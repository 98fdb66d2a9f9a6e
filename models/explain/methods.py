"""The explanation methods, what each needs, and the one entry point that runs them.

:data:`METHODS` holds every method by its command-line name. :func:`available`
says for a model and its data which methods apply (``None``) and why the
others do not (a sentence), without running any. :func:`explain` runs one
method on some samples through a :class:`~models.runner.RunState` (progress
per sample, cancel at checkpoints); :func:`explain_job` wraps it for
:func:`models.runner.run` and the desktop's ``RunWorker``.

Results are cached per sample under (model graph and weights, background,
sample, method, options, target): explaining the same sample again, or one
more sample, costs only what is new.
"""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from models.explain import attention_method, gradients, lime_methods, shap_methods
from models.explain.result import Explanation, SampleResult
from models.explain.subject import ExplainError, Subject

CACHE_SIZE = 512  # sample results kept


@dataclass(frozen=True)
class Option:
    """A method's option, described for a form (the panel) and for ``--option KEY=VALUE``.

    Attributes:
        kind: ``"int"``, ``"float"`` or ``"choice"``.
        choices: for ``"choice"``: the values, or a function of the subject
            returning them (a model's convolution layers...).
        zero: what 0 means for an ``"int"`` whose 0 is "choose for me" (shown instead of 0).
    """

    name: str
    label: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple | Callable | None = None
    help: str = ""
    zero: str = ""

    def choices_for(self, subject: Subject | None) -> list:
        if callable(self.choices):
            return list(self.choices(subject)) if subject is not None else []
        return list(self.choices or [])

    def parse(self, text: str):
        if self.kind == "int":
            return int(text)
        if self.kind == "float":
            return float(text)
        return text


@dataclass(frozen=True)
class Method:
    """One explanation method.

    Attributes:
        name: the command-line name.
        title: the method in words.
        route: the library and explainer it runs, for the report.
        unavailable: ``f(subject) -> reason or None``.
        run: ``f(subject, xs, head, options, state[, target]) -> dict`` with
            ``attributions`` (and ``attention``, ``extras``).
        options: what can be set.
        whole_head: ``run`` gets the head with every class (and the target),
            for explainers that want all class scores (LIME, Partition).
        signed: attributions have a sign (saliency and Grad-CAM do not).
    """

    name: str
    title: str
    route: str
    unavailable: Callable[[Subject], str | None]
    run: Callable
    options: tuple[Option, ...] = ()
    whole_head: bool = False
    signed: bool = True
    needs_target: bool = True

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def defaults(self, subject: Subject | None = None) -> dict:
        out = {}
        for o in self.options:
            if o.kind == "choice" and callable(o.choices) and o.default is None:
                choices = o.choices_for(subject)
                out[o.name] = choices[-1] if choices else None
            else:
                out[o.name] = o.default
        return out


def _image_inputs(subject):
    return [subject.inputs[i].name for i in shap_methods.image_inputs(subject)]


def _input_names(subject):
    return [i.name for i in subject.inputs]


_BACKGROUND = Option("background", "Background samples", "int", 50, 1, 1000,
                     help="training samples to integrate over; more is slower and steadier")
_SEED = Option("seed", "Seed", "int", 0, 0, 2**31 - 1)

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("shap", "SHAP (GradientExplainer)",
           "shap.GradientExplainer (expected gradients) on the Keras 3 model's head",
           shap_methods.gradient_unavailable, shap_methods.gradient_shap,
           (_BACKGROUND, Option("nsamples", "Samples per explanation", "int", 200, 10, 5000), _SEED)),
    Method("deep-shap", "SHAP (DeepExplainer)",
           "shap.DeepExplainer (DeepLIFT rules on TensorFlow ops) on the Keras 3 model's head",
           shap_methods.deep_unavailable, shap_methods.deep_shap, (_BACKGROUND,)),
    Method("kernel-shap", "SHAP (KernelExplainer)",
           "shap.KernelExplainer over feature groups (columns, patches, steps, tokens); "
           "any model, predictions only",
           lambda s: None, shap_methods.kernel_shap,
           (Option("nsamples", "Model evaluations", "int", 0, 0, 100000,
                   help="auto: 2 x groups + 512 (at most 2048)", zero="auto"),
            Option("references", "References", "choice", "auto", choices=("auto", "1", "4", "8", "16"),
                   help="background rows a hidden group takes (auto: 8 for tables, else the mean)"))),
    Method("partition-shap", "SHAP (Partition, image masker)",
           "shap.PartitionExplainer with shap.maskers.Image; the other inputs held fixed",
           shap_methods.partition_unavailable, shap_methods.partition_shap,
           (Option("masker", "Hidden regions", "choice", "blur", choices=("blur", "inpaint", "zeros")),
            Option("max_evals", "Model evaluations", "int", 500, 50, 20000),
            Option("input", "Image input", "choice", None, choices=_image_inputs)),
           whole_head=True),
    Method("lime", "LIME",
           "lime: LimeTabularExplainer, RecurrentTabularExplainer, LimeImageExplainer (patches) "
           "or LimeTextExplainer (token positions), by the input's kind",
           lambda s: None, lime_methods.lime,
           (Option("num_samples", "Perturbed samples", "int", 1000, 50, 20000),
            Option("input", "Explained input", "choice", None, choices=_input_names), _SEED),
           whole_head=True),
    Method("gradcam", "Grad-CAM",
           "tf.GradientTape on the Keras 3 model: a convolution's maps weighted by their mean gradient",
           gradients.gradcam_unavailable, gradients.gradcam,
           (Option("layer", "Convolution layer", "choice", None,
                   choices=lambda s: gradients.conv_layers(s.model),
                   help="the last convolution unless chosen"),), signed=False),
    Method("saliency", "Saliency map",
           "tf.GradientTape on the Keras 3 model: |d output / d input| (SmoothGrad optional)",
           lambda s: gradients.needs_float_input(s, "A saliency map"), gradients.saliency,
           (Option("smooth", "SmoothGrad copies", "int", 0, 0, 200, help="off: the plain gradient",
                   zero="off"),
            Option("noise", "SmoothGrad noise", "float", 0.15, 0.0, 1.0,
                   help="noise sd as a share of the data's range"), _SEED), signed=False),
    Method("integrated-gradients", "Integrated gradients",
           "tf.GradientTape on the Keras 3 model: gradients along the path from a baseline",
           lambda s: gradients.needs_float_input(s, "Integrated gradients"),
           gradients.integrated_gradients,
           (Option("steps", "Steps", "int", 32, 2, 1024),
            Option("baseline", "Baseline", "choice", "zeros", choices=("zeros", "mean")))),
    Method("attention", "Attention maps",
           "models.attention.attention_maps: each attention layer called again on its own "
           "inputs with return_attention_scores=True",
           attention_method.attention_unavailable, attention_method.attention,
           (Option("layers", "Attention layers", "choice", "all",
                   choices=lambda s: ["all"] + attention_method.layer_names(s),
                   help="every attention call, or one layer's"),),
           needs_target=False),
)}

#: Options every method understands besides its own.
COMMON_OPTIONS = ("target", "position", "output")


def available(model, dataset=None, *, subject: Subject | None = None) -> dict[str, str | None]:
    """For each method: None when it applies to ``model`` and ``dataset``, else why not.

    Nothing is explained; DeepExplainer's check traces the model once.
    """
    subject = subject or Subject(model, dataset)
    out = {}
    for name, method in METHODS.items():
        try:
            out[name] = method.unavailable(subject)
        except ExplainError as exc:
            out[name] = str(exc)
        except Exception as exc:  # a check that breaks must not hide the other methods
            out[name] = f"cannot tell whether it applies: {' '.join(str(exc).split())[:200]}"
    return out


# --------------------------------------------------------------------------- cache

_cache: OrderedDict[str, SampleResult] = OrderedDict()
_cache_lock = threading.Lock()
_run_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _cache_key(subject: Subject, method: str, options: dict, index: int) -> str:
    return json.dumps([subject.model_digest, subject.data_digest, subject.split,
                       subject.sample_digest(index), method, options], sort_keys=True, default=str)


def cache_size() -> int:
    return len(_cache)


# --------------------------------------------------------------------------- running


def _clean_options(method: Method, subject: Subject, options: dict | None) -> dict:
    given = dict(options or {})
    known = {o.name for o in method.options} | set(COMMON_OPTIONS)
    unknown = [k for k in given if k not in known]
    if unknown:
        raise ExplainError(f"{method.name} has no option {unknown[0]!r}; its options are "
                           + ", ".join(sorted({o.name for o in method.options} | set(COMMON_OPTIONS))))
    merged = {**method.defaults(subject), **{k: v for k, v in given.items() if v is not None}}
    for o in method.options:
        value = merged.get(o.name)
        if value is None:
            continue
        if o.kind in ("int", "float"):
            try:
                value = o.parse(value) if isinstance(value, str) else (int(value) if o.kind == "int"
                                                                       else float(value))
            except (TypeError, ValueError):
                raise ExplainError(f"option {o.name} of {method.name} takes a number; got {value!r}") from None
            if (o.low is not None and value < o.low) or (o.high is not None and value > o.high):
                raise ExplainError(f"option {o.name} of {method.name} must lie between {o.low:g} "
                                   f"and {o.high:g}; got {value}")
        elif o.kind == "choice":
            choices = [str(c) for c in o.choices_for(subject)]
            if choices and str(value) not in choices:
                raise ExplainError(f"option {o.name} of {method.name} is one of {', '.join(choices)}; "
                                   f"got {value!r}")
        merged[o.name] = value
    for k in ("position", "output"):
        if merged.get(k) is not None:
            try:
                merged[k] = int(merged[k])
            except (TypeError, ValueError):
                raise ExplainError(f"option {k} takes a whole number; got {merged[k]!r}") from None
    merged.setdefault("output", 0)
    return merged


def explain(model, dataset, method: str, samples: list[int] | int = 0, options: dict | None = None,
            state=None, *, subject: Subject | None = None) -> Explanation:
    """Explain ``samples`` of the test split with ``method``.

    Args:
        model: the trained Keras model.
        dataset: its :class:`models.data.Dataset`.
        method: a name of :data:`METHODS`.
        samples: indices into the test split (an int for one).
        options: the method's options (see :data:`METHODS`) and the common
            ``target`` (a class number or name; default the predicted
            class), ``position`` (the step of a sequence output; default the
            last) and ``output`` (which model output; default 0).
        state: a :class:`models.runner.RunState` for progress and cancel.
        subject: a prepared :class:`Subject` (the panel keeps one per model).

    Returns:
        An :class:`Explanation`.

    Raises:
        ExplainError: the method does not apply (with the reason), or an option is wrong.
        models.runner.Cancelled: the state was cancelled.
    """
    from models.runner import RunState

    state = state or RunState()
    if method not in METHODS:
        raise ExplainError(f"there is no explanation method {method!r}; choose one of "
                           + ", ".join(METHODS))
    m = METHODS[method]
    t0 = time.perf_counter()
    state.progress(0.0, "preparing the model and data")
    subject = subject or Subject(model, dataset)
    reason = m.unavailable(subject)
    if reason:
        raise ExplainError(f"{m.title} does not apply: {reason}")
    indices = [samples] if isinstance(samples, int) else list(samples)
    if not indices:
        raise ExplainError("choose at least one sample to explain")
    opts = _clean_options(m, subject, options)
    output, position = opts["output"], opts.get("position")
    if subject.positions(output) is None or not m.needs_target:
        position = None
    elif position is None:
        position = subject.positions(output) - 1
    opts["position"] = position
    results, cached = [], 0
    for n, index in enumerate(indices):
        state.checkpoint()
        state.progress(n / len(indices), f"{m.title}: sample {n + 1} of {len(indices)}")
        xs = subject.sample(index)
        target = subject.target(xs, opts.get("target"), output=output, position=position) \
            if m.needs_target else 0
        key = _cache_key(subject, method, {**opts, "target": target}, index)
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
        if hit is not None:
            results.append(hit)
            cached += 1
            state.emit("sample", hit)
            continue
        full = subject.head(None, output=output, position=position)
        with _run_lock:  # one at a time: shap's DeepExplainer swaps TensorFlow-wide gradient hooks
            if m.whole_head:
                part = m.run(subject, xs, full, opts, state, target)
            else:
                head = subject.head(target, output=output, position=position) if m.needs_target else full
                part = m.run(subject, xs, head, opts, state)
        prediction = subject.predict(xs, full)[0].tolist()
        result = SampleResult(index=index, target=target, prediction=prediction,
                              attributions=[None if a is None else np.asarray(a, dtype=np.float32)
                                            for a in part["attributions"]],
                              attention=part.get("attention"), extras=part.get("extras", {}),
                              values=[x[0] for x in xs])
        with _cache_lock:
            _cache[key] = result
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        results.append(result)
        state.emit("sample", result)
    state.progress(1.0, f"{m.title}: done")
    notes = _notes(m, subject, results, opts)
    return Explanation(method=method, title=m.title, route=m.route, split=subject.split,
                       inputs=subject.inputs, target_names=subject.class_names(output),
                       position=position, samples=results, notes=notes,
                       options={k: v for k, v in opts.items() if v is not None},
                       seconds=time.perf_counter() - t0, cached=cached)


def _notes(m: Method, subject: Subject, results: list[SampleResult], opts: dict) -> list[str]:
    notes = []
    if opts.get("position") is not None:
        notes.append(f"the output is a sequence; step {opts['position']} is explained")
    gaps = [(abs(r.extras["completeness_gap"]), abs(r.extras["f_sample"] - r.extras["f_baseline"]))
            for r in results if "completeness_gap" in r.extras]
    if gaps:
        # Relative to the largest change explained: a sample close to the baseline has a
        # tiny f(sample) - f(baseline), and any small gap is large beside it.
        worst, scale = max(g for g, _ in gaps), max(d for _, d in gaps)
        notes.append(f"the attributions add up to f(sample) - f(baseline) within {worst:.2g} "
                     f"(the largest difference explained is {scale:.2g})"
                     + ("; use more steps" if worst > 0.05 * max(scale, 1e-6) else ""))
    deep = [r.extras["additivity_gap"] for r in results if "additivity_gap" in r.extras]
    if deep:
        notes.append(f"the SHAP values add up to f(sample) - E[f] within {max(map(abs, deep)):.2g}")
    shown = [i for i in range(len(subject.inputs)) if any(r.attributions[i] is not None for r in results)]
    if len(shown) > 1:
        # Each input's heat map has its own scale; this says which input matters.
        totals = np.array([sum(float(np.abs(r.attributions[i]).sum()) for r in results
                               if r.attributions[i] is not None) for i in shown])
        if totals.sum() > 0:
            notes.append("share of the attribution per input: " + ", ".join(
                f"{subject.inputs[i].name} {t / totals.sum():.1%}" for i, t in zip(shown, totals)))
    for r in results:
        if "note" in r.extras and r.extras["note"] not in notes:
            notes.append(r.extras["note"])
    if m.name in ("kernel-shap", "lime"):
        units = []
        for i, info in enumerate(subject.inputs):
            ids, labels = subject.groups(i)
            if len(labels) < ids.size and not (m.name == "lime" and info.modality in ("table", "series")):
                units.append(f"{info.name}: {len(labels)} {_UNITS.get(info.modality, 'groups')}")
        if units:
            notes.append("switched as whole units (" + "; ".join(units)
                         + "); every element of a unit shows the unit's value")
    return notes


_UNITS = {"image": "patches", "series": "time steps", "text": "token groups", "table": "column groups"}


def explain_job(model, dataset, method: str, samples, options: dict | None = None,
                subject: Subject | None = None) -> Callable:
    """``fn(state) -> Explanation`` for :func:`models.runner.run` or a ``RunWorker``."""

    def job(state):
        return explain(model, dataset, method, samples, options, state, subject=subject)

    return job


__all__ = ["METHODS", "COMMON_OPTIONS", "Method", "Option", "available", "explain", "explain_job",
           "clear_cache", "cache_size"]
