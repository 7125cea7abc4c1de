"""The book builds offline with warnings as errors (Jupyter Book 1.x, notebooks not re-executed:
their committed outputs are shown, and pytest --nbval checks that they still hold)."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))


def test_book_builds_without_warnings(tmp_path):
    exe = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(exe), "build", "-W", "-n", "--keep-going", "--path-output", str(tmp_path), str(REPO)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    html = tmp_path / "_build" / "html" / "book"
    pages = sorted(p.name for p in html.glob("*.html"))
    assert "05_spectral_position_encoding.html" in pages and len(pages) >= 8
    assert "<img" in (html / "03_dimension_collapse.html").read_text()      # the plots are in the page
    shutil.rmtree(tmp_path / "_build", ignore_errors=True)


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
