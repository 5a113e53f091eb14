"""Fine-tuning cross-encoders (``pip install rerankkit[train]``): ``rerankkit train``.

Modules: ``data`` (training queries from BEIR or JSONL), ``mining`` (hard negatives from the
first stage), ``teacher`` (scores from any reranker spec), ``losses`` (by name; the pairwise
hinge), ``examples`` (rows per loss), ``model`` (starting model, head opt-in), ``trainer``
(``TrainConfig``, ``train``), ``evaluation`` (before/after), ``card`` (the model card).
``import rerankkit`` never imports this package.
"""
