"""Recurrent templates of the cheatsheet's section 7.2: a digit image read one row per time step."""
from __future__ import annotations

from models.gallery import register
from models.gallery.supervised import _project, fit_recipe

_EXPLANATIONS = {
    "SimpleRNN": (
        "Cheatsheet 7.2.1, the recurrent unit: one cell reads a sequence step by step and "
        "carries a hidden state from each step to the next, h_t = tanh(W x_t + U h_(t-1) + b), "
        "with the same weights at every step. Here the sequence is a digit image read one row "
        "of 8 pixels at a time; after the 8th row the state has seen the whole digit and a "
        "softmax head reads it. The plain cell multiplies the gradient by U at every step on "
        "the way back, so over long sequences it vanishes or explodes: the gated cells (7.2.2, "
        "7.2.3) were made to fix that."),
    "GRU": (
        "Cheatsheet 7.2.2, the gated recurrent unit: like the plain recurrent cell it carries a "
        "hidden state across the rows of the digit, but two learned gates decide how much of it "
        "to keep. The update gate z mixes the old state with a new candidate, h_t = (1 - z) h_(t-1) "
        "+ z h~_t, and the reset gate r decides how much of the old state the candidate may look "
        "at. When z stays near 0 the state (and its gradient) passes unchanged, so information "
        "from the first rows survives to the last."),
    "LSTM": (
        "Cheatsheet 7.2.3, the long short-term memory unit: besides the hidden state it keeps a "
        "cell state c that is only ever scaled and added to, c_t = f c_(t-1) + i g. Three gates, "
        "each a sigmoid of the current row and the previous state, decide what to forget (f), "
        "what to write (i, with the candidate g) and what to show as the hidden state "
        "(o, h_t = o tanh(c_t)). The additive cell path carries gradients across many steps; it "
        "has a third more weights than a GRU of the same width."),
}


def _recurrent(cell: str, units: int, quick_epochs: int):
    from models import backend

    keras = backend.keras()
    L = keras.layers
    x = keras.Input((8, 8), name="rows")
    h = getattr(L, cell)(units, name=cell.lower())(x)
    y = L.Dense(10, activation="softmax", name="digit")(h)
    model = keras.Model(x, y, name=cell.lower())
    return _project(
        model,
        {"source": "builtin", "name": "digits-rows"},
        fit_recipe(0.005, quick_epochs),
        {"explanation": _EXPLANATIONS[cell]},
    )


@register("rnn", "Recurrent network", "7.2.1",
          "A simple recurrent layer reads a digit row by row and classifies it from its last state.")
def rnn():
    return _recurrent("SimpleRNN", 64, 20)


@register("gru", "Gated recurrent unit", "7.2.2",
          "A GRU reads a digit row by row; update and reset gates decide what its state keeps.")
def gru():
    return _recurrent("GRU", 64, 20)


@register("lstm", "Long short-term memory", "7.2.3",
          "An LSTM reads a digit row by row, carrying a gated cell state from the first row to the last.")
def lstm():
    return _recurrent("LSTM", 64, 20)
