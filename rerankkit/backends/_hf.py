"""What the model backends share: loading, devices and dtypes, the batched forward pass, a base.

Device and dtype choice are pure functions of what the machine offers; loading goes through
transformers' Auto classes with ``revision``/``local_files_only``/``cache_dir`` passed on and
``trust_remote_code=False`` unless the caller opts in. Missing models fail fast with a message
that names the model, whether or not the hub is reachable. ``run_batched`` is the one loop
that pads length-sorted batches of token ids and runs a forward pass (``TorchForward``, ONNX
Runtime, OpenVINO) over them; ``ModelReranker`` is the base class of the four backends.

Example:
    >>> resolve_device(None, cuda=False, mps=True)
    'mps'
    >>> resolve_dtype("auto", "cuda", bf16=True)
    'bfloat16'
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import numpy as np

from rerankkit._abandon import stop_if_abandoned
from rerankkit._base import Group, GroupBatchedReranker, split_by_group
from rerankkit._optional import require
from rerankkit._ordering import Details
from rerankkit._pickling import RebuiltOnUnpickle
from rerankkit._validation import looks_like_path
from rerankkit.backends._devices import check_device
from rerankkit.backends._pairs import (
    PairTemplate,
    padding_aware_batches,
    restore_order,
    template_from_probe,
)
from rerankkit.backends._speed import installed
from rerankkit.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

EXTRA = "transformers"
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
ST_CONFIG = "config_sentence_transformers.json"


def resolve_device(requested: Any, *, cuda: bool, mps: bool) -> str:
    """The device to run on: the caller's choice, else cuda > mps > cpu.

    Args:
        requested: ``None``/``"auto"``, or a device string / ``torch.device`` (kept as given).
        cuda: Whether CUDA is available.
        mps: Whether Apple MPS is available.

    Example:
        >>> resolve_device(None, cuda=True, mps=True), resolve_device("cpu", cuda=True, mps=False)
        ('cuda', 'cpu')
    """
    if requested is None or requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    return str(requested)  # a torch.device too


def resolve_dtype(requested: Any, device: str, *, bf16: bool) -> str:
    """The weights' dtype name: the caller's choice, else fp16/bf16 on a GPU and fp32 on CPU.

    Args:
        requested: ``None``/``"auto"``, a name (``"float32"``, ``"bf16"``, ...) or a
            ``torch.dtype``.
        device: The resolved device string.
        bf16: Whether the device computes in bfloat16 natively (preferred over float16 there:
            same speed, no overflow).

    Raises:
        ValueError: An unknown dtype.

    Example:
        >>> resolve_dtype(None, "cpu", bf16=True), resolve_dtype(None, "cuda:0", bf16=False)
        ('float32', 'float16')
    """
    if requested is None or requested == "auto":
        by_kind = {"cuda": "bfloat16" if bf16 else "float16", "mps": "float16"}
        return by_kind.get(device.split(":")[0], "float32")
    name = str(requested).removeprefix("torch.")
    name = _DTYPE_ALIASES.get(name, name)
    if name not in DTYPES:
        raise ValueError(
            f"dtype must be 'auto', one of {DTYPES} or a torch.dtype, got {requested!r}"
        )
    return name


def pick_device_and_dtype(
    device: Any, dtype: Any, *, check: bool = True
) -> tuple[str, torch.dtype]:
    """``resolve_device`` and ``resolve_dtype`` with the facts of this machine.

    Raises:
        ValueError: With ``check``, a ``device`` this machine lacks (``"cuda"`` on a CPU-only
            torch, ``"cuda:3"`` with one GPU, ...), naming ``device`` and what is available
            (``_devices.check_device``). ``check=False`` is for a device another runtime
            (ONNX Runtime) will judge.
    """
    torch = require("torch", EXTRA)
    mps = torch.backends.mps.is_available()
    resolved = resolve_device(device, cuda=torch.cuda.is_available(), mps=mps)
    if check:
        check_device(resolved)
    bf16 = (
        resolved.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )
    return resolved, getattr(torch, resolve_dtype(dtype, resolved, bf16=bf16))


@dataclass(frozen=True, slots=True)
class Source:
    """Where and how to load a model from (passed to every ``from_pretrained``)."""

    name: str
    revision: str | None = None
    local_files_only: bool | None = None
    cache_dir: str | os.PathLike[str] | None = None
    trust_remote_code: bool = False

    @property
    def is_local(self) -> bool:
        return Path(self.name).expanduser().is_dir()

    def kwargs(self, *, local_only: bool) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "cache_dir": self.cache_dir,
            "local_files_only": local_only,
            "trust_remote_code": self.trust_remote_code,
        }


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint answers a TCP connection within ``timeout`` seconds.

    huggingface_hub retries an unreachable host with back-off for ~30 s; probing once lets a
    machine without network fail in seconds. Behind a proxy the probe is skipped (True).
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    hub = require("huggingface_hub", EXTRA)
    url = urlsplit(hub.constants.ENDPOINT)
    address = (url.hostname or "huggingface.co", url.port or 443)
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' load-time progress bars and notices unless rerankkit logs at INFO.

    Library code should not draw on the user's terminal; ``-v`` (INFO) brings them back.
    """
    if not installed("transformers") or logging.getLogger("rerankkit").isEnabledFor(logging.INFO):
        yield  # nothing to quieten, or asked to show
        return
    hf_logging = require("transformers.utils.logging", EXTRA)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_pretrained(source: Source, load: Callable[..., Any], what: str) -> Any:
    """Call ``load(name, **kwargs)`` (a ``from_pretrained``) failing fast and clearly.

    With ``local_files_only=None`` the local cache is tried first (no network round trip for
    a cached model), then the hub unless ``HF_HUB_OFFLINE`` is set.

    Raises:
        ModelLoadError: The model cannot be found; the message names it and says why.
    """
    name = str(Path(source.name).expanduser()) if source.is_local else source.name
    if not source.is_local and looks_like_path(source.name):  # never a hub id: no network
        raise ModelLoadError(
            f"cannot load {what} {source.name!r}: no such folder (a path, not a hub id: the "
            "hub was not tried)"
        )
    offline = source.local_files_only is True or _hub_offline()
    attempts = [True] if offline or source.is_local else [True, False]
    if source.local_files_only is False and not _hub_offline():
        attempts = [False]
    error: Exception | None = None
    for local_only in attempts:
        if not local_only and not hub_reachable():
            raise ModelLoadError(
                f"cannot load {what} {source.name!r}: it is neither a local folder nor in the "
                "Hugging Face cache, and the hub is unreachable (no network?). Pass a local "
                "folder, or set HF_HUB_OFFLINE=1 to skip the hub."
            ) from error
        try:
            with quiet_transformers():
                return load(name, **source.kwargs(local_only=local_only))
        except (OSError, ValueError) as caught:  # transformers raises both for missing files
            error = caught
    where = (
        "it is not a local folder and not in the Hugging Face cache, and the hub may not be "
        "contacted (HF_HUB_OFFLINE or local_files_only)"
        if offline
        else "it is neither a local folder nor loadable from the Hugging Face hub"
    )
    raise ModelLoadError(f"cannot load {what} {source.name!r}: {where}. Cause: {error}") from error


