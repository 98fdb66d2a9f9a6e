"""Contrastive training of a dual-encoder retriever over the cheatsheet (see :mod:`models.rag`).

Each training pair is a query and the passages that answer it:

* pseudo-questions cut from the corpus: a random run of a passage's words
  stands for a question whose answer is that passage (the inverse cloze
  task), drawn afresh every epoch;
* each section's title, answered by all of the section's passages;
* the training questions, answered by their section's passages.

The loss is a softmax over the whole corpus (every passage that does not
answer the query is a negative; the corpus is small enough to encode at
each step): minus the log of the probability given to the right passages.
Query and passage go through the same encoder graph.
"""
from __future__ import annotations

import numpy as np

from models.loops import Loop


def _error(message: str):
    from models.training import TrainingError

    return TrainingError(message)


class RetrieverLoop(Loop):
    """Recipe keys: ``temperature``, ``span_words`` ([shortest, longest] pseudo-question),
    ``spans_per_passage`` (per epoch), ``batch_size``, ``passage_length``, ``seed``."""

    monitor = "loss"

    def build(self) -> None:
        from models import backend, rag
        from models.datasets.cheatsheet_qa import QUESTION_WORDS
        from models.training import make_optimizer

        super().build()
        tf, keras = backend.tf(), backend.keras()
        r = self.recipe
        self.seed = int(r.get("seed", 0))
        keras.utils.set_random_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.encoder = next(iter(self.models.values()))
        self.passages = rag.load_corpus()
        self.vocab = rag.vocabulary(self.passages)
        embeddings = [l for l in self.encoder.layers if isinstance(l, keras.layers.Embedding)]
        if embeddings and embeddings[0].input_dim != len(self.vocab) + 1:
            raise _error(f"the encoder's Embedding takes {embeddings[0].input_dim} word ids, but "
                         f"the corpus has {len(self.vocab)} words (+1 for padding): set its "
                         f"input_dim to {len(self.vocab) + 1}")
        if self.dataset is None or self.dataset.name != "cheatsheet-qa":
            raise _error("the retriever trains on the cheatsheet questions: set the data to "
                         "builtin:cheatsheet-qa")
        self.q_len = QUESTION_WORDS
        self.p_len = int(r.get("passage_length", rag.PASSAGE_WORDS + 20))
        self.p_ids = rag.passage_ids(self.passages, self.vocab, self.p_len)
        self.p_words = [rag.passage_words(p) for p in self.passages]
        sections = [label.split(" ", 1)[0] for label in self.dataset.class_names]
        self.sections = sections
        self.section_mask = np.array([[p.section == s for p in self.passages] for s in sections],
                                     np.float32)
        self.fixed = self._fixed_pairs()
        self.span_words = [int(v) for v in r.get("span_words", [4, 12])]
        self.spans_per_passage = int(r.get("spans_per_passage", 4))
        # Passages long enough to cut a pseudo-question from and still hold other words.
        self.span_sources = [i for i, ws in enumerate(self.p_words) if len(ws) >= self.span_words[0] + 2]
        self.tfidf_recall = None
        self.batch = int(r.get("batch_size", 32))
        tau = float(r.get("temperature", 0.05))
        self.optimizer = make_optimizer(r)
        encoder, optimizer, p_ids = self.encoder, self.optimizer, tf.constant(self.p_ids)

        @tf.function
        def train_step(q, positives):
            with tf.GradientTape() as tape:
                logits = tf.matmul(encoder(q, training=True), encoder(p_ids, training=True),
                                   transpose_b=True) / tau
                log_p = tf.nn.log_softmax(logits, axis=1)
                # Several passages may answer one query: their probabilities add up.
                hit = tf.reduce_logsumexp(log_p + tf.math.log(positives + 1e-12), axis=1)
                loss = -tf.reduce_mean(hit)
            grads = tape.gradient(loss, encoder.trainable_variables)
            optimizer.apply(grads, encoder.trainable_variables)
            return loss

        self._train_step = train_step
        self._embed = tf.function(lambda ids: encoder(ids, training=False))

    def _fixed_pairs(self):
        """Titles and training questions, with the mask of the passages that answer them."""
        from models import rag

        titles = [s.split(" ", 1)[1] if " " in s else s for s in self.dataset.class_names]
        q = np.concatenate([rag.encode(titles, self.vocab, self.q_len), self.dataset.x_train])
        mask = np.concatenate([self.section_mask, self.section_mask[self.dataset.y_train]])
        return q, mask

    def _spans(self):
        """Fresh pseudo-questions: a random run of each passage's words (passages with text)."""
        from models import rag

        lo, hi = self.span_words
        queries, targets = [], []
        for i in self.span_sources:
            ws = self.p_words[i]
            for _ in range(self.spans_per_passage):
                n = int(self.rng.integers(lo, min(hi, len(ws)) + 1))
                start = int(self.rng.integers(0, len(ws) - n + 1))
                queries.append(ws[start:start + n])
                targets.append(i)
        mask = np.zeros((len(targets), len(self.passages)), np.float32)
        mask[np.arange(len(targets)), targets] = 1.0
        return rag.encode(queries, self.vocab, self.q_len), mask

    def steps_per_epoch(self) -> int:
        n = len(self.fixed[0]) + len(self.span_sources) * self.spans_per_passage
        return max(1, -(-n // self.batch))

    def train_epoch(self, epoch: int, step) -> dict[str, float]:
        spans = self._spans()
        q = np.concatenate([self.fixed[0], spans[0]])
        mask = np.concatenate([self.fixed[1], spans[1]])
        order = self.rng.permutation(len(q))
        losses = []
        for start in range(0, len(q), self.batch):
            idx = order[start:start + self.batch]
            losses.append(float(self._train_step(q[idx], mask[idx])))
            step(losses[-1])
        ranked = self._ranking(self.dataset.x_train)
        return {"loss": float(np.mean(losses)),
                "train_recall_at_3": self._recall(ranked, self.dataset.y_train, 3)}

    def _ranking(self, question_ids) -> np.ndarray:
        scores = self._embed(question_ids).numpy() @ self._embed(self.p_ids).numpy().T
        return np.argsort(-scores, axis=1, kind="stable")

    def _recall(self, ranked, labels, k: int) -> float:
        from models import rag

        return rag.recall_at(ranked, self.passages, [self.sections[i] for i in labels], k)

    def evaluate(self) -> dict[str, float]:
        """Recall at 1, 3 and 5 and the mean reciprocal rank on the test questions; TF-IDF's too."""
        ds = self.dataset
        ranked = self._ranking(ds.x_test)
        gold = [self.sections[i] for i in ds.y_test]
        first = [next(r for r, j in enumerate(row) if self.passages[j].section == g) + 1
                 for row, g in zip(ranked, gold)]
        return {"recall_at_1": self._recall(ranked, ds.y_test, 1),
                "recall_at_3": self._recall(ranked, ds.y_test, 3),
                "recall_at_5": self._recall(ranked, ds.y_test, 5),
                "mrr": float(np.mean(1.0 / np.array(first))),
                "tfidf_recall_at_3": self._tfidf_recall()}

    def _tfidf_recall(self) -> float:
        """TF-IDF's recall at 3 on the test questions: what the training has to beat."""
        from models import rag

        if self.tfidf_recall is None:
            tests = [q for q in rag.load_questions() if q["split"] == "test"]
            ranked = rag.tfidf_ranking(self.passages, [q["question"] for q in tests])
            self.tfidf_recall = rag.recall_at(ranked, self.passages,
                                              [q["section"] for q in tests], 3)
        return self.tfidf_recall

    def live_view(self) -> dict:
        """Recall on the test questions at 1, 3 and 5, and the passages found for one of them."""
        from models import rag, views

        ds = self.dataset
        ranked = self._ranking(ds.x_test)
        recalls = [self._recall(ranked, ds.y_test, k) for k in (1, 3, 5)]
        tests = [q for q in rag.load_questions() if q["split"] == "test"]
        shown = tests[len(tests) // 3]
        row = ranked[tests.index(shown)]
        lines = [shown["question"], f"(answered in section {shown['section']})", ""]
        for rank, j in enumerate(row[:3], 1):
            p = self.passages[j]
            mark = "✓" if p.section == shown["section"] else "✗"
            text = p.text or "(a heading without text)"
            lines += [f"{rank}. {mark} {p.label}"[:60], f"     {text[:52]}…" if len(text) > 52 else f"     {text}"]
        return views.view(
            "Retrieval",
            views.bars_panel(f"Recall on {len(tests)} held-out questions (dashed: TF-IDF's recall@3)",
                             ["recall@1", "recall@3", "recall@5"], recalls, y_title="share",
                             reference=self._tfidf_recall()),
            views.text_panel("One held-out question", "\n".join(lines)))


__all__ = ["RetrieverLoop"]
