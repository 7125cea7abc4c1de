"""Download the official public files of a dataset and convert them to the project's layout.

Needs internet; files are fetched with ``pooch`` (mirrors tried in order, a progress bar, a local
cache) and converted into ``<data dir>/<name>/interactions.tsv`` and ``items.jsonl``.

Checksums: the sha256 of every downloaded file is recorded in ``<data dir>/checksums.json`` the
first time it is fetched and verified whenever the file is fetched again; a hash listed in
``KNOWN_SHA256`` is verified from the first download on.
"""
from __future__ import annotations

import ast
import gzip
import hashlib
import json
import re
import zipfile
from pathlib import Path

from .data import DATASETS, ENV_VAR, default_cache_dir, k_core
from .errors import DataError

AMAZON_MIRRORS = ("https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/",
                  "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/")
MOVIELENS_MIRRORS = ("https://files.grouplens.org/datasets/movielens/",)
AMAZON_CATEGORIES = {"amazon-beauty": "Beauty", "amazon-toys": "Toys_and_Games",
                     "amazon-office": "Office_Products", "amazon-clothing": "Clothing_Shoes_and_Jewelry"}
KNOWN_SHA256: dict[str, str] = {}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(filename: str, mirrors: tuple[str, ...], cache: Path) -> Path:
    """Download ``filename`` from the first mirror that answers; verify or record its checksum."""
    import pooch
    registry_path = cache / "checksums.json"
    registry = json.loads(registry_path.read_text()) if registry_path.is_file() else {}
    known = KNOWN_SHA256.get(filename) or registry.get(filename)
    errors = []
    for base in mirrors:
        try:
            path = Path(pooch.retrieve(base + filename, known_hash=f"sha256:{known}" if known else None,
                                       fname=filename, path=cache / "raw", progressbar=True))
            break
        except Exception as e:     # a dead mirror or a checksum mismatch: try the next mirror
            errors.append(f"{base}: {e}")
    else:
        raise DataError(f"could not download {filename}: " + "; ".join(errors))
    registry[filename] = sha256(path)
    registry_path.write_text(json.dumps(registry, indent=2, sort_keys=True))
    return path


def write_dataset(folder: Path, users: dict[str, list], items: dict[str, dict] | None,
                  with_timestamp: bool) -> None:
    """Write ``users`` ({user: [(timestamp, item), ...]}) and item records in the layout."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id\titem_id\torder" + ("\ttimestamp" if with_timestamp else "")]
    for user in sorted(users):
        for order, (ts, item) in enumerate(sorted(users[user], key=lambda e: e[0])):
            lines.append(f"{user}\t{item}\t{order}" + (f"\t{ts}" if with_timestamp else ""))
    (folder / "interactions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if items is not None:
        kept = {i for events in users.values() for _, i in events}
        with (folder / "items.jsonl").open("w", encoding="utf-8") as f:
            for item_id in sorted(kept):
                f.write(json.dumps({"item_id": item_id, **items.get(item_id, {"title": ""})}) + "\n")


def numbered_lines(path: Path):
    """``(line number, line)`` for the non-empty lines of a text file, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                yield n, line


def read_amazon_reviews(path: Path) -> dict[str, list]:
    """{user: [(unix time, asin), ...]} from a (gzipped) Amazon 2014 reviews file of JSON lines.
    Python's sort is stable, so same-time reviews keep their file order."""
    users: dict[str, list] = {}
    for n, line in numbered_lines(path):
        try:
            r = json.loads(line)
            users.setdefault(r["reviewerID"], []).append((int(r["unixReviewTime"]), r["asin"]))
        except (json.JSONDecodeError, KeyError, ValueError) as e:
            raise DataError(f"{path}:{n}: not an Amazon review record ({e})") from None
    return users


