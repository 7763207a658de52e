"""The beets plugin, through a real `beet` in a child process on a temporary beets library.

Each library has its own config folder (BEETSDIR), database and music folder under tmp_path.
The child starts through a bootstrap that imports conftest, so the hand-set test model's
architecture is registered there too; beets then finds the plugin as `plugins: mgctag`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

beets_library = pytest.importorskip("beets.library", reason="beets is not installed (pip install -e '.[test]')")

import audiogen  # noqa: E402
from conftest import make_band_model  # noqa: E402

from mgctag import tags  # noqa: E402

LOW, HIGH = 150.0, 5000.0
TESTS = Path(__file__).resolve().parent
BOOT = (
    "import sys; sys.path.insert(0, {tests!r}); import conftest; "
    "from beets.ui import main; sys.argv[0] = 'beet'; main(sys.argv[1:])"
)


class Beets:
    """One temporary beets library: `beet(...)` runs a command in it, `items()` reads its database."""

    def __init__(self, root: Path, model: Path, **extra: str):
        self.config_dir, self.music, self.db = root / "beetsdir", root / "music", root / "library.db"
        self.config_dir.mkdir()
        self.music.mkdir()
        mgctag = {"model": str(model), "workers": "0", **extra}
        (self.config_dir / "config.yaml").write_text(
            f"directory: {self.music}\nlibrary: {self.db}\nplugins: mgctag\n"
            "import:\n  copy: no\n  write: yes\n  quiet: yes\n  log:\n"
            "mgctag:\n" + "".join(f"  {k}: {v}\n" for k, v in mgctag.items()),
            encoding="utf-8",
        )

    def beet(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "BEETSDIR": str(self.config_dir), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(
            [sys.executable, "-c", BOOT.format(tests=str(TESTS)), *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            errors="backslashreplace",
            timeout=300,
        )
        proc.output = proc.stdout + proc.stderr
        if check:
            assert proc.returncode == 0, proc.output
        return proc

    def edit(self, title: str, **fields) -> None:
        lib = beets_library.Library(str(self.db), str(self.music))
        try:
            (item,) = lib.items(f"title:{title}")
            item.update(fields)
            item.store()
        finally:
            lib._close()

    def items(self) -> dict[str, dict]:
        """{title: the fields the plugin sets}, straight from the database."""
        lib = beets_library.Library(str(self.db), str(self.music))
        try:
            return {
                i.title: {
                    "genres": list(i.genres),
                    "confidence": _float(i.get("mgctag_confidence")),
                    "model": i.get("mgctag_model"),
                    "path": Path(os.fsdecode(i.path)),
                }
                for i in lib.items()
            }
        finally:
            lib._close()


def _float(value) -> float | None:
    """Flexible attributes come back as text outside beets' process (which has the plugin's types)."""
    return None if value is None else float(value)


def file_genres(path: Path) -> tuple[str, ...]:
    return tags.read(path).genres


def make_source(folder: Path, names_freqs: dict[str, float], genres: dict[str, str] | None = None) -> dict[str, Path]:
    """Tone files titled by their names (beets names its copies from the title); some with a
    genre another tool set."""
    import mutagen

    folder.mkdir()
    paths = {}
    for i, (name, freq) in enumerate(names_freqs.items()):
        paths[name] = p = audiogen.make(folder / name, seconds=2.5, freq=freq, seed=i)
        f = mutagen.File(p, easy=True)
        if f.tags is None:
            f.add_tags()
        f["title"] = [name]
        if name in (genres or {}):
            f["genre"] = [genres[name]]
        f.save()
    return paths


def test_beet_mgctag_tags_a_library_keeps_existing_genres_and_goes_on_past_a_broken_file(tmp_path, band_model):
    lib = Beets(tmp_path, band_model)
    src = make_source(
        tmp_path / "src",
        {"a.flac": LOW, "b.mp3": HIGH, "c.flac": LOW, "d.flac": LOW, "e.mp3": HIGH},
        genres={"c.flac": "Polka"},
    )
    lib.beet("import", "-A", tmp_path / "src")
    assert sorted(lib.items()) == ["a.flac", "b.mp3", "c.flac", "d.flac", "e.mp3"]
    src["d.flac"].write_bytes(os.urandom(src["d.flac"].stat().st_size))  # broken after the import
    src["e.mp3"].unlink()  # gone after the import

    # --pretend shows the changes and changes nothing, in the database or the files
    r = lib.beet("mgctag", "--pretend")
    assert "Low" in r.stdout and "High" in r.stdout, r.output
    items = lib.items()
    assert items["a.flac"]["genres"] == [] and items["a.flac"]["model"] is None
    assert file_genres(src["a.flac"]) == () and file_genres(src["b.mp3"]) == ()

    # the run: database and files hold the genre; Polka is kept; the broken and the missing file
    # are logged and the run goes on
    r = lib.beet("mgctag")
    items = lib.items()
    assert items["a.flac"]["genres"] == ["Low"] and items["b.mp3"]["genres"] == ["High"]
    assert items["a.flac"]["model"] == "band" and 0.5 < items["a.flac"]["confidence"] <= 1.0
    assert file_genres(src["a.flac"]) == ("Low",) and file_genres(src["b.mp3"]) == ("High",)
    assert items["c.flac"]["genres"] == ["Polka"] and file_genres(src["c.flac"]) == ("Polka",)
    assert items["d.flac"]["genres"] == [] and items["d.flac"]["model"] is None
    lines = r.output.splitlines()
    assert any("d.flac" in line and ("corrupt" in line or "not an audio file" in line) for line in lines), r.output
    assert any("e.mp3" in line and "file not found" in line for line in lines), r.output
    assert "2 tagged" in r.output and "1 kept" in r.output and "2 errors" in r.output, r.output

    # a genre the user set after mgctag is the user's; --force replaces it, and -W keeps the files as they are
    lib.edit("a.flac", genres=["Jazz"])  # as `beet modify genres=Jazz` does
    r = lib.beet("mgctag")
    assert lib.items()["a.flac"]["genres"] == ["Jazz"] and "1 unchanged" in r.output, r.output
    lib.beet("mgctag", "--force", "--nowrite")
    items = lib.items()
    assert items["a.flac"]["genres"] == ["Low"] and items["c.flac"]["genres"] == ["Low"]
    assert file_genres(src["c.flac"]) == ("Polka",)


def test_auto_tags_during_import_and_writes_the_library_copy(tmp_path):
    # top_k 2, but the second genre is below the model's own minimum confidence: only one is set
    model = make_band_model(tmp_path / "band.safetensors", defaults={"min_confidence": 0.3})
    lib = Beets(tmp_path, model, auto="yes", top_k="2")
    cfg = lib.config_dir / "config.yaml"
    cfg.write_text(cfg.read_text().replace("copy: no", "copy: yes"))
    src = make_source(
        tmp_path / "src", {"low.flac": LOW, "high.mp3": HIGH, "own.flac": HIGH}, genres={"own.flac": "Polka"}
    )
    lib.beet("import", "-A", tmp_path / "src")
    items = lib.items()
    assert items["low.flac"]["genres"] == ["Low"] and items["high.mp3"]["genres"] == ["High"]
    assert items["own.flac"]["genres"] == ["Polka"]
    for name, genre in (("low.flac", "Low"), ("high.mp3", "High")):
        copy = items[name]["path"]
        assert lib.music in copy.parents and file_genres(copy) == (genre,)
        assert file_genres(src[name]) == ()  # the source the library copied is untouched


@pytest.fixture
def plugin_with(tmp_path, monkeypatch):
    """A plugin instance in this process, on beets' defaults plus the given `mgctag:` section."""
    from beets import config

    from beetsplug.mgctag import MgctagPlugin

    monkeypatch.setenv("BEETSDIR", str(tmp_path / "beetsdir"))  # never the user's own config
    monkeypatch.chdir(tmp_path)

    def make(**section):
        config.clear()
        config.read(user=False)
        config["mgctag"].set(section)
        return MgctagPlugin()

    yield make
    config.clear()
    config.read(user=False)


