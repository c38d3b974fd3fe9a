"""The README's Kubernetes section keeps up with the manifests: how each Deployment scales, and
what the production overlay expects to find outside the cluster's namespace."""

from __future__ import annotations

from devsupport.procs import REPO_ROOT
from tests.k8s.test_manifests import DEPLOYMENTS


def table_after(heading: str) -> list[list[str]]:
    """The cells of each body row of the first Markdown table after ``heading`` in the README."""
    text = (REPO_ROOT / "README.md").read_text()
    assert heading in text, heading
    lines = text[text.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:  # past the header and its |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_readme_says_how_every_deployment_scales() -> None:
    described = {name.strip() for row in table_after("**Scaling each service.**") for name in row[0].split(",")}
    assert described == set(DEPLOYMENTS)


def test_the_readme_names_what_production_expects_outside() -> None:
    dependencies = {row[0] for row in table_after("**What the production overlay expects**")}
    assert {"Redis", "PostgreSQL", "S3", "OTLP collector"} <= dependencies
