"""Issue 10: an agent whose retriever tool reranks with rerankkit survives an empty query.

A real ``create_retriever_tool`` over a real ``ContextualCompressionRetriever``, driven by
LangChain's own ``AgentExecutor`` and ``create_tool_calling_agent`` with a fake tool-calling
chat model (``FakeMessagesListChatModel`` scripted to call the tool with ``""``)."""

from __future__ import annotations

from typing import Any

import pytest
from framework_fakes import FixedRetriever
from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import create_retriever_tool
from test_tracing import TEXTS

from langchain_rerankkit import RerankKitCompressor
from rerankkit.testing import KeywordReranker


class ToolCallingFake(FakeMessagesListChatModel):
    """``FakeMessagesListChatModel`` with the ``bind_tools`` an agent needs (the script
    already says which tool to call)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:
        return self


def script(query: str) -> list[BaseMessage]:
    call = {"name": "search_pets", "args": {"query": query}, "id": "1"}
    return [AIMessage("", tool_calls=[call]), AIMessage("Done.")]


def tool(**fields: Any) -> Any:
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankKitCompressor(reranker=KeywordReranker(), top_n=2, **fields),
        base_retriever=FixedRetriever(docs=[Document(t) for t in TEXTS]),
    )
    return create_retriever_tool(retriever, "search_pets", "Search facts about pets.")


def agent(query: str, **fields: Any) -> AgentExecutor:
    prompt = ChatPromptTemplate.from_messages(
        [("human", "{input}"), ("placeholder", "{agent_scratchpad}")]
    )
    retriever_tool = tool(**fields)
    llm = ToolCallingFake(responses=script(query))
    runnable = create_tool_calling_agent(llm, [retriever_tool], prompt)
    return AgentExecutor(
        agent=runnable, tools=[retriever_tool], return_intermediate_steps=True, max_iterations=3
    )


@pytest.mark.parametrize("query", ["", "   "])
async def test_agent_survives_an_empty_tool_query(query: str) -> None:
    for result in (
        agent(query).invoke({"input": "tell me about pets"}),
        await agent(query).ainvoke({"input": "tell me about pets"}),
    ):
        assert result["output"] == "Done."
        [(action, observation)] = result["intermediate_steps"]
        assert action.tool == "search_pets" and action.tool_input == {"query": query}
        assert observation == "dogs bark at night\n\ncats purr when happy"  # retrieval order


def test_tool_reranks_a_real_query_and_returns_documents_for_an_empty_one() -> None:
    search = tool()
    assert search.invoke({"query": "cats purr"}) == "cats purr when happy\n\ncats sleep all day"
    assert search.invoke({"query": ""}) == "dogs bark at night\n\ncats purr when happy"


def test_raise_setting_restores_the_error() -> None:
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        agent("", on_empty_query="raise").invoke({"input": "tell me about pets"})
