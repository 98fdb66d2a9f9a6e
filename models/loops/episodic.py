"""Episodic training for few-shot classification: prototypical networks.

An episode is a small classification task: ``n_way`` classes, ``k_shot``
labelled images of each (the support set) and a few more to classify (the
queries). The project's graph embeds images; each class's prototype is the
mean embedding of its support images, and a query belongs to the class of
the nearest prototype (squared Euclidean distance, softmax over minus the
distances). Training plays episodes drawn from the training split's classes;
the test plays episodes of the test split's classes, which the network has
never seen.
"""
from __future__ import annotations

import numpy as np

from models.loops import Loop


def _error(message: str):
    from models.training import TrainingError

    return TrainingError(message)


def class_pools(x, y) -> dict[int, np.ndarray]:
    """The images of each class."""
    y = np.asarray(y).ravel()
    return {int(c): x[y == c] for c in np.unique(y)}


def with_rotations(pools: dict) -> dict:
    """Each class plus its quarter, half and three-quarter turns as classes of their own."""
    out = {}
    for images in pools.values():
        for k in range(4):
            out[len(out)] = np.rot90(images, k, axes=(1, 2)).copy()
    return out


def sample_episode(pools: dict, rng, n_way: int, k_shot: int, queries: int):
    """``(support [n_way * k_shot, ...], query [n_way * queries, ...], classes)``, class-major."""
    classes = rng.choice(sorted(pools), n_way, replace=False)
    support, query = [], []
    for c in classes:
        pick = rng.choice(len(pools[c]), k_shot + queries, replace=False)
        support.append(pools[c][pick[:k_shot]])
        query.append(pools[c][pick[k_shot:]])
    return np.concatenate(support), np.concatenate(query), classes


def nearest_prototype(support, query, n_way: int) -> np.ndarray:
    """Each query's episode class (0..n_way-1): the nearest mean of the support embeddings."""
    protos = support.reshape(n_way, -1, support.shape[-1]).mean(1)
    d = ((query[:, None, :] - protos[None]) ** 2).sum(-1)
    return d.argmin(1)


