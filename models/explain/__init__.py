"""Explanations of any model LayerForge builds: tables, images, sequences, text, several inputs.

Methods (see :data:`METHODS`; each names its route):

* SHAP: ``shap`` (GradientExplainer), ``deep-shap`` (DeepExplainer),
  ``kernel-shap`` (KernelExplainer, any model) and ``partition-shap``
  (PartitionExplainer with an image masker);
* ``lime``: LIME's tabular, recurrent, image and text explainers;
* ``gradcam``, ``saliency``, ``integrated-gradients``: our own, on
  ``tf.GradientTape``;
* ``attention``: every attention layer's weights, per layer and per head.

A method that does not apply says why (:func:`available`); :func:`explain`
runs one through a :class:`~models.runner.RunState`; :mod:`models.explain.render`
draws the result without Qt. Results are cached per (model weights, sample,
method, options).
"""
from models.explain.methods import (COMMON_OPTIONS, METHODS, Method, Option, available,
                                    cache_size, clear_cache, explain, explain_job)
from models.explain.result import Explanation, SampleResult
from models.explain.subject import ExplainError, InputInfo, Subject

__all__ = ["METHODS", "COMMON_OPTIONS", "Method", "Option", "available", "explain", "explain_job",
           "clear_cache", "cache_size", "Explanation", "SampleResult",
           "ExplainError", "InputInfo", "Subject"]
