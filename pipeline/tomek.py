"""Tomek links without a nearest-neighbour query for every row.

imbalanced-learn's ``TomekLinks`` asks for the nearest neighbour of every row, which costs
rows x rows distances: about 250 s on fraud_synth at full size. But a Tomek link is a pair of
rows of different classes that are each other's nearest neighbour, so (with two classes) every
link holds a row of the smaller class. Querying the smaller class, then the rows those queries
point at, finds every link: 2 x minority queries instead of one per row.

The neighbours come from the same ``NearestNeighbors(n_neighbors=2)`` fitted on all rows, asked
about a subset of them, so ties and duplicates resolve exactly as in imbalanced-learn (column 1
of the answer, which for a duplicated row may be the row itself). Each row is first asked alone
(cheap); only a row whose neighbours lie within rounding of each other is asked again in the
shape of the full query (see ``_Neighbours``), which costs a query of thousands of rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from imblearn.under_sampling import TomekLinks
from scipy.sparse import issparse
from sklearn import get_config
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import _safe_indexing
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads


class FastTomekLinks(TomekLinks):
    """imbalanced-learn's ``TomekLinks`` (same parameters, same rows removed), querying only
    the smaller class and the rows it points at when there are two classes.

    Attributes
    ----------
    sample_indices_ : indices of the rows kept, as in ``TomekLinks``.
    n_queries_ : how many rows were asked for their nearest neighbour.
    n_exact_ : how many of them (near-ties, duplicates) were asked again in the shape of the
        full query, so that rounding decides as it does there.
    """

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        classes, counts = np.unique(y, return_counts=True)
        chunk = int(get_config()["pairwise_dist_chunk_size"])
        if len(classes) != 2 or len(y) <= _split_by_queries_above(chunk):
            # three or more classes: a link may hold no row of the smallest. Few rows: the full
            # query is cheap, and it is the one that decides ties (see _Neighbours)
            self.n_queries_ = self.n_exact_ = len(y)
            return super()._fit_resample(X, y)
        nn = NearestNeighbors(n_neighbors=2, n_jobs=self.n_jobs).fit(X)
        nns = _Neighbours(nn, X, chunk).second(len(y))
        small = np.flatnonzero(y == classes[np.argmin(counts)])
        nns.ask(small)
        pointed = nns.of[small]
        across = np.unique(pointed[y[pointed] != y[small]])  # other-class rows a small-class row points at
        nns.ask(across)
        self.n_queries_ = len(small) + len(across)
        self.n_exact_ = nns.n_exact
        mutual = small[(y[pointed] != y[small]) & (nns.of[pointed] == small)]
        links = np.zeros(len(y), dtype=bool)
        cleaned = np.isin(y, list(self.sampling_strategy_))
        for members in (mutual, nns.of[mutual]):  # both ends of each link, where their class is cleaned
            links[members[cleaned[members]]] = True
        self.sample_indices_ = np.flatnonzero(~links)
        return _safe_indexing(X, self.sample_indices_), _safe_indexing(y, self.sample_indices_)


def _split_by_queries_above(chunk: int) -> int:
    """Past this many query rows scikit-learn's brute search splits its work by query rows
    (parallel_on_X), as it does for a query of every row."""
    return 4 * chunk * _openmp_effective_n_threads()


class _Neighbours:
    """Column 1 of ``nn.kneighbors`` for chosen rows, exactly as a query of every row gives it.

    Tree searches measure each pair on its own, so any subset of queries gives the same answer.
    The brute search (more than 15 features, or sparse data) computes distances as
    |x|^2 - 2 x.y + |y|^2 with matrix products over chunks of ``chunk`` query rows, and the
    rounding of a product can depend on the chunk's shape: a row queried alone may see its
    duplicate at 6e-8 instead of 0, and which of two tied rows comes first depends on how the
    search was split across threads. So queries go in full chunks, padded with row 0 to more
    than ``4 x chunk x threads`` rows (so scikit-learn splits them by query rows, as it does
    the full query of more rows than that), and the full query's last, partial chunk, when a
    row in it is asked, is appended whole as the query's own last chunk.
    """

    def __init__(self, nn: NearestNeighbors, X: Any, chunk: int) -> None:
        self.nn, self.X, self.chunk = nn, X, chunk
        self.of = np.empty(0, dtype=np.intp)
        self.norms: np.ndarray | None = None
        #: rows whose answer needed the query in the full query's shape (near-ties, duplicates)
        self.n_exact = 0

    def second(self, n: int) -> _Neighbours:
        self.of = np.full(n, -1, dtype=np.intp)
        return self

    def _query(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.nn.kneighbors(_safe_indexing(self.X, rows), return_distance=False)[:, 1])

    def ask(self, rows: np.ndarray) -> None:
        rows = rows[self.of[rows] < 0]
        if not len(rows):
            return
        if self.nn._fit_method != "brute":
            self.of[rows] = self._query(rows)
            return
        self._clear_answers(rows)
        unclear = rows[self.of[rows] < 0]
        self.n_exact += len(unclear)
        self._ask_as_the_full_query(unclear)

    def _clear_answers(self, rows: np.ndarray) -> None:
        """Answer the rows whose neighbour no rounding can change, from a plain query of them
        alone. A row's answer is clear when it is its own nearest row and its
        first and second neighbours lie apart by far more than the rounding of the brute
        search's |x|^2 - 2 x.y + |y|^2 (about 1e-15 of the squared norms): then every way of
        computing the distances orders them alike. Duplicates and near-ties are left to the
        exact query (``_ask_as_the_full_query``)."""
        if issparse(self.X):
            return
        distance, found = self.nn.kneighbors(_safe_indexing(self.X, rows), n_neighbors=3)
        squared = distance**2
        norms = self._norms()
        scale = norms[rows][:, None] + norms[found]
        apart = np.diff(squared, axis=1) > 1e-9 * (scale[:, 1:] + scale[:, :-1]) + 1e-12
        clear = (found[:, 0] == rows) & apart.all(axis=1)
        self.of[rows[clear]] = found[clear, 1]

    def _norms(self) -> np.ndarray:
        if self.norms is None:
            X = np.asarray(self.X, dtype=float)
            self.norms = np.einsum("ij,ij->i", X, X)
        return self.norms

    def _ask_as_the_full_query(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        n = len(self.of)
        tail_start = n - n % self.chunk  # the full query's last, partial chunk starts here
        body, tail = rows[rows < tail_start], rows[rows >= tail_start]
        least = _split_by_queries_above(self.chunk) + 1
        size = max(len(body), least)
        size += -size % self.chunk
        padded = np.concatenate([body, np.zeros(size - len(body), dtype=np.intp)])
        if len(tail):  # asked as the last chunk of the query, in the shape the full query gave it
            padded = np.concatenate([padded, np.arange(tail_start, n)])
        found = self._query(padded)
        self.of[body] = found[: len(body)]
        self.of[tail] = found[size + tail - tail_start]
