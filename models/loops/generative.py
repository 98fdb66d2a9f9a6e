"""Generative models' training steps, with their live views and quality measures.

Each trainer holds the project's graphs (see :class:`~models.loops.trainer.Trainer`)
and trains them with ``fit``:

* :class:`AutoencoderTrainer`: encoder and decoder, reconstruction error;
* :class:`VAETrainer`: the same with a sampled latent code and its KL term;
* :class:`GANTrainer`: generator and discriminator, each with its optimizer;
* :class:`DiffusionTrainer`: a denoiser and the noising graph that holds the
  noise schedule.

The functions after each trainer are the recipe hooks of its templates:
``live_view`` functions ``fn(model, dataset, options)`` and metric functions
``fn(model, dataset, recipe)`` (``extra_metrics`` and ``epoch_metrics``),
called with the trainer as ``model``. Views use a few fixed samples and one
forward pass each, so they cost little per epoch.
"""
from __future__ import annotations

import numpy as np

from models import views
from models.loops.trainer import Trainer, keras, sample_rows, tf

ops = keras.ops


def _shape(tensor_or_model, output: int | None = None) -> tuple:
    shapes = tensor_or_model
    if output is not None:
        shapes = tensor_or_model.outputs[output]
    return tuple(shapes.shape[1:])


def _numpy(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x))


def _class_labels(dataset, n: int) -> list[str] | None:
    names = getattr(dataset, "class_names", None)
    y = getattr(dataset, "y_val", None)
    if names is None or y is None:
        return None
    return [names[int(v)] for v in np.asarray(y)[:n]]


# --------------------------------------------------------------------------- autoencoder


class _Reconstructing(Trainer):
    """Shared by the autoencoders: an encoder, a decoder and a ``reconstruct`` for the hooks."""

    roles = ("encoder", "decoder")

    def code(self, x):
        """The code the decoder reconstructs from (the mean, for a VAE)."""
        return self.graph("encoder")(x, training=False)

    def reconstruct(self, x) -> np.ndarray:
        return _numpy(self.graph("decoder")(self.code(x), training=False))

    def call(self, inputs, training=False):
        return self.graph("decoder")(self.code(inputs), training=training)

    def check(self) -> str:
        encoder, decoder = self.graph("encoder"), self.graph("decoder")
        code = self._code_shape()
        if tuple(decoder.inputs[0].shape[1:]) != code:
            return (f"the encoder's code has shape {code} but the decoder takes "
                    f"{tuple(decoder.inputs[0].shape[1:])}: make the decoder's Input match")
        if tuple(decoder.outputs[0].shape[1:]) != tuple(encoder.inputs[0].shape[1:]):
            return (f"the decoder makes {tuple(decoder.outputs[0].shape[1:])} but the encoder takes "
                    f"{tuple(encoder.inputs[0].shape[1:])}: a reconstruction must have the input's shape")
        return ""

    def _code_shape(self) -> tuple:
        return _shape(self.graph("encoder"), 0)


@keras.saving.register_keras_serializable(package="layerforge")
class AutoencoderTrainer(_Reconstructing):
    """Encoder then decoder, trained to give back their input (mean squared error).

    Options: none. Graphs: ``encoder`` (input -> code) and ``decoder``
    (code -> input).
    """

    def compute(self, x, training):
        reconstruction = self.graph("decoder")(self.graph("encoder")(x, training=training),
                                               training=training)
        return {"loss": ops.mean(ops.square(reconstruction - x))}


def reconstruction_metrics(model, dataset, recipe) -> dict:
    """``test_reconstruction_mse`` and ``recon_improvement`` on the test split.

    ``recon_improvement = 1 - MSE / MSE of the mean image``: 0 for a model
    that always gives back the average training sample, 1 for a perfect one.
    """
    x = np.asarray(dataset.x_test, dtype=np.float32)
    mse = float(np.mean((model.reconstruct(x) - x) ** 2))
    baseline = float(np.mean((np.asarray(dataset.x_train).mean(axis=0) - x) ** 2))
    return {"test_reconstruction_mse": mse, "recon_improvement": 1.0 - mse / max(baseline, 1e-12)}


