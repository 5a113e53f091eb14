"""The README's Pipelines example runs as written and prints what its comment says (issue 10).

Only the hub id changes: the hub is unreachable in tests, so the example loads the shared copy
of the same MiniLM-L6 MS MARCO cross-encoder."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from conftest import ROOT, TRAINED_CE, requires_trained_ce

HUB_ID = '"cross-encoder/ms-marco-MiniLM-L6-v2"'


def pipelines_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Pipelines") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
@requires_trained_ce
def test_pipelines_example_runs_and_prints_its_comment() -> None:
    code = pipelines_example()
    assert code.count(HUB_ID) == 1
    expected = code.rstrip().splitlines()[-1].removeprefix("# ")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace(HUB_ID, repr(str(TRAINED_CE))), "README.md", "exec"), {})
    assert printed.getvalue().strip() == expected
