"""The documentation stays true: links resolve, inputs named exist, the HTTP API page matches
openapi.yaml, the examples output what the docs tell users to read, one version everywhere."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from async_jobs_tools import release, tfdocs

from .test_openapi import DOCUMENT as OPENAPI
from .test_openapi import resolve

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
EXAMPLE_READMES = sorted((ROOT / "examples").glob("*/README.md"))
MODULE_READMES = sorted((ROOT / "modules").glob("*/README.md"))
ALL_DOCS = [README, *DOCS, *EXAMPLE_READMES, *MODULE_READMES]

# Link targets another part of the project writes; each is allowed only while it is missing.
PENDING_TARGETS: dict[str, str] = {}

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$", re.MULTILINE)
NAMED_ANCHOR = re.compile(r'<a name="([^"]+)"')


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The text outside fenced code blocks (links in code are not links)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = prose(path.read_text())
    found: set[str] = set(NAMED_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for _, title in HEADING.findall(text):
        base = slug(title)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def links(path: Path) -> Iterator[str]:
    for match in LINK.finditer(prose(path.read_text())):
        target = match.group(1) or match.group(2)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            yield target


@pytest.mark.parametrize("doc", ALL_DOCS, ids=relative)
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in links(doc):
        file_part, _, anchor = target.partition("#")
        resolved = (doc.parent / file_part).resolve() if file_part else doc
        if not resolved.exists():
            if relative(resolved) in PENDING_TARGETS:
                continue
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading or anchor #{anchor} in {relative(resolved)}")
        elif anchor and resolved.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
    assert not broken, f"{relative(doc)}: " + "; ".join(broken)


def test_pending_link_targets_are_still_missing() -> None:
    # an allowance ends with the file: once it exists, its links and anchors are checked
    assert not [t for t in PENDING_TARGETS if (ROOT / t).exists()], "drop them from PENDING_TARGETS"


def test_readme_is_at_most_300_lines() -> None:
    assert len(README.read_text().splitlines()) <= 300


def test_user_docs_narrate_no_single_run() -> None:
    # figures come from bench/results with their commit; user docs state facts, not one run
    narrated = []
    for doc in [README, *DOCS]:
        if doc.name == "performance.md":  # generated from bench/results, each figure with its commit
            continue
        for pattern in (r"\bone run\b", r"\bat `[0-9a-f]{7,40}`", r"\blast full run\b"):
            found = re.finditer(pattern, doc.read_text(), re.IGNORECASE)
            narrated += [f"{relative(doc)}: {m.group(0)}" for m in found]
    assert not narrated


# --- inputs named in the docs exist -------------------------------------------------------


def module_inputs(module_dir: Path) -> set[str]:
    return {name for name, _ in tfdocs.blocks((module_dir / "variables.tf").read_text(), "variable")}


META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}


def arguments_named(text: str) -> set[str]:
    """Module arguments a document names: top-level attributes of `module` blocks in code, and
    `` `name = value` `` spans in prose (the first part of a dotted name). The generated tables
    are variables.tf itself (their descriptions name attributes of an input's object)."""
    named: set[str] = set()
    text = re.sub(rf"{tfdocs.BEGIN}.*?{tfdocs.END}", "", text, flags=re.DOTALL)
    for block in re.finditer(r'^(\s*)module "[^"]+" \{\n(.*?)^\1\}', text, re.MULTILINE | re.DOTALL):
        indent = block.group(1) + "  "
        named |= set(re.findall(rf"^{indent}([a-z][a-z0-9_]*)\s*=", block.group(2), re.MULTILINE))
    for span in re.findall(r"`([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)\s*=[^`=][^`]*`", prose(text)):
        if "_" in span.split(".")[0] or "." in span:
            named.add(span.split(".")[0])
    return named - META_ARGUMENTS


def test_the_argument_finder_sees_both_forms() -> None:
    text = 'x\n```hcl\nmodule "jobs" {\n  source = "."\n  no_such_input = 1\n'
    text += "  worker = {\n    timeout = 1\n  }\n}\n```\n"
    text += "set `create_api_gateway_account = true` or `callbacks.allowed_hosts = []`, not `a == b`\n"
    assert arguments_named(text) == {"no_such_input", "worker", "create_api_gateway_account", "callbacks"}


@pytest.mark.parametrize("doc", ALL_DOCS, ids=relative)
def test_every_module_argument_named_is_an_input(doc: Path) -> None:
    # a submodule's README names its own inputs and the root's (which chooses it); the rest the root's
    known = module_inputs(ROOT) | (module_inputs(doc.parent) if doc in MODULE_READMES else set())
    unknown = arguments_named(doc.read_text()) - known
    assert not unknown, f"{relative(doc)} names inputs no variables.tf declares"


def module_block(path: Path) -> str:
    text = path.read_text()
    start = text.index('module "async_jobs" {')
    return text[start : text.index("\n}\n", start) + 2]


def test_complete_sets_every_input_or_says_why_not() -> None:
    block = module_block(ROOT / "examples" / "complete" / "main.tf")
    set_here = set(re.findall(r"^  ([a-z][a-z0-9_]*)\s*=", block, re.MULTILINE))
    comments = "\n".join(re.findall(r"#.*", block))
    silent = sorted(
        name for name in module_inputs(ROOT) - set_here if not re.search(rf"\b{name}\b", comments)
    )
    assert not silent, f"examples/complete neither sets nor explains {silent}"


EXAMPLE_OUTPUTS = sorted((ROOT / "examples").glob("*/outputs.tf"))


@pytest.mark.parametrize("example", EXAMPLE_OUTPUTS, ids=lambda p: p.parent.name)
def test_every_example_outputs_api_url(example: Path) -> None:
    outputs = dict(tfdocs.blocks(example.read_text(), "output"))
    assert "module.async_jobs.api_url" in outputs["api_url"]


# --- the inputs and outputs tables are grouped as variables.tf and outputs.tf are ----------


@pytest.mark.parametrize(
    ("source", "kind", "prefix"), [("variables.tf", "variable", "input"), ("outputs.tf", "output", "output")]
)
def test_readme_tables_group_as_the_banners(source: str, kind: str, prefix: str) -> None:
    expected: list[tuple[str | None, str]] = [
        (group, name) for group, name, _ in tfdocs.grouped_blocks((ROOT / source).read_text(), kind)
    ]
    assert len({group for group, _ in expected}) > 1
    table = README.read_text().split(tfdocs.BEGIN)[1].split(tfdocs.END)[0]
    group: str | None = None
    shown = []
    for line in table.splitlines():
        if line.startswith("| **"):
            group = line.split("**")[1]
        elif found := re.match(rf'\| <a name="{prefix}_(\w+)">', line):
            shown.append((group, found.group(1)))
    assert shown == expected


# --- the HTTP API page matches openapi.yaml ------------------------------------------------

METHODS = ("get", "put", "post", "delete", "patch")


def openapi_routes() -> dict[str, dict[str, set[str]]]:
    routes = {}
    for path, item in OPENAPI["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            parameters = [resolve(p) for p in item.get("parameters", []) + operation.get("parameters", [])]
            responses = {code: resolve(r) for code, r in operation["responses"].items()}
            routes[f"{method.upper()} {path}"] = {
                "request headers": {p["name"] for p in parameters if p["in"] == "header"},
                "query": {p["name"] for p in parameters if p["in"] == "query"},
                "statuses": set(responses),
                "response headers": {h for r in responses.values() for h in r.get("headers", {})},
            }
    return routes


def documented_routes(text: str) -> dict[str, dict[str, set[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("| `")]
    header = next(line for line in text.splitlines() if line.startswith("| route |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    routes = {}
    for line in lines:
        cells = dict(zip(columns, (c.strip() for c in line.strip("|").split("|")), strict=True))
        code = {column: set(re.findall(r"`([^`]+)`", cell)) for column, cell in cells.items()}
        routes[cells["route"].strip("`")] = {
            "request headers": code["request headers"],
            "query": code["query"],
            "statuses": set(re.findall(r"`(\d{3})`", cells["success"] + cells["errors"])),
            "response headers": {h.split(":")[0] for h in code["response headers"]},
        }
    return routes


def test_http_api_page_documents_exactly_the_openapi_routes() -> None:
    documented = documented_routes((ROOT / "docs" / "http-api.md").read_text())
    expected = openapi_routes()
    assert sorted(documented) == sorted(expected)
    for route, facts in expected.items():
        for kind, names in facts.items():
            assert documented[route][kind] == names, f"{route} {kind}"


def test_the_route_table_reader_sees_a_difference() -> None:
    text = (ROOT / "docs" / "http-api.md").read_text().replace("`415`, `422`", "`415`")
    assert documented_routes(text)["POST /jobs"]["statuses"] != openapi_routes()["POST /jobs"]["statuses"]


# --- one version --------------------------------------------------------------------------


def test_version_lives_in_one_place() -> None:
    version = (ROOT / "VERSION").read_text().strip()
    assert release.SEMVER.match(version)
    # the changelog's newest release, the release script and the Python distribution read it
    assert release.changelog_versions()[0] == version
    assert release.version() == version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"file": "VERSION"}


def test_changelog_keeps_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text
    released = release.changelog_versions()
    numbers = [tuple(int(p) for p in v.split("-")[0].split(".")) for v in released]
    assert numbers == sorted(numbers, reverse=True)
    for version in ["Unreleased", *released]:
        assert re.search(rf"^\[{re.escape(version)}\]: \S+", text, re.MULTILINE), f"no link for {version}"


def test_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