def _reconstructions_panel(model, dataset, n: int = 8) -> dict:
    x = np.asarray(dataset.x_val[:n], dtype=np.float32)
    out = model.reconstruct(x)
    labels = _class_labels(dataset, n) or [""] * len(x)
    return views.images_panel(np.concatenate([x, out]), "Inputs (top) and reconstructions (bottom)",
                              labels=[*labels, *(["rebuilt"] * len(x))], columns=len(x))


def autoencoder_view(model, dataset, options) -> dict:
    """Inputs beside their reconstructions (image data)."""
    return views.view("Reconstructions", _reconstructions_panel(model, dataset, int(options.get("n", 8))))


# --------------------------------------------------------------------------- VAE


@keras.saving.register_keras_serializable(package="layerforge")
class VAETrainer(_Reconstructing):
    """A variational autoencoder: reconstruction (binary cross-entropy) plus the KL term.

    The encoder outputs ``[z_mean, z_log_var, z]``, ``z`` from a
    :class:`~models.layers.Sampling` layer, whose ``kl_weight`` weighs the
    KL term here too. Images are compared pixel by pixel (summed per image),
    so values must lie in [0, 1].
    """

    metric_names = ("loss", "reconstruction_loss", "kl_loss")

    @property
    def sampler(self):
        """The encoder's Sampling layer (None when it has none)."""
        from models.layers import Sampling

        return next((l for l in self.graph("encoder").layers if isinstance(l, Sampling)), None)

    def check(self) -> str:
        encoder = self.graph("encoder")
        if len(encoder.outputs) != 3:
            return (f"a VAE's encoder outputs [z_mean, z_log_var, z]; this one has "
                    f"{len(encoder.outputs)} output(s)")
        if self.sampler is None:
            return "a VAE's encoder needs a Sampling layer (the reparameterization trick) to make z"
        return super().check()

    def _code_shape(self) -> tuple:
        return _shape(self.graph("encoder"), 2)

    def code(self, x):
        return self.graph("encoder")(x, training=False)[0]

    def compute(self, x, training):
        from models.layers import gaussian_kl

        z_mean, z_log_var, z = self.graph("encoder")(x, training=training)
        reconstruction = self.graph("decoder")(z, training=training)
        r = ops.clip(reconstruction, 1e-7, 1.0 - 1e-7)
        per_pixel = -(x * ops.log(r) + (1.0 - x) * ops.log(1.0 - r))
        recon = ops.mean(ops.sum(ops.reshape(per_pixel, (ops.shape(x)[0], -1)), axis=-1))
        kl = gaussian_kl(z_mean, z_log_var)
        return {"loss": recon + self.sampler.kl_weight * kl, "reconstruction_loss": recon, "kl_loss": kl}

    def decode(self, z) -> np.ndarray:
        return _numpy(self.graph("decoder")(np.asarray(z, dtype=np.float32), training=False))


def vae_metrics(model, dataset, recipe) -> dict:
    """Reconstruction measures (see :func:`reconstruction_metrics`) and the test KL term."""
    out = reconstruction_metrics(model, dataset, recipe)
    z_mean, z_log_var, _ = model.graph("encoder")(np.asarray(dataset.x_test, dtype=np.float32),
                                                  training=False)
    from models.layers import gaussian_kl

    out["test_kl"] = float(_numpy(gaussian_kl(z_mean, z_log_var)))
    return out


