"""The shipped templates and the sandbox they render in."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import InvalidArgument
from services.notify.domain.templates import TemplateLibrary

LIBRARY = TemplateLibrary()


def test_the_issues_templates_are_shipped() -> None:
    assert {"welcome", "reminder", "operator_alert"} <= set(LIBRARY.names())


@pytest.mark.parametrize("name", LIBRARY.names())
@pytest.mark.parametrize("text_as_html", [False, True])
def test_every_shipped_template_renders_with_its_variables_and_escapes_them_in_html(
    name: str, text_as_html: bool
) -> None:
    data = {variable: f"<{variable}>" for variable in LIBRARY.variables(name)}
    rendered = LIBRARY.render(name, data, text_as_html=text_as_html)
    assert rendered.text
    for variable in data:
        assert f"<{variable}>" not in rendered.html
        if text_as_html:
            assert f"<{variable}>" not in rendered.text


def test_a_template_that_reaches_past_its_data_is_refused_not_run(tmp_path: Path) -> None:
    (tmp_path / "evil.j2").write_text("{% block text %}{{ name.__class__.__mro__[1].__subclasses__() }}{% endblock %}")
    library = TemplateLibrary(tmp_path)
    with pytest.raises(InvalidArgument) as info:
        library.render("evil", {"name": "x"})
    assert info.value.field == "data"
    assert "cannot be rendered" in info.value.problem
