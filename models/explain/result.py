"""The result of an explanation: attributions per sample and input, JSON and CSV forms."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.explain.subject import InputInfo


@dataclass
class SampleResult:
    """One explained sample.

    Attributes:
        index: the sample's number in its split.
        target: the class (output column) explained.
        prediction: the model's output for the sample (every class of the head).
        attributions: one array per input, shaped like the input's sample
            (``None`` for an input the method does not explain). Positive
            values push the explained output up.
        attention: for the attention method, one dict per attention call:
            ``layer``, ``class_name``, ``scores`` ``[heads, queries, keys]``,
            ``query_labels``, ``key_labels``.
        extras: method-specific numbers (the base value of SHAP, LIME's fit score...).
        values: the sample itself, one array per input (for pictures and token labels).
    """

    index: int
    target: int
    prediction: list[float]
    attributions: list[np.ndarray | None]
    attention: list[dict] | None = None
    extras: dict = field(default_factory=dict)
    values: list[np.ndarray] = field(default_factory=list)


@dataclass
class Explanation:
    """What :func:`models.explain.explain` made.

    Attributes:
        method: the method's name (``"shap"``, ``"gradcam"``...).
        title: the method in words.
        route: how it was computed (library, explainer, model), for reports.
        split: where the samples come from.
        inputs: the model's inputs.
        target_names: a name per class of the explained output.
        position: the step of a sequence output explained (None otherwise).
        samples: one :class:`SampleResult` per explained sample.
        notes: what the reader should know (an approximation's error, a fallback).
        options: the options the method ran with.
        seconds: how long it took (cached samples cost nothing).
    """

    method: str
    title: str
    route: str
    split: str
    inputs: list[InputInfo]
    target_names: list[str]
    position: int | None
    samples: list[SampleResult]
    notes: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: int = 0

    # ---------------------------------------------------------------- summaries

    def feature_importance(self) -> list[tuple[str, float]] | None:
        """Mean absolute attribution per feature over the samples, most important first.

        Only for table inputs (named columns); None when the model has none or
        the method gives no attributions.
        """
        pairs: list[tuple[str, float]] = []
        for i, info in enumerate(self.inputs):
            if info.modality != "table" or not info.feature_names:
                continue
            values = [s.attributions[i] for s in self.samples if s.attributions[i] is not None]
            if values:
                mean = np.mean([np.abs(np.asarray(v, dtype=np.float64)).reshape(-1) for v in values], 0)
                pairs += [(name, float(v)) for name, v in zip(info.feature_names, mean)]
        return sorted(pairs, key=lambda kv: -kv[1]) or None

    def feature_ranking(self) -> list[str] | None:
        imp = self.feature_importance()
        return None if imp is None else [name for name, _ in imp]

    # ---------------------------------------------------------------- forms

    def to_json(self) -> dict:
        def arr(a):
            return None if a is None else np.round(np.asarray(a, dtype=np.float64), 6).tolist()

        multi = len(self.inputs) > 1
        attributions = []
        for s in self.samples:
            if s.attention is not None and all(a is None for a in s.attributions):
                attributions.append(None)
            elif multi:
                attributions.append({info.name: arr(a) for info, a in zip(self.inputs, s.attributions)})
            else:
                attributions.append(arr(s.attributions[0]))
        targeted = [s.attention is None for s in self.samples]  # attention explains no class
        out: dict[str, Any] = {
            "method": self.method,
            "title": self.title,
            "route": self.route,
            "split": self.split,
            "samples": [s.index for s in self.samples],
            "targets": [s.target if t else None for s, t in zip(self.samples, targeted)],
            "target_names": [(self.target_names[s.target] if s.target < len(self.target_names)
                              else str(s.target)) if t else None
                             for s, t in zip(self.samples, targeted)],
            "predictions": [[round(float(v), 6) for v in s.prediction] for s in self.samples],
            "position": self.position,
            "inputs": [i.to_json() for i in self.inputs],
            "attributions": attributions,
            "notes": self.notes,
            "options": self.options,
            "seconds": round(self.seconds, 3),
        }
        imp = self.feature_importance()
        if imp is not None:
            out["feature_ranking"] = [k for k, _ in imp]
            out["feature_importance"] = {k: round(v, 6) for k, v in imp}
        if any(s.attention is not None for s in self.samples):
            out["attention"] = [
                [{"layer": a["layer"], "class_name": a["class_name"],
                  "query_labels": a["query_labels"], "key_labels": a["key_labels"],
                  "heads": arr(a["scores"])} for a in (s.attention or [])]
                for s in self.samples]
        extras = [s.extras for s in self.samples]
        if any(extras):
            out["extras"] = extras
        return out

    def csv_rows(self) -> list[list]:
        """One row per number: sample, input, element (or layer/head/query/key), value."""
        rows: list[list] = [["sample", "target", "input", "element", "feature", "value"]]
        for s in self.samples:
            target = self.target_names[s.target] if s.target < len(self.target_names) else s.target
            for info, a in zip(self.inputs, s.attributions):
                if a is None:
                    continue
                flat = np.asarray(a, dtype=np.float64).reshape(-1)
                shape = np.asarray(a).shape
                for j, v in enumerate(flat):
                    where = np.unravel_index(j, shape) if shape else ()
                    feature = info.feature_names[j] if info.feature_names and \
                        len(info.feature_names) == flat.size else ""
                    rows.append([s.index, target, info.name, "-".join(map(str, where)), feature,
                                 f"{v:.6g}"])
            for att in s.attention or []:
                scores = np.asarray(att["scores"])
                for h in range(scores.shape[0]):
                    for q in range(scores.shape[1]):
                        for k in range(scores.shape[2]):
                            rows.append([s.index, target, att["layer"], f"head {h} query {q} key {k}",
                                         f"{att['query_labels'][q]}->{att['key_labels'][k]}",
                                         f"{scores[h, q, k]:.6g}"])
        return rows

    def to_csv(self, path: str | Path | None = None) -> str:
        """The numbers as CSV text; written atomically to ``path`` when given."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(self.csv_rows())
        text = buf.getvalue()
        if path is not None:
            from models.project import _atomic_write_text

            p = Path(path)
            p.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(p, text)
        return text


__all__ = ["Explanation", "SampleResult"]