def vae_view(model, dataset, options) -> dict:
    """Reconstructions, the latent space coloured by class, and images decoded from a latent grid."""
    n, side = int(options.get("n", 8)), int(options.get("grid", 8))
    x = np.asarray(sample_rows(np.asarray(dataset.x_test), 500), dtype=np.float32)
    y = sample_rows(np.asarray(dataset.y_test), 500)
    z = _numpy(model.code(x))
    latent = z.shape[-1]
    span = np.linspace(-2.0, 2.0, side)
    grid = np.zeros((side * side, latent), dtype=np.float32)
    grid[:, 0] = np.tile(span, side)
    if latent > 1:
        grid[:, 1] = np.repeat(span[::-1], side)  # up the panel is up the latent axis
    series = views.series_by_class(z[:, 0], z[:, 1] if latent > 1 else np.zeros(len(z)), y,
                                   getattr(dataset, "class_names", None))
    return views.view(
        "Latent space",
        _reconstructions_panel(model, dataset, n),
        views.scatter_panel("Test images in the latent space (z mean)", *series,
                            x_title="z1", y_title="z2" if latent > 1 else "", equal_axes=True),
        views.images_panel(model.decode(grid), "Decoded from a grid over z1, z2 in [-2, 2]",
                           columns=side),
    )


# --------------------------------------------------------------------------- GAN


