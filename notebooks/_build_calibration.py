"""Build notebook 07 (calibrated relevance: fit on one collection, apply on another, abstain in
a LangChain chain) and execute it in place with outputs kept, through ``_build``'s routine.

The cross-encoder's scores of the two collections come from
``data/minilm-l6-msmarco-ce_scores.json``, written from the score cache of
``benchmarks/calibration_transfer.py`` (the test cross-encoder on the DL19 BM25 top-100 and on
NovelEval's 20 candidates per question), so the notebook runs in seconds; the labels come from
the collections' qrels in ``../shared/data``.

Usage (from the repository root)::

    .venv/bin/python notebooks/_build_calibration.py
    .venv/bin/ruff format notebooks/07_calibrated_relevance.ipynb
"""

from __future__ import annotations

import sys

from _build import FIND_SHARED, QUIET
from _build import main as build_notebooks
from nbformat.v4 import new_code_cell, new_markdown_cell

M, C = new_markdown_cell, new_code_cell

CALIBRATION = [
    M("""\
# 07 · Scores that mean something: calibrate, cut by probability, abstain

A reranker's raw score is a logit, a sigmoid, a cosine or a MaxSim sum, so a `score_threshold`
tuned for one model means nothing for the next. This notebook:

1. fits a **calibration** (score -> P(relevant)) of the test cross-encoder on TREC DL 2019,
2. applies it to **NovelEval**, a collection it was not fitted on, and draws the reliability
   diagram before and after,
3. uses it in a **LangChain chain** with `min_relevance=0.5`: the retriever abstains when no
   document is likely relevant, and the chain answers "I could not find it".

The scores of both collections were computed once (`benchmarks/calibration_transfer.py`) and are
read from `data/`; the labels come from the qrels in `../shared/data`."""),
    C(QUIET + "\n\n" + FIND_SHARED),
    C("""\
import json

from rerankkit.eval._datasets import parse_qrels

DATA = ROOT.parent / "shared" / "data"
scores = json.loads((ROOT / "notebooks" / "data" / "minilm-l6-msmarco-ce_scores.json").read_text())
qrels = {
    name: parse_qrels((DATA / name / "qrels" / "test.tsv").read_text().splitlines())
    for name in scores
}
for name in scores:
    pairs = sum(len(docs) for docs in scores[name].values())
    print(f"{name}: {len(scores[name])} queries, {pairs} scored pairs")"""),
    M("""\
## 1 · Fit on TREC DL 2019

Relevant = grade >= 2 ("highly relevant", TREC DL's binary convention). `fit_calibration` fits
Platt scaling and isotonic regression and keeps the one with the lower log-loss on held-out
queries (5 folds split by query); the file records the reranker it belongs to.
`rerankkit calibrate --data ... --run ... --reranker SPEC --output cal.json` does the same from
the shell."""),
    C("""\
import tempfile

from rerankkit import CrossEncoderReranker, reranker_spec
from rerankkit.eval import fit_calibration
from rerankkit.eval._calibrate import judged_labels

cross_encoder = CrossEncoderReranker(TRAINED_CE)
FIT = "trec-dl-2019-passage"
_, fit_scores, fit_labels = judged_labels(qrels[FIT], scores[FIT], 2)
spec = reranker_spec(cross_encoder)  # the file names the reranker it belongs to
calibration = fit_calibration(fit_scores, fit_labels, reranker=spec, fitted_on={"data": FIT})
path = calibration.save(Path(tempfile.mkdtemp()) / "ce.cal.json")
metrics = calibration.metrics
losses = {m: round(v, 4) for m, v in metrics["held_out_log_loss"].items()}
print("chosen:", calibration.method, "held-out log-loss:", losses)
ece = metrics["before"]["ece"], metrics["after_held_out"]["ece"]
print(f"DL19 ECE {ece[0]:.3f} raw -> {ece[1]:.3f} calibrated (held-out queries)")"""),
    M("""\
## 2 · Apply to NovelEval (not fitted on it)

NovelEval's grade 2 is "relevant" (1 is "partially relevant")."""),
    C("""\
from IPython.display import Image
from rerankkit.eval._calibrate import measures, plot_reliability, reliability_table

_, raw_rows, label_rows = judged_labels(qrels["noveleval-2306"], scores["noveleval-2306"], 2)
raw = [s for row in raw_rows for s in row]
labels = [y for row in label_rows for y in row]
calibrated = calibration.apply(raw)
before, after = measures(raw, labels), measures(calibrated, labels)
print(f"NovelEval ECE {before['ece']:.3f} -> {after['ece']:.3f}")
print(f"NovelEval Brier {before['brier']:.3f} -> {after['brier']:.3f}")
kept = [y for p, y in zip(calibrated, labels, strict=True) if p >= 0.5]
print(f"min_relevance=0.5 keeps {len(kept)} of {len(raw)}, precision {sum(kept) / len(kept):.3f}")
curves = {
    "raw sigmoid scores": reliability_table(raw, labels),
    "calibrated on DL19": reliability_table(calibrated, labels),
}
png = plot_reliability(
    curves,
    path.with_suffix(".png"),
    title="cross-encoder on NovelEval",
)
Image(filename=png)"""),
    M("""\
The map transfers only partly: on DL19 the held-out ECE is small, on NovelEval it is not.
NovelEval's candidates are Google-search passages about one 2023 event each, all on topic, and
the MS MARCO cross-encoder separates its relevant from its merely related passages less well
than on DL19: a calibration is only as portable as the model's discrimination. Calibrate on data
like yours (no labels? `rerankkit judge` writes graded qrels with an LLM)."""),
    M("""\
## 3 · Abstain in a LangChain chain

`RerankKitCompressor(min_relevance=0.5)` keeps the documents with P(relevant) >= 0.5 (`top_n` is a
ceiling). When none reaches it, it returns no documents (`on_no_relevant="empty"`), its run
reports `abstained`, and it dispatches the custom event `rerankkit_abstained`; the chain below
answers "I could not find it" instead of feeding irrelevant passages to the LLM."""),
    C("""\
import warnings

warnings.filterwarnings("ignore", message=".*langchain-community.*sunset")  # BM25Retriever's home
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_community.retrievers import BM25Retriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from langchain_rerankkit import RerankKitCompressor
from rerankkit import CalibratedReranker

texts = [
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
    "Croissants are a French pastry made of layered dough.",
]
compressor = RerankKitCompressor(
    reranker=CalibratedReranker(cross_encoder, path), top_n=3, min_relevance=0.5
)
retriever = ContextualCompressionRetriever(
    base_compressor=compressor, base_retriever=BM25Retriever.from_texts(texts, k=4)
)


def answer(found):
    if not found:
        return "I could not find it in the documents."
    best = found[0]
    return f"From P(relevant)={best.metadata['relevance_score']:.2f}: {best.page_content}"


class ShowAbstain(BaseCallbackHandler):
    def on_custom_event(self, name, data, **kwargs):
        print(f"  event {name}: min_relevance={data['min_relevance']}, of {data['documents']}")


chain = retriever | RunnableLambda(answer)
for question in ["When was the Eiffel Tower completed?", "What is the boiling point of mercury?"]:
    print(question)
    print("  ->", chain.invoke(question, config={"callbacks": [ShowAbstain()]}))"""),
    M("""\
With `on_no_relevant="best"` the compressor keeps the best document instead, flagged
`metadata["below_min_relevance"] = True`, for an agent that prefers a weak hint to nothing."""),
    C("""\
compressor.on_no_relevant = "best"
found = retriever.invoke("What is the boiling point of mercury?")
[(round(d.metadata["relevance_score"], 3), d.metadata["below_min_relevance"]) for d in found]"""),
]

NOTEBOOKS = {"07_calibrated_relevance.ipynb": CALIBRATION}

if __name__ == "__main__":
    raise SystemExit(build_notebooks(sys.argv[1:], NOTEBOOKS))