def read_amazon_metadata(path: Path, wanted: set[str] | None = None) -> dict[str, dict]:
    """Item records from an Amazon 2014 metadata file, whose lines are Python literals (not JSON)."""
    items = {}
    for n, line in numbered_lines(path):
        try:
            r = ast.literal_eval(line)
        except (ValueError, SyntaxError) as e:
            raise DataError(f"{path}:{n}: not a metadata record ({e.__class__.__name__})") from None
        asin = r.get("asin")
        if not asin or (wanted is not None and asin not in wanted):
            continue
        cats = r.get("categories") or []
        rec = {"title": " ".join(str(r.get("title", "")).split()),
               "brand": str(r.get("brand", "")).strip(),
               "categories": ", ".join(cats[0]) if cats and isinstance(cats[0], list) else "",
               "description": " ".join(str(r.get("description", "")).split()),
               "price": str(r.get("price", ""))}
        items[asin] = {k: v for k, v in rec.items() if v}
    return items


def convert_amazon(reviews: Path, metadata: Path | None, folder: Path, k: int = 5) -> Path:
    users = k_core(read_amazon_reviews(reviews), k)
    wanted = {i for events in users.values() for _, i in events}
    items = read_amazon_metadata(metadata, wanted) if metadata else None
    write_dataset(folder, users, items, with_timestamp=True)
    return folder


def split_movie_title(raw: str) -> tuple[str, str]:
    """'Toy Story (1995)' -> ('Toy Story', '1995')."""
    m = re.match(r"^(.*?)\s*\((\d{4})\)\s*$", raw.strip())
    return (m.group(1), m.group(2)) if m else (raw.strip(), "")


def read_ratings(text: str, sep: str) -> dict[str, list]:
    """{user: [(unix time, item), ...]} from MovieLens rating lines ``user sep item sep rating sep time``."""
    users: dict[str, list] = {}
    for line in text.splitlines():
        if line.strip():
            u, i, _, ts = line.split(sep)
            users.setdefault(u, []).append((int(ts), i))
    return users


def convert_movielens_100k(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as z:
        ratings = z.read("ml-100k/u.data").decode("latin-1")
        genre_names = [ln.split("|")[0] for ln in z.read("ml-100k/u.genre").decode("latin-1").splitlines() if ln]
        movies = z.read("ml-100k/u.item").decode("latin-1")
    users = read_ratings(ratings, "\t")
    items = {}
    for line in movies.splitlines():
        if not line.strip():
            continue
        f = line.split("|")
        title, year = split_movie_title(f[1])
        genres = " ".join(g for g, flag in zip(genre_names, f[5:]) if flag == "1")
        items[f[0]] = {"title": title, "year": year, "genres": genres}
    write_dataset(folder, users, items, with_timestamp=True)
    return folder


def convert_movielens_1m(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as z:
        ratings = z.read("ml-1m/ratings.dat").decode("latin-1")
        movies = z.read("ml-1m/movies.dat").decode("latin-1")
    users = read_ratings(ratings, "::")
    items = {}
    for line in movies.splitlines():
        if line.strip():
            i, raw_title, genres = line.split("::")
            title, year = split_movie_title(raw_title)
            items[i] = {"title": title, "year": year, "genres": genres.replace("|", " ")}
    write_dataset(folder, users, items, with_timestamp=True)
    return folder


def download(name: str, data_dir: str | Path | None = None) -> Path:
    """Download and convert ``name`` into ``data_dir`` (default: $SPECTRAN_DATA, else the cache)."""
    import os
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    root = Path(data_dir or os.environ.get(ENV_VAR) or default_cache_dir())
    root.mkdir(parents=True, exist_ok=True)
    folder = root / name
    if name in AMAZON_CATEGORIES:
        cat = AMAZON_CATEGORIES[name]
        reviews = fetch(f"reviews_{cat}_5.json.gz", AMAZON_MIRRORS, root)
        meta = fetch(f"meta_{cat}.json.gz", AMAZON_MIRRORS, root)
        return convert_amazon(reviews, meta, folder)
    archive = fetch(f"{name}.zip", MOVIELENS_MIRRORS, root)
    return (convert_movielens_100k if name == "ml-100k" else convert_movielens_1m)(archive, folder)
