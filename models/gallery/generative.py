"""Generative templates of the cheatsheet's section 7.4, each model part its own graph.

An autoencoder's encoder and decoder, a GAN's generator and discriminator, a
diffusion model's denoiser and noising process: each is an editable
functional graph of the project, and the recipe names the training step that
links them (``"loop"``, see :mod:`models.loops`).
"""
from __future__ import annotations

from models.gallery import register

HOOKS = "models.loops.generative"


def project_of(models: dict, dataset: dict | None, recipe: dict, meta: dict):
    """A project with one graph per built Keras model (the first is the main one).

    Args:
        models: graph name -> built functional ``keras.Model``.
        dataset: the data spec.
        recipe: the training recipe (nothing is added to it).
        meta: ``explanation`` and the like.

    Returns:
        ``(project, {})``: the templates ship no weights.
    """
    from models.build import graph_from_model
    from models.project import Project

    project = Project(graphs={name: graph_from_model(m) for name, m in models.items()},
                      dataset=dataset, recipe=dict(recipe), meta=dict(meta))
    return project, {}


def _adam(learning_rate: float, **config) -> dict:
    return {"class_name": "Adam", "config": {"learning_rate": learning_rate, **config}}


def _keras():
    from models import backend

    return backend.keras()


def _image_encoder(keras):
    """Digits in, two Dense layers (the autoencoders' shared front); returns (input, features)."""
    L = keras.layers
    x = keras.Input((8, 8, 1), name="image")
    h = L.Flatten(name="flatten")(x)
    h = L.Dense(128, activation="relu", name="dense_1")(h)
    h = L.Dense(64, activation="relu", name="dense_2")(h)
    return x, h


def _image_decoder(keras, code: int, name: str):
    """A code of ``code`` numbers back to an 8x8 digit (pixels in [0, 1])."""
    L = keras.layers
    z = keras.Input((code,), name="code")
    h = L.Dense(64, activation="relu", name="dense_1")(z)
    h = L.Dense(128, activation="relu", name="dense_2")(h)
    h = L.Dense(64, activation="sigmoid", name="pixels")(h)
    return keras.Model(z, L.Reshape((8, 8, 1), name="image")(h), name=name)


@register("autoencoder", "Autoencoder", "7.4.1",
          "An encoder squeezes 8x8 digits into 16 numbers and a decoder rebuilds them.")
def autoencoder():
    keras = _keras()
    x, h = _image_encoder(keras)
    encoder = keras.Model(x, keras.layers.Dense(16, name="code")(h), name="encoder")
    decoder = _image_decoder(keras, 16, "decoder")
    return project_of(
        {"encoder": encoder, "decoder": decoder},
        {"source": "builtin", "name": "digits"},
        {"loop": "autoencoder", "optimizer": _adam(0.002), "epochs": 60, "batch_size": 32, "seed": 0,
         "quick": {"epochs": 30},
         "quality": {"metric": "recon_improvement"},
         "extra_metrics": f"{HOOKS}:reconstruction_metrics",
         "live_view": {"fn": f"{HOOKS}:autoencoder_view", "n": 8}},
        {"explanation": (
            "Two networks trained as one. The encoder maps each 64-pixel image to a code of 16 "
            "numbers; the decoder maps the code back to 64 pixels. Training minimises the "
            "squared difference between an image and its rebuilt version, so the code must keep "
            "what matters about the digit and drop the rest: nobody says what the 16 numbers "
            "mean, the bottleneck forces them to be useful. Quality: how much of the error of "
            "always answering the average image the model removes on unseen digits."),
         "graphs": {"encoder": "image -> 16-number code", "decoder": "code -> image"}},
    )


@register("vae", "Variational autoencoder", "7.4.2",
          "An autoencoder whose 2-D code is a probability distribution: sample it to make new digits.")
