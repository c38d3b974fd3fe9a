"""The README's Redis key table of the status service matches services/status/keys.py."""

from __future__ import annotations

import re

from devsupport.procs import REPO_ROOT
from services.status import keys

ROW = re.compile(r"^\|\s*`{1,2}(?P<key>\{sb:status:v1\}:\w+)`{1,2}\s*\|\s*(?P<type>[A-Z]+)\s*\|", re.MULTILINE)


def key_types(text: str) -> dict[str, str]:
    return {m.group("key"): m.group("type") for m in ROW.finditer(text)}


def test_the_readme_lists_every_status_key_with_the_type_keys_py_documents() -> None:
    documented = key_types(keys.__doc__ or "")
    assert set(documented) == set(keys.ALL_KEYS)
    assert key_types((REPO_ROOT / "README.md").read_text()) == documented
