"""One typed editor per layer parameter, generated from the catalog's parameter metadata.

Every editor shows a value of the layer's config (exactly what ``get_config()``
holds) and emits :attr:`ParamEditor.sig_commit` with a new value in that same
form when the user finishes an edit; the inspector commits it through the
document, and puts the stored value back with :meth:`ParamEditor.set_value`
(which never emits). Text the editor cannot even parse is reported with
:attr:`ParamEditor.sig_invalid` instead.

Initializers, regularizers and constraints are written back in Keras's
serialized form (``{"module": ..., "class_name": ..., "config": ...,
"registered_name": None}``), from :data:`KERAS_OBJECTS`, a table that needs no
TensorFlow; ``tests/desktop/test_panels.py`` checks it against Keras.
"""
from __future__ import annotations

import ast
import copy
import json
import math
import struct
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

INT_MAX = 2**31 - 1
INT_MIN = -(2**31) + 1

# --------------------------------------------------------------------------- Keras objects

KERAS_MODULES = {
    "initializer": "keras.initializers",
    "regularizer": "keras.regularizers",
    "constraint": "keras.constraints",
}

_SEEDED = {"seed": None, "input_axes": None, "output_axes": None}

# name Keras accepts -> (class name, config of the object built with its defaults,
# the arguments offered next to the picker, the config keys Keras stores as float32).
KERAS_OBJECTS: dict[str, dict[str, tuple[str, dict, tuple, tuple]]] = {
    "initializer": {
        "constant": ("Constant", {"value": 0.0}, ("value",), ()),
        "glorot_normal": ("GlorotNormal", _SEEDED, ("seed",), ()),
        "glorot_uniform": ("GlorotUniform", _SEEDED, ("seed",), ()),
        "he_normal": ("HeNormal", _SEEDED, ("seed",), ()),
        "he_uniform": ("HeUniform", _SEEDED, ("seed",), ()),
        # Keras 3 does not serialise Identity's gain, so there is nothing to offer.
        "identity": ("Identity", {}, (), ()),
        "lecun_normal": ("LecunNormal", _SEEDED, ("seed",), ()),
        "lecun_uniform": ("LecunUniform", _SEEDED, ("seed",), ()),
        "ones": ("Ones", {}, (), ()),
        "orthogonal": ("Orthogonal", {"seed": None, "gain": 1.0}, ("gain", "seed"), ()),
        "random_normal": ("RandomNormal", {"seed": None, "mean": 0.0, "stddev": 0.05},
                          ("stddev", "seed"), ()),
        "random_uniform": ("RandomUniform", {"seed": None, "minval": -0.05, "maxval": 0.05},
                           ("minval", "maxval", "seed"), ()),
        "truncated_normal": ("TruncatedNormal", {"seed": None, "mean": 0.0, "stddev": 0.05},
                             ("stddev", "seed"), ()),
        "variance_scaling": ("VarianceScaling", {"seed": None, "scale": 1.0, "mode": "fan_in",
                                                 "distribution": "truncated_normal",
                                                 "input_axes": None, "output_axes": None},
                             ("scale", "seed"), ()),
        "zeros": ("Zeros", {}, (), ()),
    },
    "regularizer": {
        # L1 and OrthogonalRegularizer keep their factor as a float32 tensor.
        "l1": ("L1", {"l1": 0.01}, ("l1",), ("l1",)),
        # keras.regularizers.get("l1_l2") fails; L1L2() defaults to 0 and 0, which
        # penalises nothing, so the picker starts from Keras 2's 0.01 and 0.01.
        "l1_l2": ("L1L2", {"l1": 0.01, "l2": 0.01}, ("l1", "l2"), ()),
        "l2": ("L2", {"l2": 0.01}, ("l2",), ()),
        "orthogonal_regularizer": ("OrthogonalRegularizer", {"factor": 0.01, "mode": "rows"},
                                   ("factor",), ("factor",)),
    },
    "constraint": {
        "max_norm": ("MaxNorm", {"max_value": 2, "axis": 0}, ("max_value",), ()),
        "min_max_norm": ("MinMaxNorm", {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0},
                         ("min_value", "max_value"), ()),
        "non_neg": ("NonNeg", {}, (), ()),
        "unit_norm": ("UnitNorm", {"axis": 0}, (), ()),
    },
}


# Other spellings Keras accepts by name (its ALL_OBJECTS_DICT); the catalog offers
# some of them where a layer's default is written that way (Embedding: "uniform").
OBJECT_ALIASES = {
    "initializer": {"uniform": "random_uniform", "normal": "random_normal", "one": "ones",
                    "zero": "zeros"},
    "regularizer": {"l1l2": "l1_l2"},
    "constraint": {},
}


