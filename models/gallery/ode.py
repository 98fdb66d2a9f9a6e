"""The neural ODE template of the cheatsheet's section 7.7.3: a learned flow that untangles two moons."""
from __future__ import annotations

import numpy as np

from models.gallery import register
from models.gallery.supervised import _project, fit_recipe


@register("neural-ode", "Neural ordinary differential equation", "7.7.3",
          "An ODE block moves the moons' points along a learned flow (RK4) until a line separates them.")
def neural_ode():
    from models import backend
    from models.layers import ODEBlock

    keras = backend.keras()
    x = keras.Input((2,), name="point")
    # ReLU dynamics escaped the "almost a straight line" plateau from every seed tried;
    # tanh ones stayed on it from some. Without the kinetic penalty the flow flings the
    # points ten times further than it needs to, which the view then cannot show.
    h = ODEBlock(units=[32], activation="relu", steps=6, t1=1.0, kinetic_weight=0.1,
                 name="ode")(x)
    y = keras.layers.Dense(1, activation="sigmoid", name="moon")(h)
    model = keras.Model(x, y, name="neural_ode")
    return _project(
        model,
        {"source": "builtin", "name": "moons"},
        fit_recipe(0.01, 20, loss="binary_crossentropy",
                   live_view={"fn": "models.gallery.ode:trajectory_view", "points": 60}),
        {"explanation": (
            "Cheatsheet 7.7.3, neural ordinary differential equations: instead of a stack of "
            "layers, the hidden state follows a velocity field, dh/dt = f(h, t), where f is a "
            "small network, and the output is where the state arrives at t = 1. The ODE block "
            "integrates it with 6 fixed Runge-Kutta (RK4) steps and learns f by back-propagating "
            "through them; a residual network is the same idea with one crude Euler step per "
            "layer. Here the state is the 2-D point itself: the flow drags the two interleaved "
            "moons apart until a single line (the sigmoid unit) separates them, and a small "
            "kinetic-energy penalty keeps the paths short and straight. The live view draws "
            "the paths the points take. Edit the block's units, steps or t1 in the inspector "
            "to change the dynamics network or the solver.")},
    )


def trajectory_view(model, dataset, options):
    """The paths of some validation points through the first ODE block, coloured by class.

    Options: ``points`` (how many paths, default 60).
    """
    from models import backend, views
    from models.layers import ODEBlock

    keras = backend.keras()
    block = next((layer for layer in model.layers if isinstance(layer, ODEBlock)), None)
    if block is None:
        return views.view("Flow", views.text_panel("Flow", "the model has no ODE block"))
    x, y = dataset.x_val, np.asarray(dataset.y_val).ravel()
    idx = np.linspace(0, len(y) - 1, min(int(options.get("points", 60)), len(y))).astype(int)
    start = x[idx]
    axes = {"x_title": "x1", "y_title": "x2"}  # the state is the input point itself
    if block.input is not model.inputs[0]:
        start = keras.Model(model.inputs, block.input)(start, training=False)
        axes = {"x_title": "state 1", "y_title": "state 2"}
    _, states = block(start, return_trajectory=True)
    states = np.asarray(states)[..., :2]  # [points, steps + 1, 2]: the first two state axes
    classes = y[idx].astype(int)
    steps = states.shape[1] - 1
    names = dataset.class_names or ["0", "1"]
    # One line per point; the first of each class carries the legend's name.
    paths = [views.line(f"moon {names[c]}" if k == int(np.argmax(classes == c)) else "",
                        states[k, :, 0], states[k, :, 1], cls=c)
             for k, c in enumerate(classes)]
    pred = (np.asarray(model(x[idx], training=False)).ravel() > 0.5).astype(int)
    return views.view(
        "Learned flow",
        views.lines_panel(f"Paths of {len(idx)} validation points through {steps} RK4 steps, "
                          f"t = 0 to {block.t1:g} (colour: true moon)", *paths, **axes),
        views.scatter_panel(f"Where they end at t = {block.t1:g}, coloured by prediction "
                            f"({int((pred == classes).sum())}/{len(idx)} right)",
                            views.series("start (t = 0)", states[:, 0, 0], states[:, 0, 1],
                                         size=4, color="#999999"),
                            views.series("end", states[:, -1, 0], states[:, -1, 1],
                                         classes=pred, size=8), **axes),
    )