class PrototypicalLoop(Loop):
    """Prototypical networks (Snell et al., 2017) on the project's image embedder.

    Recipe keys: ``n_way`` (of the test episodes), ``train_way``, ``k_shot``
    and ``queries`` (per class) for training episodes; ``rotations`` (turned
    images of a training class count as other classes: more classes to train
    on, as in the paper's Omniglot set-up); ``steps_per_epoch`` (episodes per
    epoch);
    ``test_episodes``, ``test_shot`` and ``test_queries`` for the test;
    ``seed``.
    """

    monitor = "val_loss"

    def build(self) -> None:
        from models import backend
        from models.training import make_optimizer

        super().build()
        tf, keras = backend.tf(), backend.keras()
        r = self.recipe
        ds = self.dataset
        if ds is None or not ds.has_classes:
            raise _error("prototypical networks learn from labelled images: choose data with "
                         "classes (e.g. builtin:digits-novel)")
        self.seed = int(r.get("seed", 0))
        keras.utils.set_random_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.n_way, self.k_shot = int(r.get("n_way", 5)), int(r.get("k_shot", 5))
        self.queries = int(r.get("queries", 10))
        self.train_pools = class_pools(ds.x_train, ds.y_train)
        if r.get("rotations"):
            self.train_pools = with_rotations(self.train_pools)
        self.train_way = int(r.get("train_way", self.n_way))
        self.val_pools = class_pools(ds.x_val, ds.y_val)
        self.test_pools = class_pools(ds.x_test, ds.y_test)
        for name, pools, way, need in (
                ("training", self.train_pools, self.train_way, self.k_shot + self.queries),
                ("test", self.test_pools, self.n_way,
                 int(r.get("test_shot", 5)) + int(r.get("test_queries", 15)))):
            if len(pools) < way:
                raise _error(f"the {name} split has {len(pools)} classes; {way}-way "
                             f"episodes need at least {way}")
            small = [c for c, v in pools.items() if len(v) < need]
            if small:
                raise _error(f"the {name} split has fewer than {need} images of class "
                             f"{small[0]}; an episode needs that many per class")
        self.encoder = next(iter(self.models.values()))
        self.optimizer = make_optimizer(r)
        encoder, optimizer = self.encoder, self.optimizer
        self._embed = tf.function(lambda x: encoder(x, training=False))

        def episode_loss(support, query, training, n_way):
            s = encoder(support, training=training)
            q = encoder(query, training=training)
            s = tf.reshape(s, [n_way, -1, tf.shape(s)[-1]])
            protos = tf.reduce_mean(s, axis=1)
            logits = -tf.reduce_sum(tf.square(q[:, None, :] - protos[None]), axis=-1)
            labels = tf.repeat(tf.range(n_way), tf.shape(q)[0] // n_way)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32),
                                                  labels), tf.float32))
            return loss, acc

        @tf.function
        def train_step(support, query):
            with tf.GradientTape() as tape:
                loss, acc = episode_loss(support, query, True, self.train_way)
            grads = tape.gradient(loss, encoder.trainable_variables)
            optimizer.apply(grads, encoder.trainable_variables)
            return loss, acc

        self._train_step = train_step
        self._eval_step = tf.function(lambda s, q: episode_loss(s, q, False, self.n_way))

    def steps_per_epoch(self) -> int:
        return int(self.recipe.get("steps_per_epoch", 100))

    def train_epoch(self, epoch: int, step) -> dict[str, float]:
        losses, accs = [], []
        for _ in range(self.steps_per_epoch()):
            support, query, _ = sample_episode(self.train_pools, self.rng, self.train_way,
                                               self.k_shot, self.queries)
            loss, acc = self._train_step(support, query)
            losses.append(float(loss))
            accs.append(float(acc))
            step(losses[-1])
        # Validation: episodes of the training classes on images held out from training.
        rng = np.random.default_rng(self.seed + 1)
        val = [self._eval_step(*sample_episode(self.val_pools, rng, self.n_way, self.k_shot,
                                               self.queries)[:2]) for _ in range(20)]
        return {"loss": float(np.mean(losses)), "episode_accuracy": float(np.mean(accs)),
                "val_loss": float(np.mean([float(v[0]) for v in val])),
                "val_episode_accuracy": float(np.mean([float(v[1]) for v in val]))}

    def episode_accuracies(self, embed, pools, episodes: int, shot: int, queries: int, seed: int):
        """Accuracy on each of ``episodes`` test episodes, with ``embed(images) -> vectors``."""
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(episodes):
            support, query, _ = sample_episode(pools, rng, self.n_way, shot, queries)
            pred = nearest_prototype(embed(support), embed(query), self.n_way)
            out.append(float(np.mean(pred == np.repeat(np.arange(self.n_way), queries))))
        return np.array(out)

    def evaluate(self) -> dict[str, float]:
        """``episode_accuracy`` on episodes of the test classes; raw pixels as a yardstick."""
        r = self.recipe
        args = (self.test_pools, int(r.get("test_episodes", 300)), int(r.get("test_shot", 5)),
                int(r.get("test_queries", 15)), self.seed + 2)
        acc = self.episode_accuracies(lambda x: self._embed(x).numpy(), *args)
        pixels = self.episode_accuracies(lambda x: x.reshape(len(x), -1), *args)
        return {"episode_accuracy": float(acc.mean()),
                "episode_accuracy_ci95": float(1.96 * acc.std() / np.sqrt(len(acc))),
                "pixel_episode_accuracy": float(pixels.mean())}

    def live_view(self) -> dict:
        """One test episode: query embeddings and prototypes on their two main axes."""
        from models import views

        rng = np.random.default_rng(self.seed + 3)
        support, query, classes = sample_episode(self.test_pools, rng, self.n_way,
                                                 int(self.recipe.get("test_shot", 5)), 15)
        s, q = self._embed(support).numpy(), self._embed(query).numpy()
        protos = s.reshape(self.n_way, -1, s.shape[-1]).mean(1)
        center = q.mean(0)
        _, _, vt = np.linalg.svd(q - center, full_matrices=False)
        qp, pp = (q - center) @ vt[:2].T, (protos - center) @ vt[:2].T
        truth = np.repeat(np.arange(self.n_way), 15)
        right = nearest_prototype(s, q, self.n_way) == truth
        names = ", ".join(str(c) for c in classes)
        return views.view(
            "Episode",
            views.scatter_panel(f"A test episode of unseen digits {names}: {right.mean():.0%} "
                                "of queries right (large dots: prototypes)",
                                views.series("queries", qp[:, 0], qp[:, 1], classes=truth),
                                views.series("prototypes", pp[:, 0], pp[:, 1],
                                             classes=np.arange(self.n_way), size=16)),
            views.images_panel(query[~right][:8] if (~right).any() else query[:0],
                               "Queries put in the wrong class",
                               labels=[f"{classes[t]}" for t in truth[~right][:8]], columns=4))


__all__ = ["PrototypicalLoop", "sample_episode", "nearest_prototype", "class_pools"]
