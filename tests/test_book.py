"""The book builds offline with warnings as errors (Jupyter Book 1.x, notebooks not re-executed:
their committed outputs are shown, and pytest --nbval checks that they still hold)."""
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))


@pytest.mark.slow
def test_book_builds_without_warnings(tmp_path):
    exe = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(exe), "build", "-W", "-n", "--keep-going", "--path-output", str(tmp_path), str(REPO)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    html = tmp_path / "_build" / "html" / "book"
    check_what_a_reader_sees(html)
    shutil.rmtree(tmp_path / "_build", ignore_errors=True)


class _Text(HTMLParser):
    """The visible text of a page (scripts and styles left out), and its tags."""

    def __init__(self):
        super().__init__()
        self.text, self.tags, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def read_page(path: Path) -> _Text:
    page = _Text()
    page.feed(path.read_text())
    page.text = "".join(page.text)
    return page


def check_what_a_reader_sees(html: Path) -> None:
    """Every page of the table of contents exists; tables are tables, figures are images, and no
    output shows a traceback, a warning or a figure's text repr."""
    toc = re.findall(r"file:\s*book/(\S+)", (REPO / "_toc.yml").read_text())
    for name in ["intro", *toc]:
        page = read_page(html / f"{name}.html")
        assert not re.search(r"^\s*\|.*\|\s*$", page.text, re.M), f"{name}: a Markdown table shown as text"
        assert "|---" not in page.text, f"{name}: a Markdown table shown as text"
        for bad in ("Traceback (most recent call last)", "Warning:", "<Figure size", "Error:"):
            assert bad not in page.text, f"{name}: {bad!r} in the page"
    assert read_page(html / "intro.html").tags.count("table") >= 2            # the verdict and the notation
    chapter6 = read_page(html / "06_experiments.html")
    assert chapter6.tags.count("table") >= 8 and chapter6.tags.count("img") >= 4
    for name in ("01_sequential_recommendation", "03_dimension_collapse", "05_spectral_position_encoding"):
        assert "img" in read_page(html / f"{name}.html").tags, f"{name}: its figures are missing"
    assert "class SpecTranTable" in read_page(html / "05_spectral_position_encoding.html").text


def test_every_chapter_installs_from_the_books_repository():
    """The Colab install cell of each chapter and the launch buttons name one repository."""
    from set_repo_url import current_url
    url = current_url()
    chapters = sorted((REPO / "book").glob("*.ipynb"))
    assert len(chapters) == 6
    for nb in chapters:
        assert f"git+{url}" in nb.read_text(), f"{nb.name}: its install cell does not use {url}"


def test_set_repo_url_rewrites_every_occurrence(tmp_path, monkeypatch):
    import set_repo_url
    for name in ("_config.yml", "README.md", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "book", tmp_path / "book", ignore=shutil.ignore_patterns("*.png", "_*"))
    monkeypatch.setattr(set_repo_url, "ROOT", tmp_path)
    old = set_repo_url.current_url()
    assert set_repo_url.main(["https://example.org/me/spectran"]) == 0
    assert set_repo_url.current_url() == "https://example.org/me/spectran"
    assert not any(old in p.read_text() for p in set_repo_url.files())
    assert set_repo_url.main(["not a url"]) == 2


@pytest.mark.slow
def test_chapter_6_runs_as_on_colab_without_the_results_folder(tmp_path, data_dir):
    """Chapter 6 executed in a folder with no ``results/`` beside it, as on Colab: the stored
    results are fetched from the repository (here a copy at a file:// address), one small cell is
    trained within a time budget and set beside the stored runs, and every assert passes."""
    import json
    import os
    mirror = tmp_path / "repository"
    (mirror / "raw" / "main").mkdir(parents=True)
    (mirror / "raw" / "main" / "results").symlink_to(REPO / "results")
    book = tmp_path / "book"
    book.mkdir()
    nb = json.loads((REPO / "book" / "06_experiments.ipynb").read_text())
    params = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c["metadata"].get("tags", []))
    asked = ('RUN = {"datasets": ["amazon-office"], "methods": ["id"], "seeds": [0]}\n'
             'RUN_MINUTES = 10\nPROFILE = "cpu-small"')        # what a reader sets, injected as papermill does
    nb["cells"].insert(params + 1, {"cell_type": "code", "execution_count": None, "metadata": {},
                                    "outputs": [], "source": asked})
    chapter = book / "06_experiments.ipynb"
    chapter.write_text(json.dumps(nb))
    env = {**os.environ, "SPECTRAN_REPOSITORY": mirror.as_uri(), "SPECTRAN_DATA": str(data_dir),
           "OMP_NUM_THREADS": "1"}
    env.pop("SPECTRAN_PROFILE", None)
    exe = Path(sys.executable).with_name("jupyter-execute")
    out = subprocess.run([str(exe), "--inplace", "--timeout=1200", chapter.name], cwd=book, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (book / "results" / "office-sasrec.jsonl").is_file() and not (tmp_path / "results").exists()
    outputs = json.dumps(json.loads(chapter.read_text())["cells"])
    assert "1 of 1 cells finished" in outputs
    assert (book / "runs" / "my-results.jsonl").is_file()
