"""Fine-tuning cross-encoders (``pip install rerankkit[train]``): ``rerankkit train``.

Modules: ``data`` (training queries from BEIR or JSONL), ``mining`` (hard negatives from the
first stage), ``teacher`` (scores from any reranker spec), ``losses`` (by name; the pairwise
hinge), ``examples`` (rows per loss), ``model`` (starting model, head opt-in), ``trainer``
(``TrainConfig``, ``train``), ``evaluation`` (before/after), ``card`` (the model card).
``import rerankkit`` never imports this package.
"""

from rerankkit._optional import lazy_exports

# train() imports torch and sentence-transformers: every name loads on first use, so that
# `rerankkit train --help` and the CLI's other commands stay light.
_LAZY = {
    "TrainConfig": "rerankkit.train._config",
    "TrainResult": "rerankkit.train._trainer",
    "train": "rerankkit.train._trainer",
}
__all__ = [*_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