def resolve_object_name(kind: str, name: str) -> str | None:
    """The :data:`KERAS_OBJECTS` key for a name, alias or class name Keras accepts, or None."""
    table = KERAS_OBJECTS.get(kind, {})
    if not isinstance(name, str):
        return None
    if name in table:
        return name
    alias = OBJECT_ALIASES.get(kind, {}).get(name)
    if alias:
        return alias
    return next((key for key, spec in table.items() if spec[0] == name), None)


def to_float32(value: float) -> float:
    """``value`` rounded through float32, as Keras stores a factor it keeps as a tensor."""
    try:
        return struct.unpack("f", struct.pack("f", float(value)))[0]
    except (OverflowError, struct.error):
        return float(value)


def keras_object(kind: str, name: str) -> dict:
    """The serialized form Keras writes for ``kind`` object ``name`` built with its defaults.

    Args:
        kind: ``"initializer"``, ``"regularizer"`` or ``"constraint"``.
        name: a key of ``KERAS_OBJECTS[kind]`` (``"he_normal"``) or its class
            name (``"HeNormal"``).
    """
    spec = _object_spec(kind, name)
    if spec is None:
        raise KeyError(f"no {kind} called {name!r}")
    class_name, config, _args, f32 = spec
    config = copy.deepcopy(config)
    for key in f32:
        config[key] = to_float32(config[key])
    return {"module": KERAS_MODULES[kind], "class_name": class_name, "config": config,
            "registered_name": None}


def _object_spec(kind: str, name: str):
    key = resolve_object_name(kind, name)
    return KERAS_OBJECTS[kind][key] if key else None


# --------------------------------------------------------------------------- text helpers


def same_value(a: Any, b: Any) -> bool:
    """Equal as JSON (so ``1`` and ``True``, or ``1`` and ``1.0``, differ)."""
    try:
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    except (TypeError, ValueError):
        return a == b


def format_number(value: Any) -> str:
    """A short text for a number: ``0.01`` for the float32 ``0.009999999776``, ``1e-05``."""
    if value is None:
        return "None"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return repr(value)
    text = repr(value)
    if len(text) > 10:
        # Most long reprs are float32 round-offs; 7 significant digits is float32's precision.
        text = f"{value:.7g}"
    return text


def parse_number(text: str, kind: str, nullable: bool) -> Any:
    """``text`` as an int or float (scientific notation welcome); raises ValueError."""
    text = text.strip()
    if nullable and text.lower() in ("", "none", "null"):
        return None
    if not text:
        raise ValueError("enter a number" + (" or None" if nullable else ""))
    if kind == "int":
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"“{text}” is not a whole number") from None
        if not value.is_integer():
            raise ValueError(f"“{text}” is not a whole number")
        return int(value)
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"“{text}” is not a number (write e.g. 0.5 or 1e-5)") from None
    if math.isnan(value) or math.isinf(value):
        raise ValueError("enter a finite number")
    return value


def _listify(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


def format_tuple(value: Any) -> str:
    """``[3, 3]`` -> ``"3, 3"``; ``[[1, 1], [2, 2]]`` -> ``"(1, 1), (2, 2)"``."""
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        if not value:
            return "()"
        inner = [("(" + format_tuple(v) + (",)" if len(v) == 1 else ")")) if isinstance(v, (list, tuple))
                 else format_number(v) for v in value]
        return ", ".join(inner)
    return format_number(value)


def parse_tuple(text: str, current: Any, nullable: bool) -> Any:
    """Parse ``"3, 3"``, ``"(3, 3)"``, ``"[3, 3]"`` or ``"3"`` into a list (or number / None).

    A single number becomes a list as long as the current value when that is a
    list, since Keras stores e.g. ``kernel_size=3`` of a Conv2D as ``[3, 3]``.
    Raises ValueError with a message for the user.
    """
    text = text.strip()
    if text.lower() in ("", "none", "null"):
        if nullable:
            return None
        raise ValueError("enter one or more numbers, e.g. 3, 3")
    try:
        value = ast.literal_eval(text.replace("null", "None"))
    except (ValueError, SyntaxError):
        raise ValueError(f"“{text}” is not a list of numbers; write e.g. 3, 3") from None

    def check(v):
        if isinstance(v, (list, tuple)):
            for x in v:
                check(x)
        elif v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"{v!r} is not a number")

    check(value)
    if isinstance(value, (int, float)):
        if isinstance(current, list) and current and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in current):
            return [value] * len(current)
        return value
    if value is None:
        if nullable:
            return None
        raise ValueError("this parameter needs a value")
    return _listify(value)


