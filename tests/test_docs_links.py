"""Every relative Markdown link of the README, docs/ and the sweeps README leads to a file or folder of this
repository: none is broken, none leaves the checkout (the docs must read the same in a fresh clone), and
none is an absolute path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "experiments" / "sweeps" / "README.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)  # fenced code: not Markdown links
CODE = re.compile(r"`[^`\n]*`")  # inline code
INLINE = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target "title")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)  # [label]: target
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:


def links(text: str) -> list[str]:
    """The targets of ``text``'s inline and reference links and images, outside code."""
    text = CODE.sub("", FENCE.sub("", text))
    return INLINE.findall(text) + REFERENCE.findall(text)


def problems(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of ``page`` that is absolute, leaves ``root`` or names nothing that exists."""
    found = []
    for target in links(page.read_text()):
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        if path.startswith("/"):
            found.append(f"{target}: an absolute path")
            continue
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(root.resolve()):
            found.append(f"{target}: outside the repository")
        elif not resolved.exists():
            found.append(f"{target}: no such file")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page):
    assert page.is_file()
    assert problems(page) == []


def test_the_readme_links_down_only_and_is_a_short_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 6 * 1024  # 6 KB
    assert not [t for t in links(text) if t.startswith("../")]
    assert "make demo" in text and "make test" in text and "make test-fast" in text


def test_broken_outside_and_absolute_links_are_found(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "docs" / "there.md").write_text("x")
    page = repo / "docs" / "page.md"
    page.write_text("[ok](there.md#a) [web](https://arxiv.org/abs/1812.11446) [anchor](#b) ![img](missing.png)\n"
                    "[up](../../elsewhere.md) [abs](/etc/hosts)\n`[code](nope.md)`\n```\n[fenced](nope.md)\n```\n"
                    "[ref]: gone.md\n")
    assert problems(page, repo) == ["missing.png: no such file", "../../elsewhere.md: outside the repository",
                                    "/etc/hosts: an absolute path", "gone.md: no such file"]
