"""RAG: the cheatsheet as passages, the shipped questions, the retriever loop, the reader."""
import numpy as np
import pytest

from models import gallery, rag
from models.data import load_dataset
from models.runner import RunState
from models.training import TrainingError, train
from models.validate import validate

SHEET = """# Title
## 1. Intro
Some words about learning.

#### 1. **A numbered sub-heading**
More text here.
### 2.1 Empty part
### 7.2.1 Deep part
Deep text.
"""


def test_numbered_headings_are_sections_and_others_are_text():
    sections = rag.parse_sections(SHEET)
    assert [(n, t) for n, t, _ in sections] == [("1", "Intro"), ("2.1", "Empty part"),
                                                ("7.2.1", "Deep part")]
    assert "numbered sub-heading" in sections[0][2] and sections[1][2] == ""


def test_words_fold_plurals_drop_common_words_and_share_prefixes():
    assert rag.words("What are the filters of layers?") == ["filter", "filte~", "layer"]
    assert "compi~" in rag.words("compiling") and "compi~" in rag.words("Compilation")
    vocab = ["filter", "layer"]
    ids = rag.encode(["filters of unknownword layers", ""], vocab, 4)
    assert ids.tolist() == [[1, 2, 0, 0], [0, 0, 0, 0]]


def test_corpus_passages_are_short_and_every_question_has_its_section():
    passages = rag.load_corpus()
    assert all(len(p.text.split()) <= rag.PASSAGE_WORDS for p in passages)
    sections = {p.section for p in passages}
    questions = rag.load_questions()
    assert len(questions) >= 60 and {q["split"] for q in questions} == {"train", "test"}
    assert all(q["section"] in sections for q in questions)
    ds = load_dataset("builtin:cheatsheet-qa")
    assert ds.n_train + ds.n_test == len(questions) and ds.n_val == 0
    assert ds.class_names[ds.y_test[0]].startswith(
        next(q for q in questions if q["split"] == "test")["section"] + " ")


def test_recall_counts_any_passage_of_the_right_section():
    ps = [rag.Passage(0, "1", "a", "x"), rag.Passage(1, "2", "b", "y"), rag.Passage(2, "2", "b", "z")]
    ranked = np.array([[0, 2, 1], [0, 1, 2]])
    assert rag.recall_at(ranked, ps, ["2", "2"], 1) == 0.0
    assert rag.recall_at(ranked, ps, ["2", "2"], 2) == 1.0


def test_rag_builds_checks_trains_a_step_and_answers():
    project = gallery.open_template("rag")
    assert validate(project.graph).valid
    state = RunState()
    result = train(project, state=state, epochs=1)
    assert [e.kind for e in state.drain()].count("batch") >= 5
    for k in ("recall_at_1", "recall_at_3", "recall_at_5", "tfidf_recall_at_3"):
        assert 0.0 <= result.metrics[k] <= 1.0
    assert result.metrics["recall_at_1"] <= result.metrics["recall_at_3"] <= result.metrics["recall_at_5"]
    retriever = rag.Retriever(result.model)
    out = retriever.ask("What does the stride of a convolution control?")
    assert len(out["passages"]) == 3 and out["answer"] and out["known_words"] == 1.0
    assert out["passages"][0]["score"] >= out["passages"][2]["score"]
    assert any(out["answer"] in p["text"] or "no text" in out["answer"] for p in out["passages"])
    none = retriever.ask("zzz qqq")
    assert none["passages"] == [] and "none of the question's words" in none["note"]


def test_an_untrained_project_is_told_to_train_first():
    with pytest.raises(ValueError, match="not trained yet"):
        rag.retriever_for(gallery.open_template("rag"))


def test_an_encoder_that_does_not_fit_the_vocabulary_is_named():
    project = gallery.open_template("rag")
    project.graph.set_config("word_vectors", {"input_dim": 10})
    with pytest.raises(TrainingError, match="input_dim to"):
        train(project, epochs=1)


class _BagOfWords:
    """A stand-in encoder: normalised word counts, so scores are plain word overlap."""

    def __init__(self, size):
        self.size = size

    def predict(self, ids, batch_size=None, verbose=0):
        counts = np.zeros((len(ids), self.size + 1))
        for row, seq in enumerate(ids):
            for i in seq[seq > 0]:
                counts[row, i] += 1
        return counts / np.maximum(np.linalg.norm(counts, axis=1, keepdims=True), 1e-9)


def test_the_reader_copies_a_sentence_from_a_strong_match_only():
    ps = [rag.Passage(0, "1", "Gamma rays", ""),
          rag.Passage(1, "2", "Pooling", "Pooling keeps the largest value. Unrelated words sit here."),
          rag.Passage(2, "3", "Other", "Something about gamma and pooling together here.")]
    vocab = rag.vocabulary(ps)
    reader = rag.Retriever(_BagOfWords(len(vocab)), passages=ps)
    heading_only = reader.ask("gamma rays")
    assert heading_only["passages"][0]["section"] == "1"
    assert "no text for it yet" in heading_only["answer"]
    found = reader.ask("what does pooling keep, the largest value?")
    assert found["answer"] == "Pooling keeps the largest value." and found["answer_section"] == "2 Pooling"
