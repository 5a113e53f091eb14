"""Telling the user that inputs were cut to fit a model, once and with counts.

A document cut to ``max_length`` is scored on its beginning only; if its relevant part was
further in, it ranks low for no visible reason. Each backend that cuts reports it through one
:class:`TruncationNotice`: the first call that cuts anything logs a WARNING with the counts and
the remedy, later calls log at DEBUG (a warning per call would flood a batch job), and the cut
documents carry ``details["truncated"] = True`` in their results (adapters copy it into
metadata).

Example:
    >>> notice = TruncationNotice("CrossEncoderReranker('ce')", "long_documents='chunk'")
    >>> notice.report([True, False, True], "documents", "max_length=512")
    [{'truncated': True}, {}, {'truncated': True}]
    >>> notice.warned
    True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

TRUNCATED_KEY = "truncated"
"""Result ``details`` key: ``True`` when the model did not read the whole document (or query)."""


@dataclass
class TruncationNotice:
    """One reranker's truncation report: a WARNING the first time, DEBUG after."""

    owner: str
    """The reranker, as the message names it."""
    remedy: str
    """What avoids the cut (``"long_documents='chunk'"``, ``"a larger max_length"``)."""
    warned: bool = False
    """Whether the warning was logged."""

    def report(self, cuts: Sequence[bool], what: str, limit: str) -> list[dict[str, Any]]:
        """Record which ``what`` (``"documents"``) exceeded ``limit``; returns their details."""
        cut, total = sum(cuts), len(cuts)
        if cut and self.warned:
            logger.debug("%s: truncated %d of %d %s to %s", self.owner, cut, total, what, limit)
        elif cut:
            self.warned = True
            logger.warning(
                "%s: %d of %d %s were longer than %s and were truncated (the model did not "
                "read their ends; they are flagged details['%s']). Use %s to score whole "
                "documents. Reported once per reranker; later truncation is logged at DEBUG.",
                self.owner,
                cut,
                total,
                what,
                limit,
                TRUNCATED_KEY,
                self.remedy,
            )
        return truncation_details(cuts)


def truncation_details(cut: Sequence[bool]) -> list[dict[str, Any]]:
    """Per-document details: ``{"truncated": True}`` for a cut document, ``{}`` otherwise."""
    return [{TRUNCATED_KEY: True} if flag else {} for flag in cut]