def test_config_keys_pass_to_scan_options_by_name(plugin_with, tmp_path):
    (tmp_path / "map.txt").write_text("High: Treble\n")
    (tmp_path / "w").mkdir()
    o = plugin_with(
        model="crnn+musicnn",
        top_k=2,
        min_confidence=0.4,
        segments=5,
        vote="majority",
        device="cpu",
        batch_size=8,
        genre_map="map.txt",
        genres=["Rock", "Jazz"],
    ).scan_options()
    assert (o.model, o.top_k, o.min_confidence, o.segments, o.vote, o.device, o.batch_size, o.genres) == (
        "crnn+musicnn",
        2,
        0.4,
        5,
        "majority",
        "cpu",
        8,
        "Rock,Jazz",
    )
    assert plugin_with(genres="common", min_confidence=None).scan_options().genres == "common"
    assert o.genre_map.table == {"high": "Treble"}
    assert o.write_tags is False and o.keep_existing is False and o.state is None  # mgctag never writes here
    assert plugin_with(model="w/band.safetensors").scan_options().model == str(tmp_path / "w" / "band.safetensors")
    assert (
        plugin_with(model="w/a.safetensors+crnn+/abs/b.safetensors").scan_options().model
        == f"{tmp_path / 'w' / 'a.safetensors'}+crnn+/abs/b.safetensors"
    )
    defaults = plugin_with().scan_options()
    assert defaults.model is None and defaults.top_k == 1 and defaults.genre_map.table == {}
    assert defaults.min_confidence is None  # the scan's default: the model's own
    assert defaults.segments is None and plugin_with(segments="auto").scan_options().segments is None  # until sure