def parse_json(text: str) -> Any:
    """JSON, or a Python literal (``None``, ``True``, tuples); raises ValueError."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError as exc:
        try:
            return _listify(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            raise ValueError(f"not valid JSON: {exc}") from None


def to_json_text(value: Any, indent: int | None = None) -> str:
    try:
        return json.dumps(value, indent=indent)
    except (TypeError, ValueError):
        return repr(value)


# --------------------------------------------------------------------------- dialog


class JsonDialog(QDialog):
    """Edit a value as JSON text; OK only once the text parses."""

    def __init__(self, title: str, value: Any, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.value = value
        self.text = QPlainTextEdit(self)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.text.setPlainText(to_json_text(value, indent=2))
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {error_color(self)}")
        self.error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        buttons.accepted.connect(self._on_ok)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def _on_ok(self):
        try:
            self.value = parse_json(self.text.toPlainText())
        except ValueError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.accept()

    @classmethod
    def edit(cls, parent, title: str, value: Any) -> tuple[bool, Any]:
        """Show the dialog; ``(True, new value)`` or ``(False, None)`` when cancelled."""
        dialog = cls(title, value, parent)
        ok = dialog.exec() == QDialog.Accepted
        return ok, (dialog.value if ok else None)


# --------------------------------------------------------------------------- colours


def _is_dark(widget: QWidget) -> bool:
    return widget.palette().window().color().lightness() < 128


def error_color(widget: QWidget) -> str:
    """A red that reads on the widget's background, light theme or dark."""
    return "#ff7b72" if _is_dark(widget) else "#c62828"


def muted_color(widget: QWidget) -> str:
    return "#a0a0a0" if _is_dark(widget) else "#5f6368"


class _WheelGuard(QObject):
    """Spin boxes and combos ignore the wheel until focused, so scrolling the form is safe."""

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Wheel and not obj.hasFocus():
            event.ignore()
            return True
        return False


_WHEEL_GUARD = None


def _guard_wheel(widget: QWidget) -> None:
    global _WHEEL_GUARD
    if _WHEEL_GUARD is None:
        _WHEEL_GUARD = _WheelGuard()
    widget.setFocusPolicy(Qt.StrongFocus)
    widget.installEventFilter(_WHEEL_GUARD)


# --------------------------------------------------------------------------- editors


