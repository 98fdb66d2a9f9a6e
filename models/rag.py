"""Retrieval-augmented answers over the cheatsheet: corpus, tokens, retrieval and an extractive reader.

The corpus is the cheatsheet itself (``resources/cheatsheet/cheatsheet.md``)
cut into passages: each numbered section's text in pieces of at most
:data:`PASSAGE_WORDS` words, each piece headed by its section's number and
title; a section with a heading and no text yet is one passage of its title
alone. Questions about it, written for LayerForge, ship in
``resources/cheatsheet/questions.json`` with a fixed train / test split.

Words are lower-cased, lightly stemmed (plurals, plus a token of each long
word's first letters), stripped of common words, and numbered by a
vocabulary made from the corpus (ids from 1; 0 pads; a word the corpus
lacks is left out: nothing was learned about it). The retriever is the project's encoder graph, used for both the
question and the passages (a dual encoder whose two towers share weights);
see :class:`models.loops.retrieval.RetrieverLoop` for its training.

The reader is extractive and small on purpose: it cuts the retrieved
passages scored near the best one into sentences and returns the sentence
whose embedding is closest to the question's, plus its passage's score
(when the best passage is a heading without text, it says so). It copies; it cannot
paraphrase, combine two passages, or know what the sheet does not say.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.paths import cheatsheet_dir

PASSAGE_WORDS = 70
PREFIX = 5
READ_MARGIN = 0.15  # the reader reads passages scored at most this far below the best
QUESTIONS_FILE = "questions.json"
STOPWORDS = frozenset("""a an the of to in on at by for with from into about as and or not no
is are was were be been being do does did has have had can could will would should may might
what which who whom whose how why when where there here this that these those it its they them
their we you your i me my one some any each than then so such if also only very just own""".split())
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_SECTION = re.compile(r"^(#{2,6})\s+(\d+(?:\.\d+)*)\.?\s+(.*?)\s*$")


@dataclass(frozen=True)
class Passage:
    index: int
    section: str   # "7.3.1"
    title: str     # "Convolutional Neural Network (CNN)"
    text: str      # "" for a section with a heading only

    @property
    def label(self) -> str:
        return f"{self.section} {self.title}"


def _clean(text: str) -> str:
    """Markdown and LaTeX reduced to words and numbers a reader can follow."""
    text = re.sub(r"\\(?:begin|end)\{[a-z]*\}", " ", text)
    text = re.sub(r"\\(?:text|mathbf|hat)\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\\[a-zA-Z]+", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their words
    text = re.sub(r"[*_`#|$&{}\\]+|-{3,}|[^\x00-\x7F×→≈·]+", " ", text)
    return " ".join(text.split())


def parse_sections(markdown: str) -> list[tuple[str, str, str]]:
    """``(number, title, text)`` per numbered section, in order.

    A heading is a section when its number has several parts (``7.3.1``) or
    one part at the top level (``## 8.``); other headings (``#### 1. Input``)
    belong to the text of the section they are in.
    """
    sections: list[list] = []
    for line in markdown.splitlines():
        m = _SECTION.match(line)
        if m and (len(m.group(2).split(".")) > 1 or len(m.group(1)) == 2):
            sections.append([m.group(2), _clean(m.group(3)), []])
        elif sections:
            sections[-1][2].append(line)
    return [(n, t, "\n".join(body).strip()) for n, t, body in sections]


def _pieces(text: str, limit: int) -> list[str]:
    """Paragraphs packed into pieces of at most ``limit`` words (a longer paragraph is cut)."""
    words_of = [(_clean(p)).split() for p in re.split(r"\n\s*\n|\n(?=\s*(?:[-*]|\d+\.)\s)", text)]
    pieces, current = [], []
    for words in words_of:
        if not words:
            continue
        if current and len(current) + len(words) > limit:
            pieces.append(current)
            current = []
        while len(words) > limit:
            pieces.append(words[:limit])
            words = words[limit:]
        current += words
    if current:
        pieces.append(current)
    return [" ".join(p) for p in pieces]


@lru_cache(maxsize=4)
def _corpus_of(path: str, mtime: float) -> tuple[Passage, ...]:
    markdown = Path(path).read_text(encoding="utf-8")
    passages = []
    for number, title, text in parse_sections(markdown):
        for piece in _pieces(text, PASSAGE_WORDS) or [""]:
            passages.append(Passage(len(passages), number, title, piece))
    return tuple(passages)


def corpus_path() -> Path:
    return cheatsheet_dir() / "cheatsheet.md"


def load_corpus() -> list[Passage]:
    """The cheatsheet's passages (re-read when the file changes)."""
    path = corpus_path()
    return list(_corpus_of(str(path), path.stat().st_mtime))


def load_questions() -> list[dict]:
    """The shipped questions: ``{"question", "section", "split"}`` each."""
    return json.loads((cheatsheet_dir() / QUESTIONS_FILE).read_text(encoding="utf-8"))["questions"]


def words(text: str) -> list[str]:
    """Lower-case words, plurals folded (``filters`` -> ``filter``), common words dropped.

    A word longer than :data:`PREFIX` letters also gives its first letters as
    a token of its own, so ``compiling`` meets ``compilation`` and
    ``explained`` meets ``explainability``.
    """
    out = []
    for w in _WORD.findall(text.lower()):
        if w in STOPWORDS:
            continue
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
        if len(w) > PREFIX and w[0].isalpha():
            out.append(w[:PREFIX] + "~")
    return out


def passage_words(p: Passage) -> list[str]:
    return words(f"{p.title} {p.text}")


def vocabulary(passages=None) -> list[str]:
    """Every word of the corpus, sorted (their ids start at 1: 0 pads)."""
    passages = load_corpus() if passages is None else passages
    return sorted({w for p in passages for w in passage_words(p)})


def encode(texts, vocab: list[str], length: int) -> np.ndarray:
    """Token ids ``[n, length]`` (int32), cut or padded with 0."""
    index = {w: i + 1 for i, w in enumerate(vocab)}
    out = np.zeros((len(texts), length), np.int32)
    for row, text in enumerate(texts):
        ids = [index[w] for w in (words(text) if isinstance(text, str) else text) if w in index]
        ids = ids[:length]
        out[row, :len(ids)] = ids
    return out


def passage_ids(passages, vocab: list[str], length: int) -> np.ndarray:
    return encode([passage_words(p) for p in passages], vocab, length)


def section_labels(passages=None) -> list[str]:
    """The sections in corpus order, ``"7.3.1 Convolutional Neural Network (CNN)"``."""
    passages = load_corpus() if passages is None else passages
    seen: dict[str, str] = {}
    for p in passages:
        seen.setdefault(p.section, p.label)
    return list(seen.values())


def recall_at(ranked: np.ndarray, passages, gold_sections, k: int) -> float:
    """Share of questions with a passage of their section among their ``k`` best."""
    hits = [any(passages[j].section == g for j in row[:k]) for row, g in zip(ranked, gold_sections)]
    return float(np.mean(hits)) if hits else 0.0


def tfidf_ranking(passages, questions: list[str]) -> np.ndarray:
    """Passages ranked per question by TF-IDF cosine (the untrained yardstick)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=lambda t: words(t))
    docs = vec.fit_transform([f"{p.title} {p.text}" for p in passages])
    sims = (vec.transform(questions) @ docs.T).toarray()
    return np.argsort(-sims, axis=1, kind="stable")


# --------------------------------------------------------------------------- asking


def _sentences(text: str) -> list[str]:
    """Sentences and list items (the sheet lists a lot) of at least three words."""
    parts = re.split(r"(?<=[.!?:])\s+(?=[A-Z0-9])|\s+-\s+|\s(?=\d\.\s)", text)
    return [p.strip() for p in parts if len(p.split()) >= 3]


def _passages(hits) -> list[dict]:
    return [{"section": p.section, "title": p.title, "score": round(s, 4), "text": p.text}
            for p, s in hits]


class Retriever:
    """A trained encoder over the corpus: ``search`` ranks passages, ``ask`` also answers."""

    def __init__(self, encoder, passages=None, length: int | None = None):
        self.encoder = encoder
        self.passages = load_corpus() if passages is None else passages
        self.vocab = vocabulary(self.passages)
        self.length = length or PASSAGE_WORDS + 20
        self.matrix = self.embed_words([passage_words(p) for p in self.passages])

    def embed_words(self, texts) -> np.ndarray:
        ids = encode(texts, self.vocab, self.length)
        return np.asarray(self.encoder.predict(ids, batch_size=256, verbose=0), np.float32)

    def search(self, question: str, k: int = 3) -> list[tuple[Passage, float]]:
        scores = self.embed_words([question])[0] @ self.matrix.T
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.passages[i], float(scores[i])) for i in order]

    def ask(self, question: str, k: int = 3) -> dict:
        """The top passages and an extractive answer.

        Returns:
            ``{"question", "passages": [{"section", "title", "score", "text"}],
            "answer", "answer_section", "known_words"}``; ``known_words`` is
            the share of the question's words the corpus knows (with a
            ``note`` and no passages when it knows none).
        """
        qwords = [w for w in words(question) if not w.endswith("~")]
        known_set = set(self.vocab)
        known = sum(w in known_set for w in qwords) / len(qwords) if qwords else 0.0
        if not any(w in known_set for w in words(question)):
            return {"question": question, "answer": "", "answer_section": "", "known_words": 0.0,
                    "passages": [], "note": "none of the question's words occur in the "
                    "cheatsheet, so there is nothing to search with"}
        hits = self.search(question, k)
        top, top_score = hits[0]
        if not top.text:  # the best match is a heading with nothing under it: say so
            return {"question": question, "known_words": round(known, 3),
                    "answer": f"Section {top.label} is about this, but the cheatsheet has no "
                              "text for it yet.", "answer_section": top.label,
                    "passages": _passages(hits)}
        # Read only passages scored near the best one: a weak match's sentence misleads.
        near = [(p, s) for p, s in hits if s >= top_score - READ_MARGIN]
        candidates = [(s, p) for p, _ in near for s in _sentences(p.text)]
        answer, where = "", ""
        if candidates:
            q = self.embed_words([question])[0]
            sent = self.embed_words([s for s, _ in candidates]) @ q
            weight = {p.index: score for p, score in near}
            best = int(np.argmax([s + weight[p.index] for s, (_, p) in zip(sent, candidates)]))
            answer, where = candidates[best][0], candidates[best][1].label
        else:  # a passage too short to hold a sentence: show it whole
            answer, where = top.text, top.label
        return {"question": question, "answer": answer, "answer_section": where,
                "known_words": round(known, 3), "passages": _passages(hits)}


def retriever_for(project) -> Retriever:
    """The project's trained encoder over the corpus (raises ``ValueError`` when untrained)."""
    if not project.has_weights():
        raise ValueError("the retriever is not trained yet: train it first (Train > Start, or "
                         "`layerforge train FILE --out DIR`); untrained, it ranks passages at random")
    encoder = project.build()
    return Retriever(encoder, length=int(project.recipe.get("passage_length", PASSAGE_WORDS + 20)))


__all__ = ["Passage", "load_corpus", "load_questions", "parse_sections", "words", "vocabulary",
           "encode", "passage_ids", "section_labels", "recall_at", "tfidf_ranking", "Retriever",
           "retriever_for", "PASSAGE_WORDS"]