def auto_load(source: Source, auto_class: str, what: str, **kwargs: Any) -> Any:
    """``transformers.<auto_class>.from_pretrained(name, **kwargs)`` through
    :func:`load_pretrained` (``"AutoConfig"``, ``"AutoTokenizer"``, ``"AutoModel"``, ...)."""
    load = getattr(require("transformers", EXTRA), auto_class).from_pretrained
    return load_pretrained(source, functools.partial(load, **kwargs), what)


def files_digest(folder: Path, paths: Sequence[Path]) -> str:
    """SHA-256 over each file's path relative to ``folder`` and its bytes, in order (what a
    converted model or stored embeddings are keyed by, so they follow the weights)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_file(source: Source, filename: str) -> Any:
    """A parsed JSON file of the model folder or hub repo (``None`` when absent)."""
    if source.is_local:
        return _read_json(Path(source.name).expanduser() / filename)
    hub = require("huggingface_hub", EXTRA)

    def download(name: str, *, trust_remote_code: bool, **kwargs: Any) -> str:
        return str(hub.hf_hub_download(name, filename, **kwargs))

    try:  # the cache first, then the hub where allowed, as for the model itself
        return _read_json(Path(load_pretrained(source, download, filename)))
    except Exception:  # absent file, not cached, unreachable: all mean "not configured"
        return None


def st_activation(st_config: Mapping[str, Any] | None, config: Any) -> str | None:
    """The activation sentence-transformers recorded for a cross-encoder: ``"sigmoid"``,
    ``"none"`` or ``"tanh"``; ``None`` when none is recorded (or one not supported, logged).

    Newer sentence-transformers writes ``activation_fn`` in ``config_sentence_transformers.json``;
    older versions put it in ``config.json`` under ``sentence_transformers`` (or as
    ``sbert_ce_default_activation_function``).

    Example:
        >>> st_activation({"activation_fn": "torch.nn.modules.activation.Sigmoid"}, None)
        'sigmoid'
        >>> st_activation(None, None) is None
        True
    """
    legacy = getattr(config, "sentence_transformers", None)
    recorded = (
        (st_config or {}).get("activation_fn"),
        legacy.get("activation_fn") if isinstance(legacy, Mapping) else None,
        getattr(config, "sbert_ce_default_activation_function", None),
    )
    path = next((value for value in recorded if isinstance(value, str)), None)
    if path is None:
        return None
    leaf = path.rsplit(".", 1)[-1].lower()
    mapped = {"sigmoid": "sigmoid", "identity": "none", "tanh": "tanh"}.get(leaf)
    if mapped is None:
        logger.warning("unsupported sentence-transformers activation %r; using the default", path)
    return mapped


def pair_template(tokenizer: Any) -> PairTemplate:
    """How ``tokenizer`` lays out a (query, document) pair with its special tokens."""
    query, document = "relevance query", "candidate passage text"
    q = tokenizer(query, add_special_tokens=False)["input_ids"]
    d = tokenizer(document, add_special_tokens=False)["input_ids"]
    pair = tokenizer(query, document)
    return template_from_probe(pair["input_ids"], pair.get("token_type_ids"), q, d)


def pad_batch(
    rows: Sequence[Sequence[int]], pad_id: int, *, left: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pad rows of ids to the longest; returns ``(ids, attention_mask)`` as int64 arrays."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for k, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[k, span] = row
        mask[k, span] = 1
    return ids, mask


Runner = Callable[[dict[str, np.ndarray]], np.ndarray]
"""A forward pass: a batch of int64 arrays in, float32 outputs (one row per input row) out."""


def run_batched(
    forward: Runner,
    ids: Sequence[Sequence[int]],
    *,
    batch_size: int,
    pad_id: int,
    left: bool = False,
    types: Sequence[Sequence[int]] | None = None,
    positions: bool = False,
) -> np.ndarray:
    """``forward`` over rows of token ids in length-sorted padded batches, in input order.

    The batches are ``_pairs.padding_aware_batches``: at most ``batch_size`` rows, cut where the
    padding saved outweighs another forward pass (fixed batches of 32 padded DL19's BM25
    top-100 by 24%, these by 9%).

    Args:
        forward: The runner (:class:`TorchForward`, ONNX Runtime, OpenVINO).
        ids: Token ids per row, special tokens included.
        batch_size: Most rows per forward pass.
        pad_id: The tokenizer's padding id.
        left: Pad on the left (decoder models: the last position is every row's last token).
        types: Token type ids per row, for models that take them.
        positions: Send ``position_ids`` that skip the padding (left-padded decoders), so a
            row's output does not depend on its batch.

    Example:
        >>> def lengths(batch):
        ...     return batch["attention_mask"].sum(axis=1, keepdims=True).astype("float32")
        >>> run_batched(lengths, [[7], [7, 7, 7], [7, 7]], batch_size=2, pad_id=0).ravel().tolist()
        [1.0, 3.0, 2.0]
    """
    plan = padding_aware_batches([len(row) for row in ids], batch_size)
    outputs = []
    for batch in plan:
        stop_if_abandoned()  # a caller that went away wastes at most one batch
        input_ids, mask = pad_batch([ids[i] for i in batch], pad_id, left=left)
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if types is not None:
            inputs["token_type_ids"] = pad_batch([types[i] for i in batch], 0, left=left)[0]
        if positions:
            inputs["position_ids"] = np.maximum(mask.cumsum(axis=-1) - 1, 0)
        outputs.append(np.asarray(forward(inputs), dtype=np.float32))
    inverse = np.asarray(restore_order(plan, range(len(ids))), dtype=np.int64)
    return np.concatenate(outputs, axis=0)[inverse]


@dataclass(repr=False)
class TorchForward:
    """A forward pass over numpy inputs returning float32 numpy (the swappable runner seam).

    A module-level class, not a closure, so a backend holding one pickles.
    """

    model: Any
    """A loaded transformers model in eval mode on ``device``."""
    device: str
    """Where the inputs go."""
    output: Callable[[Any, dict[str, Any]], Any]
    """``(model_output, torch_inputs) -> tensor``, e.g. the logits or a pooling; a module-level
    function (or a ``functools.partial`` of one) so it pickles."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of every forward call (``{"logits_to_keep": 1}``)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        torch = require("torch", EXTRA)
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            result = self.output(self.model(**inputs, **self.options), inputs)
        return np.asarray(result.float().cpu().numpy())


Scored = list[tuple[Sequence[float], Details]]
"""Each group's scores and details, in order: what ``_score_many_with_details`` returns."""


def by_group(scores: Sequence[float], details: list[dict[str, Any]], groups: list[Group]) -> Scored:
    """Per-document scores and details of all groups, concatenated, as each group's own."""
    return list(zip(split_by_group(scores, groups), split_by_group(details, groups), strict=True))


class ModelReranker(RebuiltOnUnpickle, GroupBatchedReranker):
    """A backend around a loaded model: pickled as its constructor arguments (the model is
    loaded again), pointwise, and one batched pass for every group of a call."""

    model_name_or_path: str
    _shown: ClassVar[tuple[str, ...]] = ("device",)
    """Attributes ``repr`` shows after the model (those that are ``None`` left out)."""

    def __repr__(self) -> str:
        values = {name: getattr(self, name) for name in self._shown}
        shown = "".join(f", {k}={v!r}" for k, v in values.items() if v is not None)
        return f"{type(self).__name__}({self.model_name_or_path!r}{shown})"

    @property
    def pointwise(self) -> bool:
        """``True``: a document's score depends only on the query and that document."""
        return True


def unique_texts(groups: Sequence[Group]) -> tuple[dict[str, int], dict[str, int]]:
    """The distinct queries and the distinct documents of ``groups``, each numbered in
    first-seen order (so each is encoded once for all groups).

    Example:
        >>> unique_texts([("q", ["a", "b"]), ("q", ["b", "c"])])
        ({'q': 0}, {'a': 0, 'b': 1, 'c': 2})
    """
    queries = dict.fromkeys(query for query, _ in groups)
    documents = dict.fromkeys(doc for _, docs in groups for doc in docs)
    return {q: i for i, q in enumerate(queries)}, {d: i for i, d in enumerate(documents)}


def logits_output(output: Any, inputs: dict[str, Any]) -> Any:
    """A sequence classifier's logits (the ``output`` of a cross-encoder's forward pass)."""
    return output.logits


def relevance_logits(logits: np.ndarray) -> np.ndarray:
    """Each row's relevance logit: the only one, or positive - negative of a 2-logit model.

    Example:
        >>> relevance_logits(np.array([[0.5, 2.0]])).tolist()
        [1.5]
    """
    return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]


