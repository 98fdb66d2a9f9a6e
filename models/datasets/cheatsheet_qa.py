"""Questions about the cheatsheet, for the RAG template's retriever (see :mod:`models.rag`).

``x`` holds each question's word ids (the corpus vocabulary; 0 pads; words
the corpus lacks are left out), ``y`` the index of the section that answers it
(``class_names`` are the sections). The train and test splits are the ones
written in ``resources/cheatsheet/questions.json``; there is no validation
split (the retriever also trains on pseudo-questions cut from the corpus).
"""
from __future__ import annotations

import numpy as np

from models.data import Dataset, register_builtin

QUESTION_WORDS = 24


def load_questions_dataset(seed: int = 0, **_) -> Dataset:
    from models import rag

    passages = rag.load_corpus()
    vocab = rag.vocabulary(passages)
    sections = [label.split(" ", 1)[0] for label in rag.section_labels(passages)]
    questions = rag.load_questions()
    parts = {}
    for split in ("train", "test"):
        rows = [q for q in questions if q["split"] == split]
        parts[split] = (rag.encode([q["question"] for q in rows], vocab, QUESTION_WORDS),
                        np.array([sections.index(q["section"]) for q in rows], np.int32))
    empty = np.zeros((0, QUESTION_WORDS), np.int32)
    return Dataset(x_train=parts["train"][0], y_train=parts["train"][1], x_val=empty,
                   y_val=np.zeros(0, np.int32), x_test=parts["test"][0], y_test=parts["test"][1],
                   task="classification", class_names=rag.section_labels(passages),
                   name="cheatsheet-qa", modality="text", target_name="section",
                   notes=[f"{len(questions)} questions about the cheatsheet's {len(sections)} "
                          f"sections ({len(passages)} passages, {len(vocab)} words); the test "
                          "questions are never trained on",
                          "x: word ids of the question (0 pads; words the corpus lacks are left out)"])


register_builtin("cheatsheet-qa", task="classification", shape=(QUESTION_WORDS,), classes=None,
                 description="questions about the cheatsheet's sections, for retrieval (RAG)",
                 load=load_questions_dataset)