def vae():
    from models.layers import Sampling

    keras = _keras()
    L = keras.layers
    x, h = _image_encoder(keras)
    z_mean = L.Dense(2, name="z_mean")(h)
    z_log_var = L.Dense(2, name="z_log_var")(h)
    z = Sampling(kl_weight=0.5, name="sampling")([z_mean, z_log_var])
    encoder = keras.Model(x, [z_mean, z_log_var, z], name="encoder")
    decoder = _image_decoder(keras, 2, "decoder")
    return project_of(
        {"encoder": encoder, "decoder": decoder},
        {"source": "builtin", "name": "digits"},
        {"loop": "vae", "optimizer": _adam(0.003), "epochs": 120, "batch_size": 32, "seed": 0,
         "quick": {"epochs": 80},
         "quality": {"metric": "recon_improvement"},
         "extra_metrics": f"{HOOKS}:vae_metrics",
         "live_view": {"fn": f"{HOOKS}:vae_view", "n": 8, "grid": 8}},
        {"explanation": (
            "The encoder does not give one code per image but a small Gaussian cloud: a mean and "
            "a variance for each of 2 latent numbers. The Sampling layer draws a point from the "
            "cloud as mean + spread x noise (the reparameterization trick, so gradients pass "
            "through), and the decoder rebuilds the image from that point. A second loss, the "
            "KL term, pulls every cloud towards a standard normal, so the codes fill one round "
            "region without gaps: any point there decodes to a plausible digit. The live view "
            "shows the 2-D latent space coloured by digit and images decoded from a grid over it. "
            "Sampling's kl_weight trades sharper reconstructions (low) for a tidier space (high)."),
         "graphs": {"encoder": "image -> z mean, z log-variance, sampled z", "decoder": "z -> image"}},
    )


def _gan_recipe(epochs: int, quick: int, batch_size: int, metrics: str, view: str) -> dict:
    return {"loop": "gan", "optimizer": _adam(0.001, beta_1=0.5), "epochs": epochs,
            "batch_size": batch_size, "seed": 0, "quick": {"epochs": quick},
            "loop_options": {"discriminator_optimizer": _adam(0.001, beta_1=0.5)},
            "quality": {"metric": "modes_covered"},
            "extra_metrics": f"{HOOKS}:{metrics}", "epoch_metrics": f"{HOOKS}:{metrics}",
            "monitor": {"metric": "modes_covered", "mode": "max"},
            "live_view": {"fn": f"{HOOKS}:{view}"}}


_GAN_EXPLANATION = (
    "Two networks play a game. The generator turns random noise into samples; the "
    "discriminator sees real samples and generated ones and learns to tell them apart (it "
    "outputs one score, high for real). The generator is trained to make the discriminator "
    "call its samples real. Each batch both take one step with their own optimizer; their "
    "losses (g_loss, d_loss) pull against each other, so neither falls steadily: what "
    "matters is what the generator makes. The usual failure is mode collapse, a generator "
    "that makes only a few kinds of sample; modes_covered counts how many kinds it makes. ")


@register("gan", "Generative adversarial network", "7.4.3",
          "A generator learns to draw points from a ring of 8 Gaussians against a discriminator.")
def gan():
    keras = _keras()
    L = keras.layers
    z = keras.Input((8,), name="noise")
    h = L.Dense(128, activation="relu", name="dense_1")(z)
    h = L.Dense(128, activation="relu", name="dense_2")(h)
    generator = keras.Model(z, L.Dense(2, name="point")(h), name="generator")
    p = keras.Input((2,), name="point")
    h = L.Dense(128, activation="relu", name="dense_1")(p)
    h = L.Dense(128, activation="relu", name="dense_2")(h)
    discriminator = keras.Model(p, L.Dense(1, name="real_score")(h), name="discriminator")
    return project_of(
        {"generator": generator, "discriminator": discriminator},
        {"source": "builtin", "name": "ring"},
        _gan_recipe(60, 40, 128, "ring_metrics", "ring_view"),
        {"explanation": _GAN_EXPLANATION + (
            "Here the real data is a ring of 8 Gaussian blobs: the live view shows the "
            "generated points over the real ones after every epoch, so collapse onto a few "
            "blobs is plain to see. A mode counts as covered when at least 2% of 1000 samples "
            "fall within 3 standard deviations of its centre."),
         "graphs": {"generator": "8 noise values -> a 2-D point",
                    "discriminator": "a 2-D point -> how real it looks (a logit)"}},
    )


@register("gan-digits", "GAN for digits", "7.4.3",
          "The same two-player game on 8x8 digit images: watch digits appear out of noise.")
