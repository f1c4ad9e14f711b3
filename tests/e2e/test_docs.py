"""The front door and its pages: README stays within 200 lines, every relative link and anchor in
README.md and docs/*.md resolves, and every fenced block marked `runnable` runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (hyphens and spaces kept), spaces → -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a '#' in a code block is no heading
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_readme_is_a_short_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
    assert {p.name for p in PAGES} >= {"running.md", "spec.md", "statistics.md", "metrics.md", "reproductions.md",
                                       "extending.md", "changelog.md", "benchmark.md"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page):
    bad = []
    for target in LINK.findall(re.sub(r"```.*?```", "", page.read_text(), flags=re.S)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor}")
    assert not bad, f"{page.name}: " + "; ".join(bad)


def test_slug_is_githubs():
    assert slug("Offline use") == "offline-use"
    assert slug("The benchmark: `bench benchmark --suite core`") == "the-benchmark-bench-benchmark---suite-core"


BLOCKS = [(p, m.group(1)) for p in PAGES for m in re.finditer(r"```bash runnable\n(.*?)```", p.read_text(), re.S)]


@pytest.mark.parametrize("page,block", BLOCKS, ids=[f"{p.name}-{i}" for i, (p, _) in enumerate(BLOCKS)])
def test_runnable_blocks_run(page, block, tmp_path):
    bench = f"{sys.executable} -m bench.cli"
    script = "set -e\n" + re.sub(r"^bench ", bench + " ", block, flags=re.M)
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{page.name}: {block}\n{r.stderr[-1500:]}"
    assert BLOCKS  # the pages keep at least one runnable block
