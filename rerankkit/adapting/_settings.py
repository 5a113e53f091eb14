"""The settings every adapter holds, declared once (:class:`RerankSettings`), and the reranker
as a pydantic field: built from a spec string or a model name, written back as its spec string.

Example:
    >>> from rerankkit.testing import KeywordReranker
    >>> settings = RerankSettings(reranker="keyword:", top_n=2)
    >>> settings.reranker, settings.model_dump()["reranker"], settings.on_empty_query
    (KeywordReranker(), 'keyword:', 'unranked')
    >>> RerankSettings(reranker=KeywordReranker(), on_reranker_error="fallback")
    Traceback (most recent call last):
    pydantic_core._pydantic_core.ValidationError: 1 validation error for RerankSettings
    on_reranker_error
      Value error, on_reranker_error='fallback' was renamed 'unranked' ...
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from rerankkit._base import Reranker, check_relevance_cut
from rerankkit._ordering import RelevanceCut
from rerankkit._renamed import refuse_renamed_value
from rerankkit._specs import (
    build_reranker,
    loads_a_model,
    parse_spec,
    reranker_spec,
    shared,
    shared_key,
    spec_kinds,
)
from rerankkit._validation import (
    check_choice,
    check_int,
    check_min_relevance,
    check_score_threshold,
    check_top_n,
)
from rerankkit.compose._cascade import CascadeReranker
from rerankkit.context import ContextPruner
from rerankkit.llm._factory import LLMMethod
from rerankkit.llm._factory import llm_reranker as build_llm_reranker
from rerankkit.llm._protocol import Completion, CompletionLLM

_TOP_N_NAME: ContextVar[str] = ContextVar("top_n_name", default="top_n")
"""The caller's name for ``top_n``, for error messages (set by ``from_stages``; a pydantic
validation context would not reach a subclass with its own ``__init__``)."""


def as_reranker(reranker: Reranker | str | os.PathLike[str], *, share: bool = True) -> Reranker:
    """A ``Reranker`` as given, built from a spec string, or a ``CrossEncoderReranker`` built
    from a model name or path (loaded once, here).

    A ``str`` whose text before the first ``:`` is a spec kind (``"cross-encoder:PATH?..."``,
    ``"keyword:"``, as ``model_dump`` / ``to_dict`` write it) is a spec; so is ``KIND:...``
    that is no folder, so a misspelt kind lists the kinds rather than failing a hub lookup.

    One loaded model per process: with ``share`` (the default) a string names the reranker
    already built from the same spec (kind, model, options: device and dtype included) while
    anything still holds it, so two compressors, or a compressor and a postprocessor, given
    the same string share one model in memory (``rerankkit._specs.shared``). ``share=False``,
    or passing a ``Reranker`` you built yourself, gives a private copy. Remote services
    (``cohere:``, ``tei:``, ...) load no model and are never shared: each reads its key from
    the environment when it is built.

    Raises:
        TypeError: ``reranker`` is neither.
        ValueError: An empty string, or a spec with an unknown kind (the known ones listed).

    Example:
        >>> as_reranker(42)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        TypeError: reranker must be a rerankkit.Reranker or ... (str), got int
    """
    if isinstance(reranker, Reranker):
        return reranker
    if isinstance(reranker, os.PathLike):
        reranker = os.fspath(reranker)
    if not isinstance(reranker, str):
        raise TypeError(
            "reranker must be a rerankkit.Reranker or a cross-encoder model name or path (str), "
            f"got {type(reranker).__name__}"
        )
    if not reranker.strip():
        raise ValueError("reranker model name or path must be a non-empty string")
    kind, colon, _ = reranker.partition(":")
    # A hub id never holds ":"; C:\models has a one-letter drive, not a kind.
    if kind in spec_kinds() or (colon and len(kind) > 1 and not os.path.exists(reranker)):
        spec = parse_spec(reranker)
        build = functools.partial(build_reranker, spec)
        return shared(shared_key(spec), build) if share and loads_a_model(spec) else build()
    from rerankkit import CrossEncoderReranker  # imports torch: only when asked for

    model: Callable[[], Reranker] = functools.partial(CrossEncoderReranker, reranker)
    return shared(("cross-encoder", reranker, ()), model) if share else model()


def reranker_name(reranker: Reranker) -> str:
    """A short readable name for traces and events: the spec label (kind, model folder name,
    options) when the reranker has a spec form, else its class name.

    Example:
        >>> from rerankkit.testing import FixedScoreReranker, KeywordReranker
        >>> reranker_name(KeywordReranker()), reranker_name(FixedScoreReranker([0.5]))
        ('keyword', 'FixedScoreReranker')
    """
    try:
        return parse_spec(reranker_spec(reranker)).label
    except (TypeError, ValueError):
        return type(reranker).__name__


def _spec_string(reranker: Reranker) -> str:
    try:
        return reranker_spec(reranker)
    except TypeError as error:
        raise TypeError(
            f"reranker cannot be serialized: {error}. Only a reranker given as a spec string or "
            "model name (or built by a spec kind's class) has a dict/JSON form; pickle the "
            "adapter instead"
        ) from None


def _pointwise(reranker: Reranker) -> Reranker:
    if not reranker.pointwise:
        raise TypeError(
            f"reranker must be pointwise (score each pair alone), got {type(reranker).__name__}"
            ", whose scores depend on the other documents"
        )
    return reranker


RerankerField = Annotated[
    Reranker, BeforeValidator(as_reranker), PlainSerializer(_spec_string, return_type=str)
]
"""A ``Reranker``, also given as a spec string or a cross-encoder name / path (see
:func:`as_reranker`); serialized as its spec string, or a TypeError saying ``reranker cannot
be serialized`` when it has none (an LLM reranker, a cascade)."""

PointwiseRerankerField = Annotated[RerankerField, AfterValidator(_pointwise)]
"""A :data:`RerankerField` whose reranker is pointwise (scores each pair alone)."""


def _top_n(value: Any) -> int | None:
    # A wrong type is a ValueError here, so pydantic reports ``top_n="3"`` as it reports
    # ``top_n=0``: one ValidationError naming the setting, as its own fields do.
    return check_top_n(value, _TOP_N_NAME.get(), wrong_type=ValueError)  # the caller's name


def _score_threshold(value: Any) -> float | None:
    return check_score_threshold(value, wrong_type=ValueError)


def _one_of(*choices: str, renamed: Mapping[str, str] | None = None) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> Any:
        refuse_renamed_value(value, str(info.field_name), renamed or {})
        return check_choice(value, str(info.field_name), choices)

    return BeforeValidator(check)


ReorderMode = Literal["none", "lost_in_the_middle"]
"""Final ordering of the kept results: ``"none"`` keeps best-first; ``"lost_in_the_middle"``
puts the best at both edges of the context and the weakest in the middle (for long prompts)."""

UnrankedField = Annotated[
    Literal["unranked", "raise"],
    _one_of("unranked", "raise", renamed={"retrieval_order": "unranked", "fallback": "unranked"}),
]
"""``"unranked"``: carry on without reranking (the documents in retrieval order, cut to
``top_n``, marked ``metadata["reranked"] = False``); ``"raise"``: raise. The old spellings
``"retrieval_order"`` and ``"fallback"`` are refused, naming ``"unranked"``."""


def _prune(value: Any) -> bool | ContextPruner:
    if isinstance(value, (bool, ContextPruner)):
        return value
    raise TypeError(
        f"prune must be True, False or a rerankkit.ContextPruner, got {type(value).__name__}"
    )


def _prune_spec(value: bool | ContextPruner) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(
        "prune cannot be serialized: a ContextPruner has no dict/JSON form; use prune=True "
        "(the reranker's own pruner) or pickle the adapter instead"
    )


PruneField = Annotated[
    bool | ContextPruner, BeforeValidator(_prune), PlainSerializer(_prune_spec, return_type=bool)
]
"""``False``, ``True`` (a :class:`rerankkit.ContextPruner` over the adapter's own reranker) or a
``ContextPruner``; serialized as a bool, or a TypeError for a ``ContextPruner``."""


_SETTINGS = (
    "top_n",
    "score_threshold",
    "reorder",
    "on_empty_query",
    "on_reranker_error",
    "min_relevance",
    "on_no_relevant",
    "prune",
    "budget_tokens",
)


class RerankSettings(BaseModel):
    """The settings of a rerank adapter, each checked once, where it enters (construction or
    assignment), by its field; the rerank call (:func:`rerankkit.adapting.rerank_items`) then
    trusts them.

    Both shipped adapters are this model and their framework's base class at once
    (``class RerankKitCompressor(RerankSettings, BaseDocumentCompressor)``); an adapter for
    another framework subclasses it the same way, or holds an instance. Pickles and
    round-trips through ``model_dump`` / ``model_validate`` (the reranker as its spec string).
    A bad setting fails before a model is loaded by name.

    Raises:
        TypeError: A bad ``reranker`` (not a reranker, a spec or a model name).
        pydantic.ValidationError: A bad setting, of the wrong type (``top_n="3"``) or value
            (``top_n=0``) alike (a ``ValueError`` naming the setting), or an unknown keyword
            argument.

    Example:
        >>> from rerankkit.adapting import rerank_items
        >>> settings = RerankSettings(reranker="keyword:", top_n=1)
        >>> outcome = rerank_items(settings, "cat", ["a dog", "a cat"], text=str)
        >>> [(kept.item, kept.metadata) for kept in outcome.kept]
        [('a cat', {'relevance_score': 1.0})]
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )

    top_n: Annotated[int | None, BeforeValidator(_top_n)] = 3
    """Keep at most this many documents; ``None`` keeps all."""

    score_threshold: Annotated[float | None, BeforeValidator(_score_threshold)] = None
    """Keep only documents with ``relevance_score >= score_threshold`` (before ``top_n``);
    not NaN."""

    reorder: Annotated[ReorderMode, _one_of("none", "lost_in_the_middle")] = "none"
    """Final order of the kept documents: ``"none"`` (best first) or ``"lost_in_the_middle"``
    (best at both ends of the context, weakest in the middle)."""

    on_empty_query: UnrankedField = "unranked"
    """An empty or whitespace query: ``"unranked"`` returns the first ``top_n`` documents in
    retrieval order, marked ``metadata["reranked"] = False`` (one warning); ``"raise"``
    raises ValueError."""

    on_reranker_error: UnrankedField = "unranked"
    """The reranker raised (any ``Exception``): ``"unranked"`` returns the first ``top_n``
    documents in retrieval order, marked ``metadata["reranked"] = False`` and
    ``metadata["rerank_error"] = "<ExceptionType>: <message>"`` (one warning); ``"raise"``
    raises it."""

    min_relevance: Annotated[float | None, BeforeValidator(check_min_relevance)] = None
    """The adaptive cut: keep only documents with P(relevant) >= ``min_relevance`` (in
    [0, 1]), then ``top_n`` as a ceiling. Needs calibrated scores
    (``reranker.calibrated_scores``: a ``CalibratedReranker``, spec ``...?calibration=PATH``);
    refused otherwise (a sigmoid cross-encoder too), saying how to calibrate."""

    on_no_relevant: Annotated[Literal["empty", "best"], _one_of("empty", "best")] = "empty"
    """No document reaches ``min_relevance``: ``"empty"`` returns no documents (abstain; the
    call's outcome and trace say ``abstained``); ``"best"`` keeps the best one, marked
    ``metadata["below_min_relevance"] = True``."""

    prune: PruneField = False
    """After reranking, prune the kept documents to the sentences that answer the query:
    ``True`` scores sentences with the adapter's reranker (it must be pointwise), or give a
    :class:`rerankkit.ContextPruner`. New documents carry the pruned text and
    ``metadata["kept_spans"]`` (``[start, end]`` offsets into the original text),
    ``["original_tokens"]`` and ``["kept_tokens"]``; a document with nothing kept is left out.
    If pruning raises, the reranked documents come back unpruned, marked ``pruned: False`` and
    ``prune_error`` (one warning)."""

    budget_tokens: Annotated[
        int | None,
        BeforeValidator(lambda v: check_int(v, "budget_tokens", minimum=1, optional=True)),
    ] = None
    """With ``prune``: total tokens of all returned documents together (the best sentences
    across documents first); ``None``: the pruner's adaptive default."""

    reranker: RerankerField
    """The backend: a ``rerankkit.Reranker``, a spec string (``"cross-encoder:PATH"``) or a
    cross-encoder hub id / local folder (loaded once, as a ``CrossEncoderReranker``)."""

    @field_validator("reranker", mode="before")
    @classmethod
    def _settings_first(cls, reranker: Any, info: ValidationInfo) -> Any:
        # pydantic goes on after a field fails: loading a model by name would come next.
        if isinstance(reranker, Reranker) or all(name in info.data for name in _SETTINGS):
            return reranker
        raise ValueError("not loaded while another setting is invalid")

    @model_validator(mode="after")
    def _probabilities_for_min_relevance(self) -> Self:
        check_relevance_cut(self.reranker, self.min_relevance, self.on_no_relevant)
        return self

    @property
    def relevance_cut(self) -> RelevanceCut | None:
        """The checked adaptive cut handed to the reranker (``None`` without one)."""
        if self.min_relevance is None:
            return None
        return RelevanceCut(self.min_relevance, self.on_no_relevant)

    @model_validator(mode="after")
    def _pruning(self) -> Self:
        if self.budget_tokens is not None and self.prune is False:
            raise ValueError("budget_tokens needs prune=True or prune=ContextPruner(...)")
        if self.prune is True and not self.reranker.pointwise:
            raise ValueError(
                f"prune=True scores sentences with the reranker, which must be pointwise; "
                f"{type(self.reranker).__name__} is not: pass prune=ContextPruner(a pointwise "
                "reranker)"
            )
        return self

    def pruner(self) -> ContextPruner | None:
        """The pruner in use: ``None`` without ``prune``.

        Example:
            >>> RerankSettings(reranker="keyword:", prune=True).pruner()
            ContextPruner(KeywordReranker(), context_sentences=0, margin=0.25, marker=' … ')
        """
        if self.prune is False:
            return None
        return ContextPruner(self.reranker) if self.prune is True else self.prune

    @classmethod
    def from_rerankkit_llm(
        cls,
        llm: CompletionLLM | Callable[[str], str | Completion],
        *,
        method: LLMMethod = "listwise",
        **options: Any,
    ) -> Self:
        """Settings whose reranker ranks with ``llm`` (the core of the adapters' ``from_llm``).

        Args:
            llm: A rerankkit LLM (``complete(prompt)``), e.g. an adapter's
                ``as_rerankkit_llm(model)``.
            method: ``"listwise"``, ``"pointwise"`` / ``"yes_no"`` or ``"rating"`` (see
                :func:`rerankkit.llm_reranker`).
            **options: The fields of ``cls`` (``top_n``, ...); the others go to the LLM
                reranker (``window_size``, prompts, ``max_concurrency``, ...).

        Raises:
            TypeError, ValueError: An unknown ``method``, a bad field or LLM-reranker option.

        Example:
            >>> from rerankkit.testing import ScriptedLLM
            >>> settings = RerankSettings.from_rerankkit_llm(ScriptedLLM(["[2] > [1]"]), top_n=1)
            >>> settings.top_n, type(settings.reranker).__name__
            (1, 'LLMListwiseReranker')
        """
        fields = {name: options.pop(name) for name in list(options) if name in cls.model_fields}
        return cls(reranker=build_llm_reranker(llm, method, **options), **fields)

    @classmethod
    def from_stages(
        cls,
        reranker: Reranker | str | os.PathLike[str],
        *,
        rerank_top_n: Any = 10,
        llm_reranker: Reranker | CompletionLLM | None = None,
        llm_top_n: Any = 3,
        **fields: Any,
    ) -> Self:
        """The reranking half of a hybrid stack as one adapter.

        ``reranker`` keeps ``rerank_top_n``. With ``llm_reranker`` (a ``Reranker``, or an LLM
        that then ranks listwise), the reranker is a :class:`rerankkit.CascadeReranker`: the LLM
        reranks those survivors (results carry ``stage_scores``) and ``top_n`` is ``llm_top_n``.
        Errors name the arguments as passed here (``rerank_top_n``, ``llm_top_n``), each checked
        once; ``rerank_top_n`` before a model is loaded by name (``llm_top_n`` with the other
        fields, once the stages are built).

        Args:
            reranker: A ``Reranker``, a spec string or a cross-encoder name / path.
            rerank_top_n: Documents the first reranker keeps (``None`` keeps all).
            llm_reranker: Optional last stage.
            llm_top_n: Documents the LLM stage keeps (ignored without ``llm_reranker``).
            **fields: The other fields of ``cls`` (``score_threshold``, ``reorder``, ...).

        Example:
            >>> from rerankkit.testing import KeywordReranker
            >>> settings = RerankSettings.from_stages("keyword:", llm_reranker=KeywordReranker())
            >>> type(settings.reranker).__name__, settings.top_n
            ('CascadeReranker', 3)
            >>> RerankSettings.from_stages("keyword:", rerank_top_n=0)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            pydantic_core._pydantic_core.ValidationError: 2 validation errors for RerankSettings
            top_n
              Value error, rerank_top_n must be >= 1, got 0 ...
            reranker
              Value error, not loaded while another setting is invalid ...
        """
        stage = _llm_stage(llm_reranker)
        if stage is None:
            values = {"top_n": rerank_top_n, "reranker": reranker}
            top_n_name = "rerank_top_n"
        else:
            first_top_n = _stage_top_n(rerank_top_n)  # before a model loads
            first = as_reranker(reranker)
            if fields.get("prune") is True and first.pointwise:  # an LLM cannot score sentences
                fields = {**fields, "prune": ContextPruner(first)}
            # The LLM stage ranks every survivor; the adapter's top_n (llm_top_n) keeps the best.
            stages = [(first, first_top_n), (stage, None)]
            values = {"top_n": llm_top_n, "reranker": CascadeReranker._of_checked(stages)}
            top_n_name = "llm_top_n"
        token = _TOP_N_NAME.set(top_n_name)
        try:
            return cls(**fields, **values)
        finally:
            _TOP_N_NAME.reset(token)


def _stage_top_n(value: Any) -> int | None:
    """``rerank_top_n`` of a cascade, refused as the field refuses ``top_n`` (one
    ``ValidationError`` for a wrong type or value)."""
    try:
        return check_top_n(value, "rerank_top_n", wrong_type=ValueError)
    except ValueError as error:
        line = {"type": "value_error", "loc": ("top_n",), "input": value, "ctx": {"error": error}}
        raise ValidationError.from_exception_data("RerankSettings", [line]) from None  # type: ignore[list-item]


def _llm_stage(llm_reranker: Any) -> Reranker | None:
    if llm_reranker is None or isinstance(llm_reranker, Reranker):
        return llm_reranker
    if isinstance(llm_reranker, CompletionLLM):
        return build_llm_reranker(llm_reranker, "listwise")
    raise TypeError(
        "llm_reranker must be a rerankkit Reranker or an LLM (complete(prompt)), got "
        f"{type(llm_reranker).__name__}"
    )