@keras.saving.register_keras_serializable(package="layerforge")
class GANTrainer(Trainer):
    """A generative adversarial network: two graphs, two optimizers, one step each per batch.

    The discriminator outputs one logit per sample (real: high). Each batch,
    it learns to tell the batch from generated samples; then the generator
    learns to fool it (the non-saturating loss: the generator maximises the
    log-probability that its samples are called real). The recipe's
    optimizer trains the generator; ``loop_options.discriminator_optimizer``
    (default: the same) the discriminator. ``"loss"`` is the sum of both
    losses; ``g_loss`` and ``d_loss`` are plotted together.
    """

    roles = ("generator", "discriminator")
    metric_names = ("loss", "g_loss", "d_loss")

    def __init__(self, graphs, options=None, **kwargs):
        super().__init__(graphs, options, **kwargs)
        self.noise_dim = int(self.graph("generator").inputs[0].shape[-1])
        self.seed_generator = keras.random.SeedGenerator(self.options.get("seed"))

    def check(self) -> str:
        generator, discriminator = self.graph("generator"), self.graph("discriminator")
        made, taken = _shape(generator, 0), _shape(discriminator.inputs[0])
        if made != taken:
            return (f"the generator makes samples of shape {made} but the discriminator takes "
                    f"{taken}: make them match")
        if _shape(discriminator, 0) != (1,):
            return (f"the discriminator must give one logit per sample (a Dense(1) without "
                    f"activation); it gives {_shape(discriminator, 0)}")
        return ""

    def compile_from(self, recipe):
        from models.training import make_optimizer

        super().compile_from(recipe)
        spec = self.options.get("discriminator_optimizer")
        self.d_optimizer = make_optimizer({**recipe, "optimizer": spec} if spec else recipe)

    def build_optimizers(self):
        self.optimizer.build(self.graph("generator").trainable_weights)
        self.d_optimizer.build(self.graph("discriminator").trainable_weights)

    @property
    def extra_optimizers(self) -> list:
        """The discriminator's optimizer (the generator's is ``optimizer``)."""
        return [self.d_optimizer]

    def noise(self, n):
        return keras.random.normal((n, self.noise_dim), seed=self.seed_generator)

    def call(self, inputs, training=False):
        return self.graph("generator")(inputs, training=training)

    def _adversarial_losses(self, real, fake, training):
        discriminator = self.graph("discriminator")
        real_logits = discriminator(real, training=training)
        fake_logits = discriminator(fake, training=training)
        d_loss = ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
        g_loss = ops.mean(ops.softplus(-fake_logits))
        return d_loss, g_loss

    def train_step(self, data):
        from models.loops.trainer import features

        real = features(data)
        n = ops.shape(real)[0]
        generator, discriminator = self.graph("generator"), self.graph("discriminator")
        with tf.GradientTape() as tape:
            d_loss, _ = self._adversarial_losses(real, generator(self.noise(n), training=True), True)
        weights = discriminator.trainable_weights
        self.d_optimizer.apply(tape.gradient(d_loss, weights), weights)
        with tf.GradientTape() as tape:
            g_loss = ops.mean(ops.softplus(-discriminator(generator(self.noise(n), training=True),
                                                          training=True)))
        weights = generator.trainable_weights
        self.optimizer.apply(tape.gradient(g_loss, weights), weights)
        return self.record({"loss": g_loss + d_loss, "g_loss": g_loss, "d_loss": d_loss})

    def test_step(self, data):
        from models.loops.trainer import features

        real = features(data)
        d_loss, g_loss = self._adversarial_losses(real, self.graph("generator")(self.noise(ops.shape(real)[0])),
                                      False)
        return self.record({"loss": g_loss + d_loss, "g_loss": g_loss, "d_loss": d_loss})

    def generate(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` samples from fixed noise (the same every call for one seed)."""
        z = np.random.default_rng(seed).normal(size=(n, self.noise_dim)).astype(np.float32)
        return _numpy(self.graph("generator")(z, training=False))


def mode_coverage(samples: np.ndarray, centers: np.ndarray, std: float,
                  min_share: float = 0.02) -> tuple[int, float]:
    """How many modes hold at least ``min_share`` of the samples within 3 sd of their centre.

    Returns:
        ``(modes covered, share of samples within 3 sd of some centre)``.
    """
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    near = d.min(axis=1) <= 3.0 * std
    counts = np.bincount(d.argmin(axis=1)[near], minlength=len(centers))
    return int((counts >= min_share * len(samples)).sum()), float(near.mean())


def ring_metrics(model, dataset, recipe) -> dict:
    """``modes_covered`` of the ring's 8 Gaussians by 1000 samples, and ``near_mode_share``."""
    from models.datasets.generative import RING_STD, ring_centers

    covered, share = mode_coverage(model.generate(1000), ring_centers(), RING_STD)
    return {"modes_covered": covered, "near_mode_share": share}


def ring_view(model, dataset, options) -> dict:
    """Generated points over the real ring, and how many land near each of its modes."""
    from models.datasets.generative import RING_STD, ring_centers

    real = sample_rows(np.asarray(dataset.x_train), 1000)
    fake = model.generate(int(options.get("n", 1000)))
    centers = ring_centers()
    d = np.linalg.norm(fake[:, None, :] - centers[None, :, :], axis=-1)
    near = d.min(axis=1) <= 3.0 * RING_STD
    percent = 100.0 * np.bincount(d.argmin(axis=1)[near], minlength=len(centers)) / len(fake)
    return views.view(
        "Generated points",
        views.scatter_panel("Generated (blue) over real (grey) points",
                            views.series("real", real[:, 0], real[:, 1], size=3, color="#b0b0b0"),
                            views.series("generated", fake[:, 0], fake[:, 1], size=4, color="#1f77b4"),
                            x_title="x1", y_title="x2", equal_axes=True),
        views.bars_panel("Samples within 3 sd of each mode (covered: above the 2% line)",
                         [f"mode {i}" for i in range(len(centers))], percent,
                         y_title="% of samples", reference=2.0))


def _digit_judge(dataset):
    """A logistic regression on the real training digits: it names the digit a sample looks like."""
    judge = getattr(dataset, "_layerforge_digit_judge", None)
    if judge is None:
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(dataset.x_train).reshape(dataset.n_train, -1)
        # Weakly regularised, so it is sure of most real digits (about 80% of real test
        # digits clear the 0.9 bar below).
        judge = LogisticRegression(C=10.0, max_iter=5000).fit(x, np.asarray(dataset.y_train))
        dataset._layerforge_digit_judge = judge  # one fit per dataset, not one per epoch
    return judge


def digit_metrics(model, dataset, recipe) -> dict:
    """``modes_covered``: of the 10 digits, those that at least 2% of 1000 samples clearly look like.

    A sample counts for a digit when a classifier trained on the real digits
    gives it that digit with probability 0.9 or more (``clear_share``: the
    share of samples that clear).
    """
    samples = model.generate(1000)
    p = _digit_judge(dataset).predict_proba(samples.reshape(len(samples), -1))
    clear = p.max(axis=1) >= 0.9
    counts = np.bincount(p.argmax(axis=1)[clear], minlength=p.shape[1])
    return {"modes_covered": int((counts >= 0.02 * len(samples)).sum()),
            "clear_share": float(clear.mean())}


def digits_gan_view(model, dataset, options) -> dict:
    """A grid of generated digits (the same noise every epoch) with the digit each looks like."""
    n = int(options.get("n", 32))
    samples = model.generate(n)
    p = _digit_judge(dataset).predict_proba(samples.reshape(n, -1))
    labels = [f"{int(k)} ({v:.0%})" for k, v in zip(p.argmax(axis=1), p.max(axis=1))]
    return views.view("Generated digits", views.images_panel(
        samples, "Generated digits (what a classifier of real digits calls them)", labels=labels,
        columns=8))


# --------------------------------------------------------------------------- diffusion


@keras.saving.register_keras_serializable(package="layerforge")
class DiffusionTrainer(Trainer):
    """A denoising diffusion model: learn to tell the noise that was added to the data.

    Graphs: ``noising`` holds a :class:`~models.layers.NoiseSchedule` layer
    (inputs ``[clean, noise, step]``: the forward process and its schedule);
    ``denoiser`` takes ``[noisy, step]`` and predicts the noise. Each batch
    draws a step and fresh noise per sample, noises the batch and trains the
    denoiser by mean squared error. :meth:`sample` runs the process backwards
    from Gaussian noise.
    """

    roles = ("denoiser", "noising")

    def __init__(self, graphs, options=None, **kwargs):
        super().__init__(graphs, options, **kwargs)
        self.seed_generator = keras.random.SeedGenerator(self.options.get("seed"))
        self._reverse = None

    @property
    def schedule(self):
        """The noising graph's NoiseSchedule layer (None when it has none)."""
        from models.layers import NoiseSchedule

        return next((l for l in self.graph("noising").layers if isinstance(l, NoiseSchedule)), None)

    def check(self) -> str:
        if self.schedule is None:
            return "the noising graph needs a NoiseSchedule layer (it defines the forward process)"
        denoiser = self.graph("denoiser")
        if len(denoiser.inputs) != 2:
            return "the denoiser takes two inputs, [noisy sample, step]"
        data_shape = _shape(denoiser.inputs[0])
        if _shape(denoiser, 0) != data_shape:
            return (f"the denoiser predicts the noise, so its output must have the sample's shape "
                    f"{data_shape}; it has {_shape(denoiser, 0)}")
        return ""

    @property
    def steps(self) -> int:
        return int(self.schedule.steps)

    def compute(self, x, training):
        n = ops.shape(x)[0]
        t = keras.random.randint((n, 1), 0, self.steps, seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(x), seed=self.seed_generator)
        noisy = self.graph("noising")([x, noise, t], training=training)
        predicted = self.graph("denoiser")([noisy, ops.cast(t, "float32")], training=training)
        return {"loss": ops.mean(ops.square(predicted - noise))}

    def trained_weights(self):
        return self.graph("denoiser").trainable_weights

    def call(self, inputs, training=False):
        return self.graph("denoiser")(inputs, training=training)

    def _reverse_fn(self):
        """The whole reverse process as one compiled loop (a Python loop of 100 calls is slow)."""
        if self._reverse is None:
            denoiser, schedule, steps = self.graph("denoiser"), self.schedule, self.steps

            @tf.function(reduce_retracing=True)
            def reverse(x, noises):
                path = tf.TensorArray(tf.float32, size=steps + 1).write(0, x)
                for i in tf.range(steps):
                    t = steps - 1 - i
                    stamp = tf.fill((tf.shape(x)[0], 1), tf.cast(t, tf.float32))
                    x = schedule.reverse_step(x, denoiser([x, stamp], training=False), t, noises[i])
                    path = path.write(i + 1, x)
                return x, path.stack()

            self._reverse = reverse
        return self._reverse

    def sample(self, start: np.ndarray, seed: int = 0):
        """Run the reverse process from ``start`` (Gaussian noise) to samples.

        Args:
            start: the noise to start from, ``(n, *sample_shape)``.
            seed: seeds the noise each reverse step adds.

        Returns:
            ``(samples, path)``: ``path[k]`` holds the samples after ``k``
            reverse steps (``path[0]`` is ``start``, ``path[steps]`` the samples).
        """
        x = np.asarray(start, dtype=np.float32)
        noises = np.random.default_rng(seed).normal(size=(self.steps, *x.shape)).astype(np.float32)
        samples, path = self._reverse_fn()(tf.constant(x), tf.constant(noises))
        return samples.numpy(), path.numpy()


def _noise_like(dataset, n: int, seed: int = 0) -> np.ndarray:
    shape = tuple(np.asarray(dataset.x_train).shape[1:])
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


def sample_quality(model, dataset, recipe) -> dict:
    """``sample_quality = 1 - d(samples) / d(noise)`` for 1000 samples.

    ``d`` is the mean distance from a point to its nearest training sample;
    the noise is the Gaussian noise the samples were made from. 0: the
    samples are no closer to the data than noise is; 1: they lie on it.
    """
    from sklearn.neighbors import NearestNeighbors

    data = np.asarray(dataset.x_train, dtype=np.float64).reshape(dataset.n_train, -1)
    nearest = NearestNeighbors(n_neighbors=1).fit(data)
    start = _noise_like(dataset, 1000)
    samples, _ = model.sample(start)
    d_samples = nearest.kneighbors(samples.reshape(len(samples), -1))[0].mean()
    d_noise = nearest.kneighbors(start.reshape(len(start), -1))[0].mean()
    return {"sample_quality": 1.0 - float(d_samples) / float(d_noise),
            "sample_distance": float(d_samples), "noise_distance": float(d_noise)}


def diffusion_view(model, dataset, options) -> dict:
    """Samples over the data, the reverse process as density snapshots, and a few samples' paths."""
    n = int(options.get("n", 1000))
    steps = model.steps
    samples, path = model.sample(_noise_like(dataset, n))
    data = np.asarray(dataset.x_train)
    real = sample_rows(data, 1000)
    taken = (0, steps // 4, steps // 2, (3 * steps) // 4, steps)  # reverse steps taken so far
    lo, hi = np.minimum(data.min(axis=0), -2.5), np.maximum(data.max(axis=0), 2.5)
    strip = [_density(path[k], lo, hi) for k in taken] + [_density(data, lo, hi)]
    labels = [f"step {steps - k}" for k in taken] + ["the data"]
    paths = [views.line(f"sample {i + 1}", path[:, i, 0], path[:, i, 1])
             for i in range(int(options.get("paths", 3)))]
    return views.view(
        "Reverse process",
        views.scatter_panel("Samples (blue) over the data (grey)",
                            views.series("data", real[:, 0], real[:, 1], size=3, color="#b0b0b0"),
                            views.series("samples", samples[:, 0], samples[:, 1], size=4,
                                         color="#1f77b4"), x_title="x1", y_title="x2",
                            equal_axes=True),
        views.images_panel(strip, f"Density of {n} samples as the noise is removed, step {steps} to 0",
                           labels=labels, columns=3),
        views.lines_panel(f"Denoising paths of {len(paths)} samples ({steps} steps)", *paths,
                          x_title="x1", y_title="x2", equal_axes=True),
    )


def _density(points: np.ndarray, lo, hi, bins: int = 20) -> np.ndarray:
    """A 2-D histogram as an image in [0, 1] (dark: many points), y upwards."""
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=bins,
                                  range=[[lo[0], hi[0]], [lo[1], hi[1]]])
    image = np.sqrt(counts.T[::-1] / max(counts.max(), 1.0))
    return 1.0 - image


__all__ = ["AutoencoderTrainer", "VAETrainer", "GANTrainer", "DiffusionTrainer",
           "reconstruction_metrics", "vae_metrics", "ring_metrics", "digit_metrics",
           "sample_quality", "mode_coverage"]
