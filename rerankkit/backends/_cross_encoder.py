"""``CrossEncoderReranker``: any Hugging Face sequence-classification cross-encoder.

The query and each document are read together by one transformer, which outputs a relevance
logit. Inputs are tokenised once per call, cut or chunked by the pure rules in ``_pairs``,
sorted by length into batches (little padding), and scored; results come back in input order.

Example (downloads the model from the Hugging Face hub)::

    from rerankkit import CrossEncoderReranker

    reranker = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L6-v2")
    docs = ["Berlin is in Germany.", "Paris is the capital of France."]
    reranker.rerank("capital of France", docs)
    # [RerankResult(index=1, score=...), RerankResult(index=0, score=...)]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rerankkit._base import Group
from rerankkit._optional import require
from rerankkit._validation import check_choice, check_instance, check_int, check_model_name
from rerankkit.backends._cpu_paths import cached_converted_path, pick_cpu_path
from rerankkit.backends._fast_path import CONVERTIBLE_MODEL_TYPES, constructor_path_order
from rerankkit.backends._hf import (
    EXTRA,
    ST_CONFIG,
    ModelReranker,
    Runner,
    Scored,
    Source,
    TorchForward,
    auto_load,
    by_group,
    logits_output,
    model_file,
    pair_template,
    pick_device_and_dtype,
    relevance_logits,
    run_batched,
    st_activation,
)
from rerankkit.backends._loading import check_trained, ensure_pad_token, untrained_weights
from rerankkit.backends._max_length import resolve_max_length
from rerankkit.backends._onnx import OnnxRunner, ensure_onnx_model, local_model_dir
from rerankkit.backends._pairs import (
    AGGREGATES,
    aggregate_chunks,
    chunk_window,
    chunk_windows,
    effective_overlap,
    query_budget,
    truncate_pair,
)
from rerankkit.backends._precision import head_in_float32
from rerankkit.backends._speed import cpu_flags, installed
from rerankkit.backends._truncation import TruncationNotice
from rerankkit.errors import ModelLoadError

logger = logging.getLogger(__name__)

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
ACTIVATIONS: tuple[str, ...] = ("auto", "sigmoid", "none")
LONG_DOCUMENTS: tuple[str, ...] = ("truncate", "chunk")
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx", "openvino")
QUANTIZE: tuple[str | None, ...] = (None, "int8")
# Document tokens per window in chunk mode (see ``_pairs.chunk_window`` for why 192).
DEFAULT_CHUNK_SIZE = 192


def _activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """Float32 scores from float32 logits ``[n, 1 | 2]``: the (positive - negative) logit,
    activated.

    For a 2-logit model ``sigmoid(l1 - l0)`` equals ``softmax(logits)[:, 1]``, the
    positive-class probability, and ``"none"`` gives the logit difference ``l1 - l0``.
    """
    raw = relevance_logits(logits)
    if activation == "sigmoid":  # torch's: large |x| neither overflows nor loses precision
        return np.asarray(require("torch", EXTRA).from_numpy(raw).sigmoid().numpy())
    if activation == "tanh":
        return np.asarray(np.tanh(raw))
    return raw


class CrossEncoderReranker(ModelReranker):
    """Rerank with a Hugging Face cross-encoder (ms-marco-MiniLM, bge-reranker, mxbai, jina, ...).

    Score scale: with the default ``activation="auto"`` a probability-like value in [0, 1]
    for most rerankers (sigmoid of the logit, the model's sentence-transformers activation
    when it records one; for 2-logit models the positive-class probability), so a
    ``score_threshold`` such as 0.5 has a meaning. ``activation="none"`` gives raw logits.
    With bf16/fp16 weights the classification head still runs in float32
    (``_precision.head_in_float32``), so low precision cannot round distinct scores into ties.

    Args:
        model_name_or_path: Hub id or local folder of an ``AutoModelForSequenceClassification``.
        device: ``None`` picks cuda > mps > cpu; or any torch device string.
        dtype: ``None``, ``"auto"``, ``"float32"``, ``"bfloat16"``, ``"float16"`` or a
            ``torch.dtype``. On a GPU ``None``/``"auto"`` is bf16 (fp16 without bf16). On CPU
            ``None``/``"auto"`` is the measured fastest path that keeps the ranking: the CPU
            flags and the installed runtimes only prune the candidates
            (``_fast_path.cpu_path_order``: OpenVINO/ONNX Runtime/PyTorch float32, OpenVINO
            bf16 where the CPU has native bf16, ONNX Runtime int8 without OpenVINO); each lossy
            one must match float32 on 60 probe pairs, and all are timed on 30 of them; an exact
            path is kept unless a lossy one is 5% faster. The path taken is ``cpu_path``, the
            measured pairs/s ``cpu_path_speeds``. First use converts the model and measures
            (a WARNING says so; about two seconds besides the conversion for MiniLM-L6), and
            caches the choice under ``$RERANKKIT_CACHE/onnx`` keyed by the weights, runtime
            versions, CPU model and threads; later processes build the chosen path directly.
            BERT-family models only (``_fast_path.CONVERTIBLE_MODEL_TYPES``); others get the
            torch candidates. Low-precision scores depend slightly on which pairs share a
            batch (BENCHMARKS.md); ``"float32"`` is the exact PyTorch mode
            (sentence-transformers parity, no conversion); ``exact=True`` the fastest exact
            path.
        batch_size: Most pairs per forward pass: length-sorted pairs are cut into batches of
            at most this many where the padding saved outweighs another pass
            (``_pairs.padding_aware_batches``), so a long document does not pad 31 short ones.
        max_length: Most tokens per pair, special tokens included. ``None`` (default) is the
            length the model declares (the tokenizer's ``model_max_length``, where
            sentence-transformers saves a cross-encoder's ``max_length``), capped at its
            position limit, else that limit: sentence-transformers' rule, so scores match
            ``CrossEncoder.predict``. A value above the declared length logs a WARNING; one
            above the position limit is lowered to it with a WARNING
            (``rerankkit.backends._max_length``).
        activation: ``"auto"``, ``"sigmoid"`` or ``"none"`` (raw logit; for 2-logit models the
            logit difference ``positive - negative``). Always computed in float32.
        long_documents: ``"truncate"`` cuts each document to fit (the query only when it alone
            does not fit); ``"chunk"`` scores overlapping windows of the whole document and
            aggregates them, reporting the best window's character span in
            ``RerankResult.details`` (``{"chunk_span": (start, end), "chunks": n}``). A
            document cut in truncate mode (or a query cut in either mode) is flagged
            ``details["truncated"] = True``; the first call that cuts anything logs one
            WARNING with the counts, later ones log at DEBUG.
        chunk_size: Document tokens per window in chunk mode, independent of ``max_length``
            (which only caps it: a window always fits ``max_length`` with the query and special
            tokens); ``None`` makes windows as long as ``max_length`` allows. The default 192
            holds 99% of MS MARCO passages whole, so a passage-trained cross-encoder reads
            windows like the passages it learned from (``_pairs.chunk_window``).
        chunk_overlap: Tokens shared by consecutive windows in chunk mode (capped at half a
            window); the default 64 is longer than most sentences, so some window holds each
            sentence whole.
        aggregate: How chunk scores make a document score: ``"max"``, ``"mean"`` or ``"first"``.
        backend: ``"auto"`` (PyTorch on GPUs; on CPU see ``dtype``), ``"torch"``, ``"onnx"``
            (ONNX Runtime, ``rerankkit[onnx]``) or ``"openvino"`` (``rerankkit[openvino]``,
            CPU): the model is exported once, checked against PyTorch, and cached under
            ``$RERANKKIT_CACHE/onnx`` (default ``~/.cache/rerankkit/onnx``) keyed by the
            weights' hash. With ``dtype=None`` a backend restricts the CPU candidates to its
            own (probed as above); ``backend="onnx", dtype="float32"`` and
            ``backend="openvino", dtype="float32"`` are exact.
        quantize: ``None`` or ``"int8"`` (ONNX dynamic int8 with the FFN output projections
            and the head in float32; asked for explicitly it is used without the probe).
        num_threads: CPU threads for inference; ``None`` keeps torch's default (physical cores)
            and uses the physical cores for ONNX Runtime and OpenVINO. With a torch path this
            sets ``torch.set_num_threads``, which is process-wide.
        revision: Hub revision (branch, tag or commit).
        local_files_only: ``True`` never contacts the hub; ``None`` tries the local cache
            first, then the hub unless ``HF_HUB_OFFLINE`` is set.
        cache_dir: Hugging Face cache folder.
        trust_remote_code: Allow the model repo's own Python code (off by default).
        model_kwargs: Extra keyword arguments for ``from_pretrained`` (e.g.
            ``attn_implementation``).
        allow_untrained_head: Accept a checkpoint without trained classification weights (a
            bi-encoder or base model, e.g. to fine-tune it): transformers initialises them at
            random, so scores are random until trained. Off by default: such a checkpoint
            raises ``ModelLoadError`` naming the missing weights.

        exact: ``True`` runs the measured fastest exact CPU path (OpenVINO, ONNX Runtime or
            PyTorch float32: the scores of PyTorch float32 within ~1e-6, converted once and
            cached), never a probed bf16/int8 one, and float32 on a GPU; ``dtype="float32"``
            alone is PyTorch float32.

    Raises:
        ModelLoadError: The model cannot be loaded, or lacks trained head weights (see
            ``allow_untrained_head``).
        ValueError: A bad option, or a ``device`` this machine does not have (the message
            lists the available ones).

    Attributes:
        cpu_path: The CPU path chosen by measurement and probe (``"openvino-float32"``,
            ``"openvino-bfloat16"``, ``"torch-float32"``, ...; ``None`` for an explicit
            torch/ONNX dtype or a GPU).
        cpu_path_speeds: Pairs/s each candidate reached on the timing pairs when the choice was
            measured (cached with it); empty when there was nothing to choose.
        last_truncated: Documents (or queries) cut in the most recent call (also flagged in
            the results' details and logged: WARNING the first time, DEBUG after).

    Pickling stores the constructor's arguments, not the weights: unpickling loads the model
    again from ``model_name_or_path`` (see ``rerankkit._pickling``), and
    ``rerankkit._specs.reranker_spec`` writes the same arguments as a spec string.

    Example (a local model folder)::

        reranker = CrossEncoderReranker("path/to/ce", max_length=256)
        reranker.score("what is bm25", ["BM25 ranks documents.", "A recipe."])
        # [..., ...]: one float per document, in input order
    """

    _shown = ("device", "max_length", "long_documents")

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] = DEFAULT_CROSS_ENCODER,
        *,
        device: Any = None,
        dtype: Any = None,
        batch_size: int = 32,
        max_length: int | None = None,
        activation: str = "auto",
        long_documents: str = "truncate",
        chunk_size: int | None = DEFAULT_CHUNK_SIZE,
        chunk_overlap: int = 64,
        aggregate: str = "max",
        backend: str = "auto",
        quantize: str | None = None,
        num_threads: int | None = None,
        revision: str | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        trust_remote_code: bool = False,
        model_kwargs: Mapping[str, Any] | None = None,
        allow_untrained_head: bool = False,
        exact: bool = False,
    ) -> None:
        check_choice(activation, "activation", ACTIVATIONS)
        self.long_documents = check_choice(long_documents, "long_documents", LONG_DOCUMENTS)
        self.aggregate = check_choice(aggregate, "aggregate", AGGREGATES)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        max_length = check_int(max_length, "max_length", minimum=8, optional=True)
        self.chunk_size = check_int(chunk_size, "chunk_size", minimum=1, optional=True)
        self.chunk_overlap = check_int(chunk_overlap, "chunk_overlap", minimum=0)
        check_instance(allow_untrained_head, bool, "allow_untrained_head")
        check_instance(exact, bool, "exact")
        check_choice(backend, "backend", BACKENDS)
        self.quantize = check_choice(quantize, "quantize", QUANTIZE)
        if quantize is not None and backend not in ("onnx", "auto"):
            raise ValueError(
                f"quantize={quantize!r} needs backend='onnx' (got backend={backend!r})"
            )
        self.num_threads = check_int(num_threads, "num_threads", minimum=1, optional=True)
        torch = require("torch", EXTRA)
        # An asked-for runtime is required before any download, load or conversion message.
        if backend == "onnx" or quantize is not None:
            require("onnxruntime", "onnx")
        if backend == "openvino":
            require("openvino", "openvino")
        source = Source(
            check_model_name(model_name_or_path),
            revision,
            local_files_only,
            cache_dir,
            trust_remote_code,
        )
        config = auto_load(source, "AutoConfig", "cross-encoder")
        self.num_labels = int(getattr(config, "num_labels", 1))
        if self.num_labels not in (1, 2):
            raise ValueError(
                f"model_name_or_path {source.name!r} has {self.num_labels} output labels; a "
                "cross-encoder reranker needs 1 (relevance logit) or 2 (negative, positive)"
            )
        self.tokenizer = auto_load(source, "AutoTokenizer", "tokenizer of")
        self._pad_id = ensure_pad_token(config, self.tokenizer)  # decoder classifiers lack one
        self.max_length = resolve_max_length(
            config,
            declared=getattr(self.tokenizer, "model_max_length", None),
            wanted=max_length,
            owner=f"{type(self).__name__}({source.name!r})",
        )
        # ONNX Runtime judges its own device (onnxruntime-gpu may run CUDA under a CPU torch).
        if exact and dtype in (None, "auto"):
            dtype = "float32"  # on a GPU too, where None/"auto" would be bf16/fp16
        self.device, self.dtype = pick_device_and_dtype(device, dtype, check=backend != "onnx")
        # On CPU with dtype None/"auto" (or exact=True): the measured fastest candidate that
        # keeps the ranking (_fast_path: the candidates; _cpu_paths + _chooser: probe, timing,
        # cached choice).
        order = constructor_path_order(
            backend,
            dtype,
            self.quantize,
            self.device,
            cpu_flags(),
            onnx=installed("onnxruntime"),
            openvino=installed("openvino"),
            exact=exact,
            convertible=getattr(config, "model_type", "") in CONVERTIBLE_MODEL_TYPES,
        )
        self.backend: str = "onnx" if backend == "auto" and self.quantize else backend
        self.backend = "torch" if self.backend == "auto" else self.backend
        if self.backend == "onnx" and self.dtype != torch.float32 and dtype not in (None, "auto"):
            raise ValueError(
                f"dtype={dtype!r} is not available with backend='onnx' (float32; use "
                "quantize='int8' for a faster ONNX path)"
            )
        if order is not None or self.backend == "onnx":
            self.dtype = torch.float32  # the probe's reference (a fast path converts it)
        if self.num_threads is not None and (self.backend == "torch" or order is not None):
            torch.set_num_threads(self.num_threads)
        model_dir = _local_dir(source) if order is not None else None
        # A converted path chosen before for these weights and options runs without the torch
        # weights: loading them (the trained-head check, the probe's reference) is skipped.
        cached = (
            cached_converted_path(
                order,
                model_dir=model_dir,
                max_length=self.max_length,
                num_threads=self.num_threads,
                batch_size=self.batch_size,
            )
            if order is not None
            else None
        )
        if cached is None:
            model, info = auto_load(
                source,
                "AutoModelForSequenceClassification",
                "cross-encoder",
                config=config,
                dtype=self.dtype,
                output_loading_info=True,
                **dict(model_kwargs or {}),
            )
            untrained = untrained_weights(info)
            # Refused before any conversion: ONNX paths load the weights for this check too.
            check_trained(
                untrained,
                model=source.name,
                what="cross-encoder",
                opt_in="allow_untrained_head",
                allowed=allow_untrained_head,
            )
        self.cpu_path: str | None = None
        self.cpu_path_speeds: dict[str, float] = {}
        self._forward: Runner  # the only place that runs the network: replaceable
        if order is not None:
            self.cpu_path, self._forward, choice = cached or pick_cpu_path(
                order,
                model.eval(),
                model_dir=model_dir,
                tokenizer=self.tokenizer,
                max_length=self.max_length,
                num_threads=self.num_threads,
                trust_remote_code=trust_remote_code,
                batch_size=self.batch_size,
                untrained=untrained,
            )
            self.cpu_path_speeds = dict(choice.pairs_per_second) if choice else {}
            self.backend = self.cpu_path.split("-")[0]
            # ONNX Runtime and OpenVINO hold their own weights; a torch path runs its module.
            self.model = self._forward.model if isinstance(self._forward, TorchForward) else None
            self.dtype = torch.bfloat16 if self.cpu_path.endswith("bfloat16") else torch.float32
        elif self.backend == "onnx":
            self.model = None  # ONNX Runtime holds the weights
            path = ensure_onnx_model(
                local_model_dir(source), quantize=self.quantize, trust_remote_code=trust_remote_code
            )
            where = "auto" if device is None else self.device
            self._forward = OnnxRunner(path, num_threads=self.num_threads, device=where)
        else:
            head_in_float32(model)  # bf16/fp16 logits would tie distinct documents
            self.model = model.to(self.device).eval()
            self._forward = TorchForward(self.model, self.device, logits_output)
        self.model_name_or_path = source.name
        self.allow_untrained_head = allow_untrained_head
        self.exact = exact
        self._template = pair_template(self.tokenizer)
        if self.max_length - self._template.num_special < 2:
            raise ValueError(
                f"max_length={self.max_length} leaves no room for a query and document"
            )
        self._uses_types = "token_type_ids" in self.tokenizer.model_input_names
        if activation == "auto":
            recorded = st_activation(model_file(source, ST_CONFIG), config)
            # A 2-logit model's score is its positive-class probability whatever ST recorded
            # (ST saves Identity for them and returns both logits instead of one score).
            activation = "sigmoid" if self.num_labels == 2 else recorded or "sigmoid"
        self.activation = activation
        self.last_truncated = 0
        self._truncation = TruncationNotice(
            f"{type(self).__name__}({source.name!r})",
            "long_documents='chunk'"
            if long_documents == "truncate"
            else "a larger max_length (chunk mode cuts only a query that alone exceeds it)",
        )
        logger.debug("loaded %r (%s, activation=%s)", self, self.dtype, activation)

    @property
    def probability_scores(self) -> bool:
        """``True`` with a sigmoid activation (scores in [0, 1], uncalibrated); raw logits
        (``activation="none"``) are not probabilities."""
        return self.activation == "sigmoid"

    def _score_many_with_details(self, groups: list[Group]) -> Scored:
        # Every pair of every group is tokenised, cut or chunked, then length-sorted and
        # batched together: one query's short passages share batches with another's, so
        # a run of many queries pads less than one call per query. Each pair is cut and
        # scored exactly as it would be alone, so the scores are the per-query ones.
        # Truncate mode is chunk mode with one window per document: its cut document.
        chunk = self.long_documents == "chunk"
        tok = self.tokenizer
        query_ids = tok([query for query, _ in groups], add_special_tokens=False, verbose=False)
        texts = [document for _, documents in groups for document in documents]
        asker = [group for group, (_, documents) in enumerate(groups) for _ in documents]
        offsets_ok = chunk and bool(getattr(tok, "is_fast", False))
        encoded = tok(
            texts, add_special_tokens=False, verbose=False, return_offsets_mapping=offsets_ok
        )
        budget = self.max_length - self._template.num_special
        rows, types, owners, spans, cuts, counts = [], [], [], [], [], []
        for doc, ids in enumerate(encoded["input_ids"]):
            question = query_ids["input_ids"][asker[doc]]
            if chunk:
                kept = query_budget(len(question), len(ids), budget)
                window = chunk_window(budget - kept, self.chunk_size)
                overlap = effective_overlap(self.chunk_overlap, window)
                windows = chunk_windows(len(ids), window, overlap)
                cuts.append(kept < len(question))
            else:
                q, d, cut = truncate_pair(question, ids, budget)
                kept, windows = len(q), [(0, len(d))]
                cuts.append(cut)
            counts.append(len(windows))
            for start, end in windows:
                row, row_types = self._template.assemble(question[:kept], ids[start:end])
                rows.append(row)
                types.append(row_types)
                owners.append(doc)
                spans.append((start, end))
        self.last_truncated = sum(cuts)
        what = "queries" if chunk else "documents"
        details = self._truncation.report(cuts, what, f"max_length={self.max_length} tokens")
        logits = run_batched(
            self._forward,
            rows,
            batch_size=self.batch_size,
            pad_id=self._pad_id,
            left=tok.padding_side == "left",
            types=types if self._uses_types else None,
        )
        scores, best = aggregate_chunks(
            _activate(logits, self.activation).tolist(), owners, len(texts), self.aggregate
        )
        for doc, position in enumerate(best if chunk else ()):
            start, end = spans[position]
            details[doc]["chunks"] = counts[doc]
            if offsets_ok:
                offsets = encoded["offset_mapping"][doc]
                details[doc]["chunk_span"] = (
                    (int(offsets[start][0]), int(offsets[end - 1][1])) if end > start else (0, 0)
                )
        return by_group(scores, details, groups)


def _local_dir(source: Source) -> Path | None:
    """The local model folder (ONNX conversion, cached verdicts); ``None`` without one."""
    try:
        return local_model_dir(source)
    except ModelLoadError as error:
        logger.info(
            "no local folder for %s (no ONNX paths, no cached verdicts): %s", source.name, error
        )
        return None
