"""Context ordering for long prompts ("lost in the middle", Liu et al. 2023).

LLMs read the start and the end of a long context best, so the most relevant passages go
to the edges and the least relevant to the middle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def lost_in_the_middle(ranked: Sequence[T]) -> list[T]:
    """Reorder best-first items so the best sit at both edges and the worst in the middle.

    Ranks 1, 3, 5, ... fill the front; ranks 2, 4, 6, ... fill the back, reversed.

    Example:
        >>> lost_in_the_middle([1, 2, 3, 4, 5])
        [1, 3, 5, 4, 2]
    """
    items = list(ranked)
    return items[0::2] + items[1::2][::-1]
