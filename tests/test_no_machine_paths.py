"""Tracked results and chapters carry no path of the machine they were made on (a data folder,
a home or temporary folder, a virtual environment), in rows, notebook outputs or metadata."""
import re
import subprocess

from conftest import REPO

# a folder under one of these roots, a Windows home, or an installed package's folder
ROOTS = ("work", "home", "root", "Users", "tmp", "var/folders")
MACHINE_PATH = re.compile(r"/(?:" + "|".join(ROOTS) + r")/|[A-Za-z]:\\\\Users|site[-_]packages")


def tracked(*patterns):
    out = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / p for p in out.stdout.split()]


def test_results_and_chapters_name_no_folder_of_a_machine():
    files = tracked("results/*.jsonl", "results/*.txt", "book/*.ipynb", "book/*.md", "tests/pinned/*")
    assert files
    found = [f"{f.relative_to(REPO)}:{n}: {m.group(0)}" for f in files
             for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
             for m in [MACHINE_PATH.search(line)] if m]
    assert not found, "machine-specific paths: " + "; ".join(found[:5])