def gan_digits():
    keras = _keras()
    L = keras.layers
    z = keras.Input((16,), name="noise")
    h = L.Dense(128, activation="relu", name="dense_1")(z)
    h = L.Dense(256, activation="relu", name="dense_2")(h)
    h = L.Dense(64, activation="sigmoid", name="pixels")(h)
    generator = keras.Model(z, L.Reshape((8, 8, 1), name="image")(h), name="generator")
    x = keras.Input((8, 8, 1), name="image")
    h = L.Flatten(name="flatten")(x)
    # Noise on its input and dropout keep the discriminator from winning too soon,
    # which is what drives a generator into making one digit only.
    h = L.GaussianNoise(0.1, name="input_noise")(h)
    h = L.Dense(256, name="dense_1")(h)
    h = L.LeakyReLU(0.2, name="leaky_1")(h)
    h = L.Dropout(0.3, name="dropout_1")(h)
    h = L.Dense(128, name="dense_2")(h)
    h = L.LeakyReLU(0.2, name="leaky_2")(h)
    h = L.Dropout(0.3, name="dropout_2")(h)
    discriminator = keras.Model(x, L.Dense(1, name="real_score")(h), name="discriminator")
    recipe = _gan_recipe(80, 60, 32, "digit_metrics", "digits_gan_view")
    return project_of(
        {"generator": generator, "discriminator": discriminator},
        {"source": "builtin", "name": "digits"},
        recipe,
        {"explanation": _GAN_EXPLANATION + (
            "Here the samples are 8x8 digit images. The live view shows the same 32 noise "
            "vectors turned into images after every epoch; under each, the digit a classifier "
            "of real digits sees in it. A digit counts as made when at least 2% of 1000 samples "
            "look clearly like it (probability 0.9 or more)."),
         "graphs": {"generator": "16 noise values -> an 8x8 image",
                    "discriminator": "an image -> how real it looks (a logit)"}},
    )


@register("diffusion", "Diffusion model", "7.4.4",
          "Learns to remove noise step by step, then turns pure noise into points on two moons.")
def diffusion():
    from models.layers import NoiseSchedule, TimestepEmbedding

    keras = _keras()
    L = keras.layers
    noisy = keras.Input((2,), name="noisy")
    step = keras.Input((1,), name="step")
    t = TimestepEmbedding(32, max_period=1000.0, name="step_embedding")(step)
    t = L.Dense(128, activation="silu", name="step_dense")(t)
    h = L.Dense(128, activation="silu", name="point_dense")(noisy)
    h = L.Add(name="add_step")([h, t])
    h = L.Dense(128, activation="silu", name="dense_1")(h)
    h = L.Dense(128, activation="silu", name="dense_2")(h)
    denoiser = keras.Model([noisy, step], L.Dense(2, name="noise")(h), name="denoiser")
    clean = keras.Input((2,), name="clean")
    noise = keras.Input((2,), name="noise")
    t_in = keras.Input((1,), dtype="int32", name="step")
    noised = NoiseSchedule(100, schedule="cosine", name="schedule")([clean, noise, t_in])
    noising = keras.Model([clean, noise, t_in], noised, name="noising")
    return project_of(
        {"denoiser": denoiser, "noising": noising},
        {"source": "builtin", "name": "moons-clean"},
        {"loop": "diffusion", "epochs": 100, "batch_size": 64, "seed": 0,
         "optimizer": _adam(0.003),
         # The rate falls to 5% over the run (66 steps an epoch): the last steps refine.
         "schedule": {"class_name": "CosineDecay", "config": {"decay_steps": 6600, "alpha": 0.05}},
         "quick": {"epochs": 60,
                   "schedule": {"class_name": "CosineDecay", "config": {"decay_steps": 3960, "alpha": 0.05}}},
         "quality": {"metric": "sample_quality"},
         "extra_metrics": f"{HOOKS}:sample_quality",
         "live_view": {"fn": f"{HOOKS}:diffusion_view", "n": 1000, "paths": 3}},
        {"explanation": (
            "The noising graph is the forward process: its NoiseSchedule mixes a clean point "
            "with Gaussian noise, more at every one of 100 steps, until nothing of the point "
            "is left. The denoiser sees a noisy point and its step (as a sinusoidal embedding) "
            "and is trained to tell which noise was added: a plain regression. To generate, "
            "start from pure noise and run the steps backwards, each time removing the noise "
            "the denoiser sees and adding back a little fresh noise. The live view shows the "
            "samples over the data, the cloud of noise sharpening into two moons, and the path "
            "of a few samples. Quality: how much closer the samples lie to the data than the "
            "noise they started from."),
         "graphs": {"denoiser": "noisy point and step -> the noise in it",
                    "noising": "clean point, noise and step -> noisy point (the schedule)"}},
    )
