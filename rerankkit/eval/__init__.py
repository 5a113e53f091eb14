"""Evaluation: measure a first stage and rerankers on judged test collections.

- ``datasets``: BEIR folders and TREC runs, with errors naming file and line.
- ``retrieval``: first-stage search (BM25 via bm25s, exact dense search).
- ``runs``: first-stage runs, candidates, reranking a run (``score_many``), timing;
  ``ray_run``: the same reranking on Ray Data actors (``rerankkit eval --ray``).
- ``metrics``: ir-measures figures per query, wins and losses, demo ranking metrics.
- ``report``: the report (JSON, markdown, plot); ``experiment``: ``evaluate``,
  ``evaluate_runs``; ``calibration``: :func:`rerankkit.score_distribution`.

``rerankkit eval`` is the command line over this package; ir-measures, bm25s and matplotlib
come with the ``eval`` extra.
"""
