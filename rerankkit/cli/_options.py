"""What the ``rerankkit`` subcommands share: the one-line error, and options made from models.

A command whose settings are a pydantic model (``rerankkit train``: :class:`TrainConfig`;
``rerankkit serve``: :class:`ServeSettings`) gets its options from the model's fields with
:func:`add_model_options` (flag ``--kebab-case``, default, help from the field's docstring,
choices, on/off flags) and builds the model from what was typed with :func:`model_from_args`,
so each default, range and help text is written once, in the model.

Why argparse and not pydantic-settings' own command line: pydantic-settings splits list values
on commas and JSON-parses them, which breaks reranker spec strings such as ``fusion:a,b`` or
``cohere:m?api_key="k"``; argparse hands each value over as typed, and pydantic converts it.

Example:
    >>> from pydantic import BaseModel, Field
    >>> class Options(BaseModel):
    ...     top_n: int = Field(3, ge=1)
    >>> parser = argparse.ArgumentParser(prog="demo")
    >>> add_model_options(parser, Options)
    >>> model_from_args(Options, parser.parse_args(["--top-n", "5"]))
    Options(top_n=5)
    >>> model_from_args(Options, parser.parse_args(["--top-n", "0"]))
    Traceback (most recent call last):
    rerankkit.cli._options.CliError: argument --top-n: input should be greater than or equal to 1, got 0
"""  # noqa: E501 (the real message)

from __future__ import annotations

import argparse
import types
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from rerankkit.errors import RerankkitError, SpecError

if TYPE_CHECKING:
    from rerankkit._specs import RerankerSpec

Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")


class CliError(RerankkitError, ValueError):
    """A user error reported as one line (exit status 2)."""


class Options(BaseModel):
    """The base of a command's own options model: each field's docstring is its help."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def flag(name: str) -> str:
    """The command-line flag of a field or keyword name.

    Example:
        >>> flag("eval_top_n")
        '--eval-top-n'
    """
    return "--" + name.replace("_", "-")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (for the options that no model declares)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def argparse_type(
    check: Callable[[Any], T], convert: Callable[[str], Any] = str
) -> Callable[[str], T]:
    """An argparse type from one of rerankkit's argument checks (the rule stays written once,
    in :mod:`rerankkit._validation`): its ``ValueError`` becomes argparse's usage error.

    Example:
        >>> from rerankkit._validation import check_query
        >>> argparse_type(check_query)("  ")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: query must be a non-empty string
    """

    def parse(text: str) -> T:
        try:
            return check(convert(text))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def checked_spec(text: str) -> RerankerSpec:
    """Parse a reranker spec given on the command line and check its options, loading
    nothing, so a typo fails before minutes of work.

    Raises:
        CliError: A bad spec or option, naming ``--reranker``.
        MissingExtraError: The kind needs an extra that is not installed.
    """
    from rerankkit._specs import check_spec

    try:
        return check_spec(text)
    except SpecError as error:
        raise CliError(f"argument --reranker: {error}") from None


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``| None`` and without ``Annotated[...]`` metadata."""
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _help(field: FieldInfo) -> str:
    text = field.description or ""
    default = field.default
    if default not in (None, (), PydanticUndefined):  # nothing to show for these
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        text += f" (default: {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


def add_model_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    *,
    exclude: Collection[str] = (),
) -> None:
    """Add one option per field of ``model`` (except ``exclude``).

    A bool field is an on/off pair (``--bf16/--no-bf16``), a ``Literal`` field gets its
    choices, ``tuple[X, X]`` takes two values and ``tuple[X, ...]`` is repeatable. Nothing is
    converted or checked here: :func:`model_from_args` lets the model do both. An option not
    given is absent from the namespace, so the model's default applies.
    """
    for name, field in model.model_fields.items():
        if name in exclude:
            continue
        annotation = _bare(field.annotation)
        origin, arguments = get_origin(annotation), get_args(annotation)
        options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        if annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif origin is Literal:
            options["choices"] = arguments
        elif origin is tuple and arguments[-1] is Ellipsis:
            options["action"] = "append"
        elif origin is tuple:
            options["nargs"] = len(arguments)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "metavar" in extra:
            options["metavar"] = tuple(extra["metavar"])  # type: ignore[arg-type]
        parser.add_argument(flag(name), required=field.is_required(), help=_help(field), **options)


def _one_line(error: ValidationError) -> str:
    """The first error of ``error`` as one line, naming the flag of the field it is about."""
    first = error.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] != "value_error" and isinstance(first["input"], (str, int, float)):
        message = f"{message[0].lower()}{message[1:]}, got {first['input']}"
    return f"argument {flag(str(first['loc'][0]))}: {message}" if first["loc"] else message


def model_from_args(model: type[Model], args: argparse.Namespace, **values: Any) -> Model:
    """Build ``model`` from the options of ``args`` that were given, plus ``values``.

    The strings typed are converted by the model (lax mode: ``"3"`` is an int there).

    Raises:
        CliError: The model refused a value, as one line naming its ``--flag``.
    """
    given = {name: getattr(args, name) for name in model.model_fields if hasattr(args, name)}
    try:
        return model.model_validate({**given, **values}, strict=False)
    except ValidationError as error:
        raise CliError(_one_line(error)) from None
