"""Retrieval-augmented generation (cheatsheet 8.3): a learned retriever over the cheatsheet itself."""
from __future__ import annotations

from models.gallery import register
from models.gallery._projects import project_of


@register("rag", "Retrieval-augmented answers", "8.3",
          "A dual encoder learns to find the cheatsheet passage that answers a question.")
def rag_template():
    from models import backend, rag

    keras = backend.keras()
    L = keras.layers
    vocab = rag.vocabulary()
    x = keras.Input((None,), dtype="int32", name="word_ids")
    h = L.Embedding(len(vocab) + 1, 64, mask_zero=True, name="word_vectors")(x)
    h = L.GlobalAveragePooling1D(name="mean_of_words")(h)
    h = L.Dense(64, name="projection")(h)
    y = L.UnitNormalization(name="unit_length")(h)
    encoder = keras.Model(x, y, name="encoder")
    project, models = project_of(
        {"encoder": encoder}, {"source": "builtin", "name": "cheatsheet-qa"},
        {"loop": "models.loops.retrieval:RetrieverLoop", "loss": None, "metrics": None,
         "validation_split": None,
         "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
         "epochs": 60, "batch_size": 32, "temperature": 0.1, "span_words": [4, 12],
         "spans_per_passage": 4, "passage_length": rag.PASSAGE_WORDS + 20,
         "quality": {"metric": "recall_at_3"}, "quick": {"epochs": 30}},
        {"explanation": (
            "Cheatsheet 8.3. Retrieval-augmented generation answers from a corpus instead of "
            "from memory: find the passages that answer the question, then read them. Here the "
            "corpus is this cheatsheet, cut into passages of at most 70 words under their "
            "section titles. The encoder turns a text into one 64-number direction: a learned "
            "vector per word, averaged, projected and scaled to length 1; the question and "
            "every passage go through the same encoder, and the passages whose directions are "
            "closest to the question's are retrieved. It learns contrastively: for a training "
            "query (a section title, a written training question, or a random run of words cut "
            "from a passage) the right passages must score above all the others. recall_at_3 "
            "is the share of held-out questions with a passage of the right section among the "
            "three best; tfidf_recall_at_3 is a classic word-count search for comparison. The "
            "reader (Train > Ask the cheatsheet) is extractive: it returns the sentence of the "
            "retrieved passages closest to the question. It copies and cannot reword, combine "
            "passages, or answer what the sheet does not say; many sections are only titles "
            "so far.")},
    )
    # Keras adds the padding mask as an operation with a session-wide counter in its name
    # (not_equal, not_equal_1...): a fixed name keeps the template the same however it is built.
    graph = project.graph
    mask = next(n for n in graph.nodes.values() if n.class_name == "NotEqual")
    graph.rename_node(mask.name, "word_mask")
    return project, models
