"""Build notebook 08 (the context step: prune retrieved documents to a token budget) and
execute it in place with outputs kept, through ``_build``'s one build routine.

Usage (from the repository root)::

    .venv/bin/python notebooks/_build_context.py            # build and execute
    .venv/bin/python notebooks/_build_context.py --no-run   # write it without executing
"""

from __future__ import annotations

import sys

from _build import FIND_SHARED, QUIET
from _build import main as build_notebooks  # one build/execute routine for all notebooks
from nbformat.v4 import new_code_cell, new_markdown_cell

M, C = new_markdown_cell, new_code_cell

CONTEXT = [
    M("""\
# 08 · The context step: prune documents to the sentences that answer, within a token budget

A reranker decides which documents reach the prompt; `rerankkit.ContextPruner` then keeps only
their sentences that answer the query, scored by the same (pointwise) reranker in one batched
call, and packs the best of them, across all documents, into a token budget. Every kept
character has its provenance: `spans` are offsets into the caller's document.

**Data and model.** Two SciFact claims with their evidence abstracts and the annotators'
rationale sentences (`../shared/data/scifact-rationales`), and the trained test cross-encoder in
`../shared/models/minilm-l6-msmarco-ce`; without `../shared`, a keyword scorer on a toy text."""),
    C(QUIET + "\n\n" + FIND_SHARED),
    C("""\
import json

from rerankkit import ContextPruner, CrossEncoderReranker
from rerankkit.testing import KeywordReranker

RATIONALES = ROOT.parent / "shared" / "data" / "scifact-rationales" / "train.jsonl"
if TRAINED_CE.is_dir() and RATIONALES.is_file():
    reranker = CrossEncoderReranker(str(TRAINED_CE))
    rows = [json.loads(line) for line in RATIONALES.read_text().splitlines()]
    by_claim = {}
    for row in rows:  # a claim's evidence abstracts, once each
        by_claim.setdefault(row["query_id"], {}).setdefault(row["doc_id"], row)
    claim_id = next(q for q, found in by_claim.items() if len(found) == 2)  # two abstracts
    abstracts = list(by_claim[claim_id].values())
    claim = abstracts[0]
else:
    reranker = KeywordReranker()
    claim = {"query": "cats purr"}
    abstracts = [{"sentences": ["Dogs bark.", "Cats purr when happy."], "rationale": [1]}]
query = claim["query"]
documents = [" ".join(a["sentences"]) for a in abstracts]
pruner = ContextPruner(reranker)  # tokens: the reranker's own tokenizer
print("claim:", query)
print("abstract tokens:", [pruner.count_tokens(d) for d in documents])"""),
    M("""\
## A budget for the whole context

`budget_tokens` is a total over all documents: the best sentences anywhere come first. Inside a
document kept sentences stay in order, and a run of dropped ones becomes one `" … "`."""),
    C("""\
for budget in (48, 96):
    print(f"--- budget {budget} tokens")
    for doc in pruner.prune(query, documents, budget_tokens=budget):
        print(f"[{doc.index}] score={doc.score:.3f} tokens={doc.tokens}/{doc.original_tokens}")
        print("   ", doc.text)"""),
    M("""\
## Provenance, and did the evidence survive?

`text == " … ".join(original[start:end] for start, end in spans)`, so each kept sentence can be
cited. Here we check the annotated rationale sentences against the kept spans."""),
    C("""\
kept = {d.index: d for d in pruner.prune(query, documents, budget_tokens=96)}
for i, (document, abstract) in enumerate(zip(documents, abstracts, strict=True)):
    if i not in kept:
        print(f"[{i}] left out")
        continue
    spans = kept[i].spans
    assert kept[i].text == " … ".join(document[a:b] for a, b in spans)
    for r in abstract["rationale"]:
        sentence = abstract["sentences"][r]
        start = document.index(sentence)
        inside = any(a <= start and start + len(sentence) <= b for a, b in spans)
        print(f"[{i}] rationale sentence {r}: {'kept' if inside else 'dropped'}")
print(json.dumps(kept[min(kept)].to_dict())[:200], "...")"""),
    M("""\
## Without a budget: the adaptive default

With neither `budget_tokens` nor `threshold`, a sentence is kept when it scores within a quarter
of the score spread from the best one (over all the documents of the call): one sentence when
the best stands out, several when many score close to it."""),
    C("""\
for doc in pruner.prune(query, documents):
    print(f"[{doc.index}] tokens={doc.tokens}/{doc.original_tokens}: {doc.text[:150]}")"""),
    M("""\
## In LangChain and LlamaIndex

`prune=True` (or a `ContextPruner`) and `budget_tokens` on the compressor / postprocessor: they
rerank, then prune, and return NEW documents/nodes whose text is the pruned text, with
`kept_spans`, `original_tokens` and `kept_tokens` in the metadata. The caller's objects are not
changed; if the pruner fails, the reranked documents come back whole, marked `pruned: False`."""),
    C("""\
from langchain_core.documents import Document
from llama_index.core.schema import NodeWithScore, TextNode

from langchain_rerankkit import RerankKitCompressor
from llamaindex_rerankkit import RerankKitPostprocessor

docs = [Document(text, id=f"doc{i}") for i, text in enumerate(documents)]
compressor = RerankKitCompressor(reranker=reranker, top_n=3, prune=True, budget_tokens=64)
for doc in compressor.compress_documents(docs, query):
    tokens = f'{doc.metadata["kept_tokens"]} of {doc.metadata["original_tokens"]} tokens'
    print(doc.id, tokens + ":", doc.page_content[:90])

nodes = [NodeWithScore(node=TextNode(text=text), score=1.0) for text in documents]
post = RerankKitPostprocessor(reranker, top_n=3, prune=True, budget_tokens=64)
out = post.postprocess_nodes(nodes, query_str=query)
print([n.node.metadata["kept_spans"] for n in out])"""),
    M("""\
## Measuring it

`rerankkit eval-context` runs four methods (lead-k, a bi-encoder sentence pruner, this pruner,
whole abstracts by rerank order cut at the budget) on the rationale file and reports rationale
recall against tokens kept; the README and BENCHMARKS.md hold the table on the SciFact train
split and the exact command. For example:

```bash
rerankkit eval-context --data ../shared/data/scifact-rationales/train.jsonl \\
    --reranker cross-encoder:../shared/models/minilm-l6-msmarco-ce \\
    --budget 64 --budget 128 --budget 256 --max-claims 120 --output reports/context
```"""),
]

NOTEBOOKS = {"08_context_pruning.ipynb": CONTEXT}

if __name__ == "__main__":
    raise SystemExit(build_notebooks(sys.argv[1:], NOTEBOOKS))