class ParamEditor(QWidget):
    """Base of the editors.

    Signals:
        sig_commit(object): the user finished an edit; the new config value.
        sig_invalid(str): the user's text could not be read; the editor shows
            the previous value again.

    Args:
        key: the config key.
        meta: the catalog's metadata for the parameter (may be empty).
        value: the current config value.
    """

    sig_commit = Signal(object)
    sig_invalid = Signal(str)

    def __init__(self, key: str, meta: dict, value: Any, parent=None):
        super().__init__(parent)
        self.key = key
        self.meta = meta or {}
        self._value = copy.deepcopy(value)
        self.nullable = self.meta.get("default", value) is None or value is None
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)

    def value(self) -> Any:
        """The config value the editor shows (the last one set or committed)."""
        return copy.deepcopy(self._value)

    def set_value(self, value: Any) -> None:
        """Show ``value``; emits nothing."""
        self._value = copy.deepcopy(value)
        blockers = [QSignalBlocker(w) for w in self.findChildren(QWidget)]
        try:
            self._show(self._value)
        finally:
            for blocker in blockers:
                blocker.unblock()

    def set_read_only(self, read_only: bool) -> None:
        for w in self.findChildren(QWidget):
            if isinstance(w, (QLineEdit,)):
                w.setReadOnly(read_only)
            elif isinstance(w, QAbstractSpinBox):
                w.setReadOnly(read_only)
                w.setButtonSymbols(QAbstractSpinBox.NoButtons if read_only
                                   else QAbstractSpinBox.UpDownArrows)
            elif isinstance(w, (QCheckBox, QComboBox, QToolButton, QPushButton)):
                w.setEnabled(not read_only)

    # subclasses ----------------------------------------------------------

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def _offer(self, value: Any) -> None:
        """Emit ``value`` unless it is what is stored already."""
        if same_value(value, self._value):
            self.set_value(self._value)  # normalise the text ("3,3" -> "3, 3")
            return
        self.sig_commit.emit(value)

    def _refuse(self, message: str) -> None:
        self.sig_invalid.emit(message)
        self.set_value(self._value)

    def _json_button(self, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setText("{…}")
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(self._edit_json)
        return button

    def _edit_json(self) -> None:
        ok, value = JsonDialog.edit(self, f"Edit {self.key}", self._value)
        if ok:
            self._offer(value)


class IntEditor(ParamEditor):
    """A spin box, bounded by the catalog's min/max; ``None`` below the minimum when allowed."""

    def __init__(self, key, meta, value, parent=None):
        super().__init__(key, meta, value, parent)
        lo = self.meta.get("min")
        hi = self.meta.get("max")
        self.spin = QSpinBox(self)
        lo = INT_MIN if lo is None else int(lo)
        if self.nullable:
            lo -= 1  # the "None" slot below the smallest value
            self.spin.setSpecialValueText("None")
        self.spin.setRange(lo, INT_MAX if hi is None else int(hi))
        self.spin.setKeyboardTracking(False)  # commit on Enter/focus out, not per digit
        self.spin.setAccelerated(True)
        self.spin.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        _guard_wheel(self.spin)
        self.spin.valueChanged.connect(self._on_changed)
        self._layout.addWidget(self.spin)
        self.set_value(value)

    def _show(self, value):
        self.spin.setValue(self.spin.minimum() if value is None else int(value))

    def _on_changed(self, number: int):
        if self.nullable and number == self.spin.minimum():
            self._offer(None)
        else:
            self._offer(int(number))


class NumberEditor(ParamEditor):
    """A line edit for a float (or an int that may be None): ``0.5``, ``1e-5``, ``None``."""

    def __init__(self, key, meta, value, parent=None, kind: str = "float"):
        super().__init__(key, meta, value, parent)
        self.kind = kind
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("None" if self.nullable else ("e.g. 1e-5" if kind == "float" else ""))
        self.edit.editingFinished.connect(self._on_edited)
        self._layout.addWidget(self.edit)
        self._shown = ""
        self.set_value(value)

    def _show(self, value):
        self._shown = "" if value is None else format_number(value)
        self.edit.setText(self._shown)
        self.edit.setCursorPosition(0)

    def _on_edited(self):
        text = self.edit.text()
        if text.strip() == self._shown:
            return
        try:
            number = parse_number(text, self.kind, self.nullable)
        except ValueError as exc:
            self._refuse(str(exc))
            return
        problem = _range_problem(number, self.meta)
        if problem:
            self._refuse(problem)
            return
        self._offer(number)


def _range_problem(number, meta: dict) -> str:
    if number is None:
        return ""
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None and not lo <= number <= hi:
        return f"must be between {format_number(lo)} and {format_number(hi)}"
    if lo is not None and number < lo:
        return f"must be at least {format_number(lo)}"
    if hi is not None and number > hi:
        return f"must be at most {format_number(hi)}"
    return ""


class BoolEditor(ParamEditor):
    def __init__(self, key, meta, value, parent=None):
        super().__init__(key, meta, value, parent)
        self.check = QCheckBox(self)
        self.check.clicked.connect(lambda checked: self._offer(bool(checked)))
        self._layout.addWidget(self.check)
        self._layout.addStretch(1)
        self.set_value(value)

    def _show(self, value):
        self.check.setChecked(bool(value))


def _choice_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, dict) and "class_name" in value:
        return str(value["class_name"])
    return to_json_text(value)


class ChoiceEditor(ParamEditor):
    """A combo box of the catalog's choices (plus the current value if it is another one)."""

    def __init__(self, key, meta, value, parent=None, choices=None):
        super().__init__(key, meta, value, parent)
        self.choices = list(choices if choices is not None else self.meta.get("choices", []))
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(8)
        self.combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.combo.setMaxVisibleItems(20)
        _guard_wheel(self.combo)
        self.combo.activated.connect(self._on_activated)
        self._layout.addWidget(self.combo)
        self._values: list = []
        self.set_value(value)

    def _fill(self, value):
        values = list(self.choices)
        if not any(same_value(value, v) for v in values):
            values.append(value)  # e.g. a custom activation, or an old spelling
        if not same_value(values, self._values):
            self.combo.clear()
            for v in values:
                self.combo.addItem(_choice_text(v))
            self._values = values

    def _show(self, value):
        self._fill(value)
        index = next(i for i, v in enumerate(self._values) if same_value(v, value))
        self.combo.setCurrentIndex(index)

    def _on_activated(self, index: int):
        if 0 <= index < len(self._values):
            self._offer(copy.deepcopy(self._values[index]))


