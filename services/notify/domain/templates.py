"""Named templates, rendered in Jinja2's sandbox.

A template is a file ``services/notify/templates/<name>.j2`` with up to three blocks:
``subject``, ``text`` and ``html``. ``text`` and ``subject`` are rendered as they are; ``html``
(email's HTML part) is rendered with autoescaping, and so is ``text`` when the channel reads it
as HTML (Telegram's HTML parse mode), so ``<b>{{ name }}</b>`` can never let a name inject markup.

Variables are strict: every variable a template uses must be in ``data``. The check runs at
``Send`` from the template's syntax tree, so a missing variable is refused with its name before
anything is queued, never discovered at delivery.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, meta
from jinja2.sandbox import SandboxedEnvironment

from runtime.errors import InvalidArgument

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
BLOCKS = ("subject", "text", "html")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateLibrary:
    """The templates of one directory; each is parsed once."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        loader = FileSystemLoader(directory)
        self._plain = SandboxedEnvironment(loader=loader, undefined=StrictUndefined, autoescape=False)
        self._escaped = SandboxedEnvironment(loader=loader, undefined=StrictUndefined, autoescape=True)
        self._directory = directory

    def names(self) -> list[str]:
        return sorted(p.stem for p in self._directory.glob("*.j2"))

    def variables(self, name: str) -> frozenset[str]:
        """Every variable the template reads."""
        return self._variables(self._file(name))

    def render(self, name: str, data: Mapping[str, str], *, text_as_html: bool = False) -> Rendered:
        """Render each block of ``name`` with ``data``; InvalidArgument naming what is wrong."""
        file = self._file(name)
        missing = sorted(self._variables(file) - set(data))
        if missing:
            raise InvalidArgument(
                f"data.{missing[0]}", f"template {name!r} needs variable {missing[0]!r}", details={"missing": missing}
            )
        try:
            plain = self._plain.get_template(file)
            escaped = self._escaped.get_template(file)
            return Rendered(
                subject=_block(plain, "subject", data).strip(),
                text=_block(escaped if text_as_html else plain, "text", data).strip(),
                html=_block(escaped, "html", data).strip(),
            )
        except TemplateError as exc:
            raise InvalidArgument("data", f"template {name!r} cannot be rendered: {exc.message}") from None

    def _file(self, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise InvalidArgument("template", f"{name!r} is not a template name")
        file = f"{name}.j2"
        try:
            self._plain.get_template(file)
        except TemplateNotFound:
            raise InvalidArgument("template", f"unknown template {name!r} (known: {', '.join(self.names())})") from None
        return file

    @cache  # noqa: B019 - one library per process, templates never change while it runs
    def _variables(self, file: str) -> frozenset[str]:
        source, _, _ = self._plain.loader.get_source(self._plain, file)  # type: ignore[union-attr]
        return frozenset(meta.find_undeclared_variables(self._plain.parse(source)))


def _block(template: object, block: str, data: Mapping[str, str]) -> str:
    render = template.blocks.get(block)  # type: ignore[attr-defined]
    if render is None:
        return ""
    context = template.new_context(dict(data))  # type: ignore[attr-defined]
    return "".join(render(context))
