"""Point the book at the project's public repository: ``python scripts/set_repo_url.py URL``.

The repository URL appears in ``_config.yml`` (launch buttons, repository link), in the install
cell of every chapter (``pip install git+URL`` on Colab) and in the README. This rewrites every
occurrence of the current URL (read from ``_config.yml``) and leaves everything else untouched.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def current_url() -> str:
    m = re.search(r"^repository:\s*\n\s+url:\s*(\S+)", (ROOT / "_config.yml").read_text(), re.M)
    if not m:
        raise SystemExit("_config.yml has no repository.url")
    return m.group(1)


def files() -> list[Path]:
    return [ROOT / "_config.yml", ROOT / "README.md", ROOT / "pyproject.toml",
            *sorted((ROOT / "book").glob("*.ipynb"))]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not re.fullmatch(r"https://\S+[^/]", argv[0]):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    old, new = current_url(), argv[0]
    for path in files():
        text = path.read_text(encoding="utf-8")
        if old in text:
            path.write_text(text.replace(old, new), encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: {text.count(old)} replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