@pytest.mark.parametrize(
    "section, message",
    [
        ({"topk": 2}, "unknown option 'topk'"),
        ({"write_tags": True}, "unknown option 'write_tags'"),  # beets decides writing, not mgctag
        ({"top_k": "two"}, "top_k must be a whole number"),
        ({"min_confidence": "high"}, "min_confidence must be a number"),
        ({"genre_map": "missing.txt"}, "cannot read genre map"),
        ({"vote": 3}, "vote must be text"),
    ],
)
def test_a_bad_config_value_is_a_clear_error(plugin_with, section, message):
    from beets.ui import UserError

    with pytest.raises(UserError, match=message):
        plugin_with(**section).scan_options()


def test_a_beets_album_is_decided_as_one_and_gets_the_genre_too(tmp_path, band_model):
    from test_albums import LOW as LOW_MIX
    from test_albums import WEAK_HIGH, track

    lib = Beets(tmp_path, band_model)
    src = tmp_path / "src" / "Ann" / "A"
    for i, mix in enumerate((LOW_MIX, LOW_MIX, WEAK_HIGH)):
        p = track(src / f"{i}.flac", mix, album="A", album_artist="Ann", artist="Ann", seed=i)
        f = __import__("mutagen").File(p, easy=True)
        f["title"] = [f"t{i}"]
        f.save()
    lib.beet("import", "-A", tmp_path / "src" / "Ann" / "A")
    lib.beet("mgctag")
    items = lib.items()
    assert {tuple(items[f"t{i}"]["genres"]) for i in range(3)} == {("Low",)}, items
    assert {file_genres(src / f"{i}.flac") for i in range(3)} == {("Low",)}
    library = beets_library.Library(str(lib.db), str(lib.music))
    try:
        (album,) = library.albums()
        assert list(album.genres) == ["Low"]
    finally:
        library._close()


def test_pretend_names_an_item_without_artist_or_title_by_its_path(tmp_path, band_model):
    lib = Beets(tmp_path, band_model)
    (tmp_path / "src").mkdir()
    p = audiogen.make(tmp_path / "src" / "untitled.flac", seconds=2.5, freq=LOW)
    lib.beet("import", "-A", tmp_path / "src")
    r = lib.beet("mgctag", "-p")
    assert " -  - " not in r.stdout and f"{p}" in r.stdout and "Low" in r.stdout, r.output
