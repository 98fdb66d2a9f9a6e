"""Neural ordinary differential equations: a block that integrates learned dynamics with RK4."""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="layerforge")
class ODEBlock(keras.layers.Layer):
    """A neural ODE: integrates dh/dt = f(h, t) from 0 to t1 with fixed-step RK4, f a small learned network.

    The input is the initial state ``h(0)``; the output is ``h(t1)``, the same
    shape. ``f`` is a dense network inside the layer: hidden layers of
    ``units`` with ``activation`` (the time ``t`` joins the input of each
    when ``time_dependent``), then a linear layer back to the state's width.
    Its shape is edited like any parameter (``units`` is a list of widths), and
    its weights are the layer's weights.

    Each of the ``steps`` steps of size ``dt = t1 / steps`` evaluates ``f``
    four times (the classic Runge-Kutta scheme) and the gradient is taken
    through every step of the solver, which is exact for the discretised flow
    and cheap for the few steps used here (no adjoint solve).

    With ``kinetic_weight > 0`` the layer adds ``kinetic_weight`` times the
    mean squared velocity along the path to the loss (``add_loss``): the
    kinetic-energy regulariser of Finlay et al. (2020), which prefers short,
    straight paths, so the flow moves points only as far as the task needs.

    Called with ``return_trajectory=True`` it also returns every state,
    ``[batch, steps + 1, ..., width]`` (``h(0)`` first), for drawing the flow.

    Args:
        units: the widths of ``f``'s hidden layers, e.g. ``[32, 32]``.
        activation: the hidden layers' activation.
        steps: RK4 steps from ``0`` to ``t1``.
        t1: the end of the integration interval.
        time_dependent: feed ``t`` to ``f`` (else the dynamics are autonomous).
        kinetic_weight: the weight of the kinetic-energy loss (0: none).
    """

    def __init__(self, units=(32,), activation="tanh", steps: int = 10, t1: float = 1.0,
                 time_dependent: bool = True, kinetic_weight: float = 0.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        units = [units] if isinstance(units, int) else list(units)
        if not units or any(int(u) < 1 for u in units):
            raise ValueError(f"ODEBlock units must be a list of positive widths; got {units}")
        if int(steps) < 1:
            raise ValueError(f"ODEBlock needs at least 1 integration step; got {steps}")
        if not float(t1) > 0.0:
            raise ValueError(f"ODEBlock t1 must be positive; got {t1}")
        self.units = [int(u) for u in units]
        self.activation = keras.activations.get(activation)
        self.steps = int(steps)
        self.t1 = float(t1)
        self.time_dependent = bool(time_dependent)
        if float(kinetic_weight) < 0:
            raise ValueError(f"ODEBlock kinetic_weight cannot be negative; got {kinetic_weight}")
        self.kinetic_weight = float(kinetic_weight)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.hidden = [keras.layers.Dense(u, activation=self.activation,
                                          kernel_initializer=self.kernel_initializer,
                                          name=f"dynamics_{i + 1}")
                       for i, u in enumerate(self.units)]
        self.velocity = None  # f's last layer: its width is the state's, known at build

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None:
            raise ValueError("ODEBlock: the width of the state (last axis) must be known")
        extra = 1 if self.time_dependent else 0
        shape = tuple(input_shape)
        for layer in self.hidden:
            layer.build((*shape[:-1], shape[-1] + extra))
            shape = (*shape[:-1], layer.units)
        self.velocity = keras.layers.Dense(int(width), name="dynamics_out",
                                           kernel_initializer=self.kernel_initializer)
        self.velocity.build((*shape[:-1], shape[-1] + extra))

    def dynamics(self, h, t):
        """``f(h, t)``: the velocity of every state ``h`` at time ``t`` (a float)."""
        x = h
        for layer in [*self.hidden, self.velocity]:
            if self.time_dependent:
                x = ops.concatenate([x, ops.ones_like(x[..., :1]) * t], axis=-1)
            x = layer(x)
        return x

    def call(self, inputs, return_trajectory: bool = False):
        dt = self.t1 / self.steps
        h = inputs
        states = [h]
        kinetic = 0.0
        for k in range(self.steps):
            t = k * dt
            k1 = self.dynamics(h, t)
            k2 = self.dynamics(h + 0.5 * dt * k1, t + 0.5 * dt)
            k3 = self.dynamics(h + 0.5 * dt * k2, t + 0.5 * dt)
            k4 = self.dynamics(h + dt * k3, t + dt)
            velocity = (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
            h = h + dt * velocity
            states.append(h)
            if self.kinetic_weight > 0:
                kinetic = kinetic + dt * ops.mean(ops.sum(ops.square(velocity), axis=-1))
        if self.kinetic_weight > 0:
            self.add_loss(self.kinetic_weight * kinetic)
        if return_trajectory:
            return h, ops.stack(states, axis=1)
        return h

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": list(self.units),
            "activation": keras.activations.serialize(self.activation),
            "steps": self.steps,
            "t1": self.t1,
            "time_dependent": self.time_dependent,
            "kinetic_weight": self.kinetic_weight,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        })
        return config


__all__ = ["ODEBlock"]