def pooled_output(output: Any, inputs: dict[str, Any], *, modes: tuple[str, ...]) -> Any:
    """The last hidden state pooled over the attention mask with ``modes`` (see :func:`pool`)."""
    return pool(output.last_hidden_state, inputs["attention_mask"], modes)


POOLING_MODES: tuple[str, ...] = ("cls", "mean", "max", "mean_sqrt_len_tokens", "lasttoken")
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pooling_modes(config: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Pooling modes of a sentence-transformers ``Pooling`` config (mean when there is none).

    Reads both the current ``pooling_mode`` key and the legacy ``pooling_mode_*_tokens``
    flags; several modes are concatenated, as sentence-transformers does.

    Raises:
        ValueError: A mode this package does not implement.

    Example:
        >>> pooling_modes({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
        ('cls',)
        >>> pooling_modes(None)
        ('mean',)
    """
    config = config or {}
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(name for key, name in _LEGACY_POOLING.items() if config.get(key))
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    modes = modes or ("mean",)
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown:
        raise ValueError(f"unsupported pooling mode(s) {unknown}; supported: {POOLING_MODES}")
    return modes


def st_modules(modules: list[Mapping[str, Any]] | None) -> dict[str, str]:
    """Module kind -> folder of a sentence-transformers ``modules.json``.

    Raises:
        ValueError: A module other than Transformer, Pooling and Normalize (a Dense
            projection, ...), which a plain ``AutoModel`` would silently skip.

    Example:
        >>> st_modules([{"path": "", "type": "sentence_transformers.models.Transformer"},
        ...             {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
        {'Transformer': '', 'Pooling': '1_Pooling'}
    """
    found: dict[str, str] = {}
    for module in modules or []:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in {"Transformer", "Pooling", "Normalize"}:
            raise ValueError(
                f"sentence-transformers module {module.get('type')!r} is not supported "
                "(only Transformer, Pooling and Normalize)"
            )
        found[kind] = str(module.get("path", ""))
    return found


def pool(hidden: torch.Tensor, mask: torch.Tensor, modes: tuple[str, ...]) -> torch.Tensor:
    """Pooled float32 sentence embeddings ``[batch, dim * len(modes)]``.

    Args:
        hidden: Token embeddings ``[batch, seq, dim]`` (any float dtype).
        mask: Attention mask ``[batch, seq]`` (right or left padded).
        modes: From ``pooling_modes``.
    """
    torch = require("torch", EXTRA)
    hidden = hidden.float()  # accumulate in float32 whatever the weights' dtype
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    parts = []
    for mode in modes:
        if mode == "cls":
            first = mask.to(torch.int64).argmax(dim=1)  # first real token (left padding too)
            parts.append(hidden[torch.arange(hidden.shape[0]), first])
        elif mode == "max":
            parts.append(hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values)
        elif mode == "lasttoken":
            seq = mask.shape[1]
            last = seq - 1 - mask.flip(1).to(torch.int64).argmax(dim=1)
            parts.append(hidden[torch.arange(hidden.shape[0]), last])
        else:
            total = (hidden * weights).sum(dim=1)
            count = weights.sum(dim=1).clamp(min=1e-9)
            parts.append(total / (count if mode == "mean" else count.sqrt()))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
