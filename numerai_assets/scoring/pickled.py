"""A fitted model that stays pickled until it is used.

A round's clusters (:class:`~.concordance.FittedClusters`) are stored with their fitted
scikit-learn model, which scoring a submission never reads (it needs each row's cluster only).
Unpickled with them, the model imported scikit-learn: about a second of every scoring run, on
the way to an upload's decision. Held in a :class:`PickledModel`, it is pickled as its own
pickle's bytes, and unpickled (scikit-learn imported) only when one of its attributes is read.
"""

from __future__ import annotations

import pickle
from typing import Any

_SLOTS = ("_model", "_pickled")


class PickledModel:
    """``model``, whose attributes it forwards (``fitted.model.inertia_``), pickled lazily.

    Examples
    --------
    >>> from fractions import Fraction
    >>> restored = pickle.loads(pickle.dumps(PickledModel(Fraction(3, 4))))
    >>> restored.loaded
    False
    >>> restored.denominator, restored.loaded
    (4, True)
    """

    __slots__ = _SLOTS

    def __init__(self, model: Any) -> None:
        self._model = model
        self._pickled: bytes | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model has been unpickled (or was never pickled)."""
        return self._pickled is None

    @property
    def model(self) -> Any:
        """The model itself, unpickled on first use."""
        if self._pickled is not None:
            self._model, self._pickled = pickle.loads(self._pickled), None
        return self._model

    def __getattr__(self, name: str) -> Any:
        if name in _SLOTS:  # not set yet (while unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.model, name)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        if self._pickled is not None:  # never unpickled here: the same bytes again
            return _pickled_model, (self._pickled,)
        return _pickled_model, (pickle.dumps(self._model, protocol=pickle.HIGHEST_PROTOCOL),)

    def __repr__(self) -> str:
        return f"PickledModel({self.model!r})"


def _pickled_model(pickled: bytes) -> PickledModel:
    """A :class:`PickledModel` holding ``pickled`` until first used (what unpickling calls)."""
    model = PickledModel.__new__(PickledModel)
    model._model, model._pickled = None, pickled
    return model