class DtypeEditor(ParamEditor):
    """Dtype names; written back as Keras writes them (a ``DTypePolicy`` dict in Keras 3)."""

    def __init__(self, key, meta, value, parent=None):
        super().__init__(key, meta, value, parent)
        self.combo = QComboBox(self)
        self.combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        _guard_wheel(self.combo)
        self.combo.activated.connect(self._on_activated)
        self._layout.addWidget(self.combo)
        self.set_value(value)

    @staticmethod
    def name_of(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and value.get("class_name") == "DTypePolicy":
            return (value.get("config") or {}).get("name")
        return None

    def _show(self, value):
        names = list(self.meta.get("choices") or ["float32"])
        name = self.name_of(value)
        if value is None:
            name = "float32"  # what Keras uses when no dtype is given
        if name not in names:
            names.append(name)
        self.combo.clear()
        self.combo.addItems(names)
        self.combo.setCurrentText(name)

    def _on_activated(self, index: int):
        name = self.combo.itemText(index)
        if isinstance(self._value, str):
            self._offer(name)
        else:
            self._offer({"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
                         "registered_name": None})


class KerasObjectEditor(ParamEditor):
    """Initializer / regularizer / constraint picker with its main arguments.

    The combo lists the class names (``HeNormal``), with ``None`` first for
    regularizers and constraints; below it, the arguments worth changing
    (``seed``, ``l2``, ``max_value``...); ``{…}`` edits the whole object as JSON.
    """

    def __init__(self, key, meta, value, parent=None, kind: str = "initializer", choices=None):
        super().__init__(key, meta, value, parent)
        self.kind = kind
        names = list(choices if choices is not None else self.meta.get("choices") or KERAS_OBJECTS[kind])
        self._classes: list[str | None] = [None] if kind != "initializer" else []
        for name in names:
            spec = _object_spec(kind, name)
            if spec is not None and spec[0] not in self._classes:
                self._classes.append(spec[0])
        self._layout.setDirection(QBoxLayout.TopToBottom)
        top = QHBoxLayout()
        top.setSpacing(2)
        self.combo = QComboBox(self)
        self.combo.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(8)
        _guard_wheel(self.combo)
        self.combo.activated.connect(self._on_activated)
        top.addWidget(self.combo, 1)
        top.addWidget(self._json_button(f"Edit the {kind} as JSON"))
        self._layout.addLayout(top)
        self.args = QWidget(self)
        self.args_layout = QGridLayout(self.args)
        self.args_layout.setContentsMargins(12, 0, 0, 0)
        self.args_layout.setHorizontalSpacing(6)
        self.args_layout.setVerticalSpacing(2)
        self._layout.addWidget(self.args)
        self.arg_edits: dict[str, QLineEdit] = {}
        self._items: list = []
        self._read_only = False
        self.set_value(value)

    # the value in dict form ---------------------------------------------

    def _as_dict(self, value: Any) -> dict | None:
        if isinstance(value, str):
            try:
                return keras_object(self.kind, value)
            except KeyError:
                return None
        if isinstance(value, dict) and "class_name" in value:
            return value
        return None

    def _class_of(self, value: Any) -> str | None:
        if value is None:
            return None
        d = self._as_dict(value)
        return d["class_name"] if d else _choice_text(value)

    def _show(self, value):
        current = self._class_of(value)
        items = list(self._classes)
        if current not in items:
            items.append(current)  # a custom or unknown object: kept, editable as JSON
        self.combo.clear()
        for cls in items:
            self.combo.addItem("None" if cls is None else cls)
        self._items = items
        self.combo.setCurrentIndex(items.index(current))
        self._show_args(value)

    def _show_args(self, value):
        d = self._as_dict(value)
        spec = _object_spec(self.kind, d["class_name"]) if d else None
        args = tuple(a for a in (spec[2] if spec else ()) if a in (d.get("config") or {}))
        if args != tuple(self.arg_edits):
            # Another class: new fields. (The same class keeps its fields, and their focus.)
            while self.args_layout.count():
                item = self.args_layout.takeAt(0)
                if item.widget() is not None:
                    item.widget().deleteLater()
            self.arg_edits = {}
            for row, arg in enumerate(args):
                label = QLabel(arg, self.args)
                edit = QLineEdit(self.args)
                edit.setPlaceholderText("random" if arg == "seed" else "None")
                edit.setToolTip("An integer seed; empty for a fresh random seed" if arg == "seed"
                                else f"{arg} of {d['class_name']} (e.g. 0.01 or 1e-4)")
                edit.editingFinished.connect(lambda a=arg, e=edit: self._on_arg_edited(a, e))
                self.args_layout.addWidget(label, row, 0)
                self.args_layout.addWidget(edit, row, 1)
                self.arg_edits[arg] = edit
        for arg, edit in self.arg_edits.items():
            shown = d["config"].get(arg)
            with QSignalBlocker(edit):
                edit.setText("" if shown is None else format_number(shown))
                edit.setCursorPosition(0)
            edit.setReadOnly(self._read_only)
        self.args.setVisible(bool(args))

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only
        super().set_read_only(read_only)

    # user edits -----------------------------------------------------------

    def _on_activated(self, index: int):
        if not 0 <= index < len(self._items):
            return
        cls = self._items[index]
        if cls == self._class_of(self._value):
            return
        if cls is None:
            self._offer(None)
        elif _object_spec(self.kind, cls) is not None:
            self._offer(keras_object(self.kind, cls))
        else:
            self.set_value(self._value)

    def _on_arg_edited(self, arg: str, edit: QLineEdit):
        d = self._as_dict(self._value)
        if d is None:
            return
        old = d["config"].get(arg)
        if edit.text().strip() == ("" if old is None else format_number(old)):
            return
        kind = "int" if arg == "seed" else "float"
        nullable = arg == "seed" or old is None
        try:
            number = parse_number(edit.text(), kind, nullable)
        except ValueError as exc:
            self._refuse(f"{arg}: {exc}")
            return
        if arg == "seed" and number is not None and number < 0:
            self._refuse("seed: must be 0 or more")
            return
        spec = _object_spec(self.kind, d["class_name"])
        if number is not None and spec and arg in spec[3]:
            number = to_float32(number)
        new = copy.deepcopy(d)
        new["config"][arg] = number
        self._offer(new)


class TupleEditor(ParamEditor):
    """Sizes and shapes: accepts ``3, 3``, ``(3, 3)``, ``[3, 3]`` or ``3``; writes a list."""

    def __init__(self, key, meta, value, parent=None):
        super().__init__(key, meta, value, parent)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("None" if self.nullable else "e.g. 3, 3")
        self.edit.editingFinished.connect(self._on_edited)
        self._layout.addWidget(self.edit)
        self._shown = ""
        self.set_value(value)

    def _show(self, value):
        self._shown = "" if value is None else format_tuple(value)
        self.edit.setText(self._shown)
        self.edit.setCursorPosition(0)

    def _on_edited(self):
        text = self.edit.text()
        if text.strip() == self._shown:
            return
        try:
            value = parse_tuple(text, self._value, self.nullable)
        except ValueError as exc:
            self._refuse(str(exc))
            return
        self._offer(value)


class StrEditor(ParamEditor):
    def __init__(self, key, meta, value, parent=None):
        super().__init__(key, meta, value, parent)
        self.edit = QLineEdit(self)
        if self.nullable:
            self.edit.setPlaceholderText("None")
        self.edit.editingFinished.connect(self._on_edited)
        self._layout.addWidget(self.edit)
        self.set_value(value)

    def _show(self, value):
        self.edit.setText("" if value is None else str(value))
        self.edit.setCursorPosition(0)

    def _on_edited(self):
        text = self.edit.text()
        self._offer(None if (text == "" and self.nullable) else text)


class JsonEditor(ParamEditor):
    """Anything else: the value as one line of JSON, plus a dialog for long values."""

    def __init__(self, key, meta, value, parent=None):
        super().__init__(key, meta, value, parent)
        self.edit = QLineEdit(self)
        self.edit.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))
        self.edit.setToolTip("A JSON value: null, true, 0.5, \"text\", [1, 2], {\"key\": 1}")
        self.edit.editingFinished.connect(self._on_edited)
        self._layout.addWidget(self.edit, 1)
        self._layout.addWidget(self._json_button("Edit in a larger window"))
        self._shown = ""
        self.set_value(value)

    def _show(self, value):
        self._shown = to_json_text(value)
        self.edit.setText(self._shown)
        self.edit.setCursorPosition(0)

    def _on_edited(self):
        text = self.edit.text()
        if text.strip() == self._shown:
            return
        try:
            value = parse_json(text)
        except ValueError as exc:
            self._refuse(str(exc))
            return
        self._offer(value)


