"""Framework test doubles shared by the adapter tests: a LangChain retriever with fixed
documents, and a LlamaIndex instrumentation handler that records the events it sees."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent


class FixedRetriever(BaseRetriever):
    """A LangChain retriever returning the same documents (best first) for any query."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.docs


class EventLog(BaseEventHandler):
    """Records the LlamaIndex instrumentation events of the given kinds, in order."""

    kinds: tuple[type[BaseEvent], ...]
    seen: list[BaseEvent]

    @classmethod
    def class_name(cls) -> str:
        return "EventLog"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, self.kinds):
            self.seen.append(event)


@contextmanager
def recording(*kinds: type[BaseEvent]) -> Iterator[EventLog]:
    """An :class:`EventLog` on the root dispatcher while the block runs (every event when no
    kind is given)."""
    log = EventLog(kinds=kinds or (BaseEvent,), seen=[])
    root = get_dispatcher()
    root.add_event_handler(log)
    try:
        yield log
    finally:
        root.event_handlers.remove(log)
