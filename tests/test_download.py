"""The converters of the official files, on small files written here (no network)."""
import gzip
import json
import zipfile

import pytest

from spectran_tutorial.data import load_dataset
from spectran_tutorial.download import (convert_amazon, convert_movielens_100k, convert_movielens_1m,
                                        download, read_amazon_metadata, split_movie_title)
from spectran_tutorial.errors import DataError


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def test_amazon_reviews_and_python_literal_metadata(tmp_path):
    reviews = [json.dumps({"reviewerID": f"U{u}", "asin": f"A{i}", "unixReviewTime": 100 * u + (5 - i)})
               for u in range(3) for i in range(3)]
    write_gz(tmp_path / "reviews.json.gz", reviews)
    meta = ["{'asin': 'A0', 'title': 'Lip  balm', 'brand': 'Acme', 'categories': [['Beauty', 'Lips']]}",
            "{'asin': 'A1', 'title': \"Kid's shampoo\", 'price': 3.5}",
            "{'asin': 'A9', 'title': 'never bought'}"]
    write_gz(tmp_path / "meta.json.gz", meta)
    folder = convert_amazon(tmp_path / "reviews.json.gz", tmp_path / "meta.json.gz", tmp_path / "out" / "am", k=3)
    data = load_dataset("am", tmp_path / "out")
    assert data.num_users == 3 and data.num_items == 3
    assert [data.item_ids[i - 1] for i in data.sequences[0]] == ["A2", "A1", "A0"]   # by review time
    items = {r["item_id"]: r for r in map(json.loads, (folder / "items.jsonl").read_text().splitlines())}
    assert items["A0"] == {"item_id": "A0", "title": "Lip balm", "brand": "Acme", "categories": "Beauty, Lips"}
    assert items["A1"]["price"] == "3.5" and items["A2"]["title"] == "" and "A9" not in items


def test_malformed_metadata_line_is_named(tmp_path):
    write_gz(tmp_path / "meta.json.gz", ["{'asin': 'A0'}", "{'asin': 'A1', oops}"])
    with pytest.raises(DataError, match=r"meta.json.gz:2: not a metadata record"):
        read_amazon_metadata(tmp_path / "meta.json.gz")


def test_movielens_100k(tmp_path):
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ml-100k/u.data", "1\t10\t5\t300\n1\t20\t4\t100\n1\t30\t3\t200\n")
        z.writestr("ml-100k/u.genre", "unknown|0\nAction|1\nComedy|2\n\n")
        z.writestr("ml-100k/u.item", "10|Toy Story (1995)|x|y|z|0|0|1\n20|Heat (1995)|x|y|z|0|1|0\n"
                                     "30|Untitled|x|y|z|1|0|0\n")
    convert_movielens_100k(archive, tmp_path / "d" / "ml-100k")
    data = load_dataset("ml-100k", tmp_path / "d")
    assert [data.item_ids[i - 1] for i in data.sequences[0]] == ["20", "30", "10"]
    assert data.items[0] == {"item_id": "10", "title": "Toy Story", "year": "1995", "genres": "Comedy"}


def test_movielens_1m(tmp_path):
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ml-1m/ratings.dat", "1::5::5::30\n1::6::3::10\n1::7::4::20\n")
        z.writestr("ml-1m/movies.dat", "5::Heat (1995)::Action|Crime\n6::Fargo (1996)::Drama\n7::X (2000)::Comedy\n")
    convert_movielens_1m(archive, tmp_path / "d" / "ml-1m")
    data = load_dataset("ml-1m", tmp_path / "d")
    assert data.sequences[0].tolist() == [2, 3, 1]
    assert data.items[0]["genres"] == "Action Crime"


def test_split_movie_title():
    assert split_movie_title("Stupids, The (1996)") == ("Stupids, The", "1996")
    assert split_movie_title("No year") == ("No year", "")


def test_unknown_dataset_is_refused_before_any_download(tmp_path):
    with pytest.raises(DataError, match="unknown dataset"):
        download("amazon-shoes", tmp_path)


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on loopback serving tmp_path/served."""
    import functools
    import http.server
    import threading
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_fetch_falls_back_to_the_next_mirror_and_checks_the_hash(local_server, tmp_path):
    from spectran_tutorial.download import fetch
    served, url = local_server
    (served / "file.txt").write_text("version one")
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = "http://127.0.0.1:9/"                   # nothing listens on the discard port
    path = fetch("file.txt", (dead, url), cache)
    assert path.read_text() == "version one"
    assert "file.txt" in json.loads((cache / "checksums.json").read_text())
    path.unlink()                                  # lost from the cache, and changed upstream:
    (served / "file.txt").write_text("tampered")
    with pytest.raises(DataError, match="could not download file.txt"):
        fetch("file.txt", (url,), cache)