_SUMMARY_KEYS = ("units", "filters", "kernel_size", "activation", "return_sequences", "rate")


def layer_summary(value: Any) -> str:
    """``LSTM · units 32, activation tanh`` for a serialized layer."""
    if value is None:
        return "None"
    if not isinstance(value, dict):
        return to_json_text(value)
    config = value.get("config") or {}
    parts = []
    for k in _SUMMARY_KEYS:
        if k in config:
            v = config[k]
            parts.append(f"{k} {format_tuple(v) if isinstance(v, list) else _choice_text(v)}")
    name = str(value.get("class_name", "?"))
    return name + (" · " + ", ".join(parts[:3]) if parts else "")


class LayerEditor(ParamEditor):
    """A nested layer (Bidirectional's ``layer``): a summary and an "Edit as JSON…" button."""

    def __init__(self, key, meta, value, parent=None):
        super().__init__(key, meta, value, parent)
        self._layout.setDirection(QBoxLayout.TopToBottom)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.button = QPushButton("Edit as JSON…", self)
        self.button.clicked.connect(self._edit_json)
        self.button.setSizePolicy(QSizePolicy.Maximum, QSizePolicy.Fixed)
        self._layout.addWidget(self.summary)
        self._layout.addWidget(self.button)
        self.set_value(value)

    def _show(self, value):
        self.summary.setText(layer_summary(value))
        self.summary.setToolTip(to_json_text(value, indent=2))


# --------------------------------------------------------------------------- search ranges


