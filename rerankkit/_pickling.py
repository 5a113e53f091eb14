"""How rerankers pickle (for multiprocessing, Ray, LangChain and LlamaIndex persistence).

Two rules, one class each:

- :class:`LocksDropped`: an object's ``threading`` locks are not pickled; the copy gets new
  ones (a lock guards one process's threads, so a fresh one is the only meaningful copy).
- :class:`RebuiltOnUnpickle`: a backend that loads a model pickles as the arguments it was
  built with, and unpickling builds it again (the model is loaded again, from the same hub id
  or folder, on the unpickling machine's default device unless ``device`` was given). The
  weights never travel, so a pickle is a few hundred bytes; weights changed in memory after
  loading are not kept (save them with ``save_pretrained`` and build from that folder).

Example:
    >>> import copy
    >>> class Point(RebuiltOnUnpickle):
    ...     def __init__(self, x, *, y=0):
    ...         self.x, self.y = x, y
    ...         print("built")
    >>> point = copy.deepcopy(Point(1, y=2))  # deepcopy and pickle go through __reduce__
    built
    built
    >>> point.x, point.y, point.init_arguments
    (1, 2, ((1,), {'y': 2}))
"""

from __future__ import annotations

import functools
import threading
from typing import Any, ClassVar

_LOCK_TYPES = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}
_LOCKS_KEY = "__rerankkit_locks__"


class LocksDropped:
    """Pickles ``__dict__`` without its locks and gives the copy new ones of the same kind.

    Example:
        >>> import pickle
        >>> from rerankkit.testing import KeywordReranker  # a Reranker: LocksDropped
        >>> copy = pickle.loads(pickle.dumps(KeywordReranker()))
        >>> copy.rerank("cat", ["a dog", "a cat"])[0].index, type(copy._lock).__name__
        (1, 'lock')
    """

    def __getstate__(self) -> dict[str, Any]:
        # each lock is left out, and the factory that makes a new one of its kind goes instead
        locks = {
            name: _LOCK_TYPES[type(v)] for name, v in vars(self).items() if type(v) in _LOCK_TYPES
        }
        state = {name: value for name, value in vars(self).items() if name not in locks}
        return {**state, _LOCKS_KEY: locks} if locks else state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        locks = state.pop(_LOCKS_KEY, {})
        self.__dict__.update(state)
        for name, make in locks.items():
            setattr(self, name, make())


class RebuiltOnUnpickle:
    """Remembers the constructor's arguments; pickling stores them and unpickling rebuilds.

    ``init_arguments`` is ``(args, kwargs)`` as the caller passed them (a shallow copy of
    ``kwargs``) less the keyword arguments named in ``not_recorded`` (a secret such as an API
    key, or a live object such as a transport: the copy falls back to their defaults);
    :func:`rerankkit._specs.reranker_spec` reads it to write a spec string.
    """

    init_arguments: tuple[tuple[Any, ...], dict[str, Any]]
    not_recorded: ClassVar[frozenset[str]] = frozenset()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        self = super().__new__(cls)
        kept = {k: v for k, v in kwargs.items() if k not in cls.not_recorded}
        self.init_arguments = (args, kept)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        args, kwargs = self.init_arguments
        return functools.partial(type(self), **kwargs), args

    def __copy__(self) -> Any:
        # copy.copy would go through __reduce__ and load the model again: share it instead.
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new
