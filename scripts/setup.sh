#!/usr/bin/env bash
# Create .venv with the package and everything the tests and the book need (idempotent).
# Torch is taken as the pinned CPU wheel through constraints.txt; nothing here needs a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# pip's notes about absent local package folders are filtered out; errors still stop the script
pip_install() {
  .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
[ -x .venv/bin/python ] || python3 -m venv .venv
pip_install --upgrade "pip>=24" "setuptools>=77"
pip_install -c constraints.txt -e ".[offline,test,book,ray]"
echo "$want" > "$stamp"