def parse_choices(text: str) -> list:
    """``relu, tanh`` -> ``["relu", "tanh"]``; numbers and True/False become numbers and booleans."""
    values = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            value = json.loads(item)
        except ValueError:
            value = {"True": True, "False": False, "None": None}.get(item, item)
        values.append(value)
    return values


def format_choices(values: list) -> str:
    return ", ".join(_choice_text(v) for v in values)


class RangeEditor(QWidget):
    """A search range for one parameter (see :mod:`models.search`).

    Numbers: *from*, *to*, *step* (empty for none) and *log scale*; choices:
    the values, comma-separated. Each finished edit is checked
    (:func:`models.search.check_mark`, with the catalog's bounds) and emitted
    as the whole new mark; a range that does not hold together is refused
    with the reason and the stored one shown again.

    Signals:
        sig_changed(dict): the new mark.
        sig_invalid(str): why an edit was refused.
    """

    sig_changed = Signal(object)
    sig_invalid = Signal(str)

    def __init__(self, mark: dict, meta: dict | None = None, parent=None):
        super().__init__(parent)
        self.meta = dict(meta or {})
        self._mark = copy.deepcopy(mark)
        self.kind = mark.get("type")
        grid = QGridLayout(self)
        grid.setContentsMargins(12, 0, 0, 2)
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(2)
        self.edits: dict[str, QLineEdit] = {}
        self.log_check = None
        if self.kind == "choice":
            self.values_edit = self._line("values", "the values to try, comma-separated")
            if self.meta.get("choices"):
                self.values_edit.setToolTip("comma-separated; one of: "
                                            + ", ".join(_choice_text(c) for c in self.meta["choices"]))
            grid.addWidget(QLabel("values", self), 0, 0)
            grid.addWidget(self.values_edit, 0, 1, 1, 3)
        else:
            for col, (key, tip) in enumerate((("min", "the lowest value tried"),
                                               ("max", "the highest value tried"))):
                grid.addWidget(QLabel("from" if key == "min" else "to", self), 0, col * 2)
                grid.addWidget(self._line(key, tip), 0, col * 2 + 1)
            grid.addWidget(QLabel("step", self), 1, 0)
            grid.addWidget(self._line("step", "empty: any value in the range"), 1, 1)
            self.log_check = QCheckBox("log scale", self)
            self.log_check.setToolTip("sample evenly in orders of magnitude (learning rates)")
            self.log_check.clicked.connect(lambda _c: self._on_edited())
            grid.addWidget(self.log_check, 1, 2, 1, 2)
        self.set_mark(mark)

    def _line(self, key: str, tip: str) -> QLineEdit:
        edit = QLineEdit(self)
        edit.setToolTip(tip)
        edit.setMinimumWidth(40)
        edit.editingFinished.connect(self._on_edited)
        self.edits[key] = edit
        return edit

    def mark(self) -> dict:
        return copy.deepcopy(self._mark)

    def set_mark(self, mark: dict) -> None:
        """Show ``mark``; emits nothing."""
        self._mark = copy.deepcopy(mark)
        blockers = [QSignalBlocker(w) for w in self.findChildren(QWidget)]
        try:
            if self.kind == "choice":
                self.values_edit.setText(format_choices(mark.get("values") or []))
                self.values_edit.setCursorPosition(0)
            else:
                for key in ("min", "max", "step"):
                    value = mark.get(key)
                    self.edits[key].setText("" if value is None else format_number(value))
                self.log_check.setChecked(bool(mark.get("log")))
        finally:
            for blocker in blockers:
                blocker.unblock()

    def set_read_only(self, read_only: bool) -> None:
        for edit in self.edits.values():
            edit.setReadOnly(read_only)
        if self.log_check is not None:
            self.log_check.setEnabled(not read_only)

    def _on_edited(self):
        from models.search import check_mark

        new = copy.deepcopy(self._mark)
        try:
            if self.kind == "choice":
                new["values"] = parse_choices(self.values_edit.text())
            else:
                number = "int" if self.kind == "int" else "float"
                for key in ("min", "max"):
                    new[key] = parse_number(self.edits[key].text(), number, nullable=False)
                step = parse_number(self.edits["step"].text(), number, nullable=True)
                new["step"] = step
                new["log"] = self.log_check.isChecked()
                if new["log"] and number == "float":
                    new["step"] = None  # a log range of fractions is continuous
        except ValueError as exc:
            self._refuse(str(exc))
            return
        problem = check_mark(new, self.meta)
        if problem:
            self._refuse(problem)
            return
        if same_value(new, self._mark):
            self.set_mark(self._mark)
            return
        self._mark = new
        self.sig_changed.emit(copy.deepcopy(new))

    def _refuse(self, message: str) -> None:
        self.sig_invalid.emit(message)
        self.set_mark(self._mark)


# --------------------------------------------------------------------------- factory

