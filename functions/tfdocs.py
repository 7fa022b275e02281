"""Keep the README's inputs/outputs tables true to variables.tf and outputs.tf.

Writes terraform-docs style tables between `<!-- BEGIN_TF_DOCS -->` and
`<!-- END_TF_DOCS -->` (`make docs`) in the root README and in the README of every submodule
under `modules/` that has the markers; `--check` fails when one is stale (`make lint`).
Each `####` banner of variables.tf / outputs.tf (a `# Title` line between two lines of `#`)
starts a group: a bold row of the table names it, so the tables read by concern.
It reads the top-level attributes of `variable` and `output` blocks, which is all the tables
need, so it runs with Python alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"
OPENERS, CLOSERS = "{([", "})]"
# Settings whose variables default to null take their default from here (main.tf).
CONTRACT = Path("functions/shared/async_jobs/contract.json")


BANNER = re.compile(r"^#{4,}\n# (.+)\n#{4,}$", re.MULTILINE)


def blocks(text: str, kind: str) -> Iterator[tuple[str, str]]:
    """(label, body) of every top-level `kind "label" { ... }` block."""
    for _, label, body in grouped_blocks(text, kind):
        yield label, body


def grouped_blocks(text: str, kind: str) -> Iterator[tuple[str | None, str, str]]:
    """(group, label, body) of every top-level block; the group is the banner above it, if any."""
    banners = [(m.start(), m.group(1).strip()) for m in BANNER.finditer(text)]
    for match in re.finditer(rf'^{kind} "([^"]+)" \{{\n', text, re.MULTILINE):
        depth, i = 1, match.end()
        while depth:
            depth += (text[i] == "{") - (text[i] == "}")
            i += 1
        group = next((title for start, title in reversed(banners) if start < match.start()), None)
        yield group, match.group(1), text[match.end() : i - 1]


def group_row(group: str | None, previous: str | None, columns: int) -> list[str]:
    """The bold row that opens a group, when `group` starts a new one."""
    if group is None or group == previous:
        return []
    return ["| **" + group + "** " + "| " * (columns - 1) + "|"]


def nesting(line: str) -> int:
    return sum(line.count(c) for c in OPENERS) - sum(line.count(c) for c in CLOSERS)


def attributes(body: str) -> dict[str, str]:
    """Top-level `key = value` attributes of a block body, values as HCL text."""
    found: dict[str, str] = {}
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        match = re.match(r"^  (\w+)\s*=\s*(.*)$", lines[i])
        if match:
            value = [match.group(2)]
            depth = nesting(match.group(2))
            while depth > 0:
                i += 1
                value.append(lines[i][2:])
                depth += nesting(lines[i])
            found[match.group(1)] = "\n".join(value)
        i += 1
    return found


def text_of(hcl: str) -> str:
    value = json.loads(hcl) if hcl.startswith('"') else hcl
    return str(value).replace("|", "\\|").replace("\n", " ")


def code_cell(hcl: str) -> str:
    hcl = hcl.replace("|", "\\|")
    return f"<pre>{hcl.replace(chr(10), '<br/>')}</pre>" if "\n" in hcl else f"`{hcl}`"


def requirements(root: Path) -> list[str]:
    """The Terraform and provider versions of the module's versions.tf (docs/real-account.md
    says which feature needs which)."""
    text = (root / "versions.tf").read_text()
    rows = ["### Requirements", "", "| Name | Version |", "|------|---------|"]
    terraform = re.search(r'required_version\s*=\s*"([^"]+)"', text)
    if terraform:
        rows.append(f"| terraform | `{terraform.group(1)}` |")
    for name, constraint in re.findall(r'(\w+)\s*=\s*\{[^}]*?version\s*=\s*"([^"]+)"', text, flags=re.S):
        rows.append(f"| {name} | `{constraint}` |")
    return [*rows, ""]


def tables(root: Path) -> str:
    rows = [
        *requirements(root),
        "### Inputs",
        "",
        "| Name | Description | Type | Default | Required |",
        "|------|-------------|------|---------|:--------:|",
    ]
    contract = root / CONTRACT
    settings = json.loads(contract.read_text())["settings"] if contract.is_file() else {}
    previous: str | None = None
    for group, name, body in grouped_blocks((root / "variables.tf").read_text(), "variable"):
        rows += group_row(group, previous, 5)
        previous = group
        attrs = attributes(body)
        description = text_of(attrs.get("description", '""'))
        kind = code_cell(attrs.get("type", "any"))
        default = attrs.get("default")
        shown, required = ("n/a", "yes") if default is None else (code_cell(default), "no")
        if default == "null" and name in settings:
            # a setting's default lives in the contract; null takes it
            shown = f"`null` (contract: `{json.dumps(settings[name]['default'])}`)"
        rows.append(
            f'| <a name="input_{name}"></a> [{name}](#input_{name}) '
            f"| {description} | {kind} | {shown} | {required} |"
        )
    rows += ["", "### Outputs", "", "| Name | Description |", "|------|-------------|"]
    previous = None
    for group, name, body in grouped_blocks((root / "outputs.tf").read_text(), "output"):
        rows += group_row(group, previous, 2)
        previous = group
        description = text_of(attributes(body).get("description", '""'))
        rows.append(f'| <a name="output_{name}"></a> [{name}](#output_{name}) | {description} |')
    return "\n".join(rows)


def render(readme: str, root: Path) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return f"{readme[:start]}\n{tables(root)}\n{readme[end:]}"


def documented_modules(root: Path) -> list[Path]:
    """The root module and every submodule whose README carries the table markers."""
    submodules = sorted(p.parent for p in (root / "modules").glob("*/README.md") if BEGIN in p.read_text())
    return [root, *submodules]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a README is stale")
    parser.add_argument("--module", type=Path, help="one module directory (default: root and modules/*)")
    args = parser.parse_args(argv)
    stale = 0
    for module in [args.module] if args.module else documented_modules(ROOT):
        readme_path = module / "README.md"
        readme = readme_path.read_text()
        updated = render(readme, module)
        if updated == readme:
            continue
        if args.check:
            print(f"{readme_path}: inputs/outputs tables are stale: run `make docs`", file=sys.stderr)
            stale += 1
        else:
            readme_path.write_text(updated)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