ADVANCED_TYPES = {"initializer", "regularizer", "constraint", "dtype"}
ADVANCED_KEYS = {"trainable", "quantization_config", "dtype", "autocast"}


def infer_kind(key: str, value: Any) -> str:
    """A parameter type for a config key the catalog does not describe (custom layers)."""
    for suffix, kind in (("_initializer", "initializer"), ("_regularizer", "regularizer"),
                         ("_constraint", "constraint")):
        if key.endswith(suffix):
            return kind
    if isinstance(value, dict):
        module = str(value.get("module") or "")
        for kind, mod in KERAS_MODULES.items():
            if module == mod:
                return kind
        if value.get("class_name") == "DTypePolicy":
            return "dtype"
        if "class_name" in value and "config" in value and "layers" in module:
            return "layer"
        return "any"
    if key == "activation" or key.endswith("_activation"):
        return "activation" if isinstance(value, str) or value is None else "any"
    if key == "dtype":
        return "dtype"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        def numeric(v):
            if isinstance(v, list):
                return all(numeric(x) for x in v)
            return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
        return "tuple" if numeric(value) else "any"
    return "any"


def editor_kind(key: str, meta: dict | None, value: Any) -> str:
    """The editor to use: the catalog's type, unless the stored value cannot be shown by it."""
    kind = (meta or {}).get("type") or infer_kind(key, value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("int", "float", "bool", "str", "choice", "tuple", "activation") and isinstance(value, dict):
        return "any"
    if kind in ("int", "float") and isinstance(value, list):
        return "tuple"
    if kind == "int" and isinstance(value, float):
        return "float"
    if kind == "int" and number and not INT_MIN <= value <= INT_MAX:
        return "any"
    nullable = value is None or (meta or {}).get("default", value) is None
    if kind == "int" and nullable and (meta or {}).get("min") is None:
        return "nullable_int"
    if kind == "float" and value is not None and not number:
        return "any"
    if kind == "bool" and not isinstance(value, bool):
        return "any"
    if kind == "str" and value is not None and not isinstance(value, str):
        return "any"
    if kind == "tuple" and isinstance(value, str):
        return "any"
    if kind == "dtype" and value is not None and DtypeEditor.name_of(value) is None:
        return "any"
    if kind == "choice" and not (meta or {}).get("choices"):
        return "any"
    return kind


def make_editor(key: str, meta: dict | None, value: Any, vocab: dict | None = None,
                parent=None) -> ParamEditor:
    """The editor for one parameter.

    Args:
        key: the config key.
        meta: the catalog's metadata for it, or None for keys it does not know.
        value: the current config value.
        vocab: fallback choices per type (activation, initializer...), used for
            keys the catalog does not describe.
    """
    meta = dict(meta or {})
    vocab = vocab or {}
    kind = editor_kind(key, meta, value)
    if kind in vocab and not meta.get("choices"):
        meta["choices"] = vocab[kind]
    if kind == "int":
        return IntEditor(key, meta, value, parent)
    if kind == "nullable_int":
        return NumberEditor(key, meta, value, parent, kind="int")
    if kind == "float":
        return NumberEditor(key, meta, value, parent, kind="float")
    if kind == "bool":
        return BoolEditor(key, meta, value, parent)
    if kind in ("choice", "activation"):
        return ChoiceEditor(key, meta, value, parent)
    if kind == "dtype":
        return DtypeEditor(key, meta, value, parent)
    if kind in KERAS_MODULES:
        return KerasObjectEditor(key, meta, value, parent, kind=kind)
    if kind == "tuple":
        return TupleEditor(key, meta, value, parent)
    if kind == "str":
        return StrEditor(key, meta, value, parent)
    if kind == "layer":
        return LayerEditor(key, meta, value, parent)
    return JsonEditor(key, meta, value, parent)


def is_advanced(key: str, meta: dict | None, value: Any) -> bool:
    """Initializers, regularizers, constraints, dtype, trainable: the "Advanced" section."""
    if key in ADVANCED_KEYS:
        return True
    kind = (meta or {}).get("type") or infer_kind(key, value)
    return kind in ADVANCED_TYPES


__all__ = [
    "KERAS_OBJECTS", "BoolEditor", "ChoiceEditor", "DtypeEditor", "IntEditor", "JsonDialog",
    "JsonEditor", "KerasObjectEditor", "LayerEditor", "NumberEditor", "ParamEditor", "RangeEditor",
    "StrEditor",
    "TupleEditor", "editor_kind", "error_color", "format_number", "format_tuple", "infer_kind",
    "format_choices", "is_advanced", "keras_object", "layer_summary", "make_editor", "muted_color",
    "parse_choices", "parse_json",
    "parse_number", "parse_tuple", "resolve_object_name", "same_value", "to_float32",
]
