"""beets plugin: `beet mgctag [QUERY]` listens to the matching items and sets their genres.

Enable it with `plugins: mgctag` in beets' config (after `pip install "mgctag[beets]"`). The
analysis is mgctag's library API, run once per command over all the items it has to hear (one
model load, batched inference, files matched back to items by path). mgctag itself never writes
a file here (`write_tags=False`): beets stores the genres and, when `import.write` / `-w` says
so, writes them with its own tag writer, as every beets command does.

Albums are beets' own: the items of one beets album with a title (not a compilation) are decided
together (mgctag.albums, as a scan decides a tagged album), and the album gets the genre too.

The `mgctag:` config section passes its keys to `mgctag.ScanOptions` by name (model, top_k,
min_confidence, segments, genre_map, device, ...); a new ScanOptions field is usable at once,
and needs an entry in CONVERTERS only when its YAML value is not the value ScanOptions takes.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections import Counter
from pathlib import Path

from beets import ui
from beets.dbcore import types
from beets.plugins import BeetsPlugin
from beets.util import displayable_path

# ScanOptions fields the plugin decides itself: mgctag never writes here, keeps no state of its
# own (beets' database is the state) and is handed files, not folders to walk.
OWNED = frozenset(
    {
        "write_tags",
        "keep_existing",
        "state",
        "rescan",
        "wait",
        "include_hidden",
        "follow_symlinks",
        "id3v23",
        "keep_mtime",
        "hardlinks",
    }
)
PLUGIN_KEYS = {"auto": False, "force": False}
FIELDS = ("genres", "mgctag_confidence", "mgctag_model", "mgctag_genres")


def _load_genre_map(view):
    from mgctag.genremap import GenreMap

    return GenreMap.load(view.as_filename()) if view.get() else GenreMap()


def _model(view):
    """A weights name (`crnn`) stays a name; a file name is taken relative to the config file that
    names it (beets' config folder), in each part of an ensemble (`A+B`) alike."""
    from mgctag.analyser import ENSEMBLE_SEP

    value = view.get()
    if value is None:
        return None
    _, source = view.first()
    base = os.path.dirname(source.filename) if source.filename else os.getcwd()

    def one(name: str) -> str:
        if name.endswith(".safetensors") or os.sep in name or name.startswith("~"):
            return os.path.join(base, os.path.expanduser(name))  # an absolute name stays as it is
        return name

    value = str(value)
    if os.path.exists(one(value)):  # a file whose name has a '+' is one model, as mgctag sees it
        return one(value)
    return ENSEMBLE_SEP.join(one(part) for part in value.split(ENSEMBLE_SEP))


def _genres(view):
    """A preset name or a comma list, as --genres takes it; a YAML list is a comma list too."""
    value = view.get()
    return ",".join(map(str, value)) if isinstance(value, list) else value


def _segments(view):
    """`auto` (listen until sure: ScanOptions' None) or a number of windows, as --segments takes it."""
    value = view.get()
    return None if value == "auto" else value


# option name -> how to read its config view, for options whose YAML value is not the value itself
CONVERTERS = {"genre_map": _load_genre_map, "model": _model, "genres": _genres, "segments": _segments}


class MgctagPlugin(BeetsPlugin):
    item_types = {"mgctag_confidence": types.NullFloat(3), "mgctag_model": types.STRING, "mgctag_genres": types.STRING}

    def __init__(self) -> None:
        super().__init__()
        self.config.add(PLUGIN_KEYS)
        self._unwritten: set[int] = set()  # items tagged during an import that the importer will not write
        self._lock = threading.Lock()
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.write_imported)

    # --- the command ------------------------------------------------------------------
    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("mgctag", help="set genres by listening to the audio (mgctag)")
        cmd.parser.add_option(
            "-p", "--pretend", action="store_true", default=False, help="show what would change, and change nothing"
        )
        cmd.parser.add_option(
            "-f", "--force", action="store_true", default=None, help="also replace genres that mgctag did not set"
        )
        cmd.parser.add_option(
            "-w",
            "--write",
            action="store_true",
            default=None,
            help="write the genres into the files (default: import.write)",
        )
        cmd.parser.add_option(
            "-W", "--nowrite", action="store_false", dest="write", help="only change the database, not the files"
        )
        cmd.func = self.command
        return [cmd]

    def command(self, lib, opts, args) -> None:
        force = self.config["force"].get(bool) if opts.force is None else opts.force
        self.tag(lib.items(args), write=ui.should_write(opts.write), pretend=opts.pretend, force=force)

    # --- during `beet import` (auto: yes) -----------------------------------------------
    def imported(self, session, task) -> None:
        """Tag the task's items; the importer writes them itself when it applies new metadata."""
        tagged = self.tag(task.imported_items(), write=False, pretend=False, force=self.config["force"].get(bool))
        with self._lock:
            self._unwritten.update(item.id for item in tagged)

    def write_imported(self, session, task) -> None:
        """After the files were moved or copied: write the genres of as-is imports, which the
        importer leaves unwritten (the copy in the library gets them, never the source)."""
        from beets.importer import Action

        importer_wrote = task.apply or task.choice_flag == Action.RETAG
        for item in task.imported_items():
            with self._lock:
                if item.id not in self._unwritten:
                    continue
                self._unwritten.discard(item.id)
            if session.config["write"].get(bool) and not importer_wrote:
                item.try_write()

    # --- the work -----------------------------------------------------------------------
    def scan_options(self):
        """mgctag.ScanOptions from the `mgctag:` section: every key that names an option."""
        from mgctag.errors import MgctagError
        from mgctag.scanner import ScanOptions

        fields = {f.name: f for f in dataclasses.fields(ScanOptions) if f.name not in OWNED}
        given = {}
        for key in self.config.keys():
            if key in PLUGIN_KEYS:
                continue
            if key not in fields:
                raise ui.UserError(
                    f"mgctag: unknown option {key!r} in the mgctag: config section "
                    f"(known: {', '.join(sorted([*fields, *PLUGIN_KEYS]))})"
                )
            view = self.config[key]
            try:
                value = CONVERTERS[key](view) if key in CONVERTERS else view.get()
            except MgctagError as e:
                raise ui.UserError(f"mgctag: {e}") from None
            _check_type(key, value, fields[key].type)
            given[key] = value
        return ScanOptions(**given, write_tags=False, keep_existing=False)

    def tag(self, items, *, write: bool, pretend: bool, force: bool) -> list:
        """Listen to `items` and set their genres; returns the items that changed.

        An item whose genre mgctag did not set is kept unless `force`. A failing file is
        logged and left as it was; the others go on.
        """
        import mgctag
        from mgctag import decide
        from mgctag.errors import MgctagError

        options = self.scan_options()  # a bad config is an error before anything is looked at
        counts: Counter[str] = Counter()
        todo: dict[str, object] = {}
        albums_of: dict[Path, str] = {}  # beets' albums, for mgctag to decide each as one
        for item in items:
            if decide.keeps_users(item.genres, keep_existing=not force, ours=_set_by_mgctag(item)):
                self._log.info(
                    "{}: keeps its genre {} (--force replaces it)", displayable_path(item.path), "; ".join(item.genres)
                )
                counts["kept"] += 1
                continue
            path = os.path.abspath(os.fsdecode(item.path))  # as mgctag.scan names it
            if not os.path.lexists(path):
                self._log.error("{}: file not found", displayable_path(item.path))
                counts["errors"] += 1
                continue
            todo[path] = item
            album = item.get_album()  # one with no title (`import -A` of a loose folder) is left to mgctag's rules
            if album is not None and album.album.strip() and not album.comp:
                albums_of[Path(path)] = f"{album.albumartist or item.artist} - {album.album} (beets album {album.id})"
        changed = []
        decided: dict[int, list] = {}  # beets album id -> its items that mgctag decided with the album
        floor = [0.0]  # the scan's, once the model is loaded (it may have its own minimum)

        def on_model(analyser) -> None:
            floor[0] = decide.confidence_floor(options.min_confidence, analyser.min_confidence)

        try:
            for result in mgctag.scan(list(todo), options, on_model=on_model, albums_of=albums_of) if todo else ():
                item = todo.pop(os.fspath(result.path), None)
                if item is None:
                    continue
                outcome = self._apply(item, result, decide.written(result, floor[0]), write=write, pretend=pretend)
                counts[outcome] += 1
                if outcome == "tagged":
                    changed.append(item)
                if result.album and outcome in ("tagged", "unchanged"):
                    decided.setdefault(item.album_id, []).append(item)
        except MgctagError as e:
            raise ui.UserError(f"mgctag: {e}") from None
        if not pretend:
            self._set_albums(decided)
        for item in todo.values():  # the same file twice (hard links): answered under one name only
            self._log.warning("{}: not analysed (the same file as another item)", displayable_path(item.path))
            counts["errors"] += 1
        verb = "would tag" if pretend else "tagged"
        self._log.info(
            "{} {}, {} unchanged, {} kept, {} skipped, {} errors",
            counts["tagged"],
            verb,
            counts["unchanged"],
            counts["kept"],
            counts["skipped"],
            counts["errors"],
        )
        return changed

    def _set_albums(self, decided: dict[int, list]) -> None:
        """A beets album whose items all got one genre from it gets that genre too (its items are
        stored already)."""
        for items in decided.values():
            album = items[0].get_album()
            answers = {tuple(i.genres) for i in items}
            if album is None or len(answers) != 1 or len(items) != len(album.items()):
                continue
            (genres,) = answers
            if list(album.genres) != list(genres):
                album.genres = list(genres)
                album.store(inherit=False)
                self._log.info("album {} - {}: {}", album.albumartist, album.album, "; ".join(genres))

    def _apply(self, item, result, genres: list[str], *, write: bool, pretend: bool) -> str:
        """Set one item's genres from its result: `genres`, those mgctag would write (decide.written)."""
        if result.status == "error":
            self._log.error("{}: {}", displayable_path(item.path), result.error)
            return "errors"
        if not genres:
            self._log.info("{}: not tagged ({})", displayable_path(item.path), result.note or result.status)
            return "skipped"
        item.genres = genres
        item["mgctag_confidence"] = round(result.confidence, 3)
        item["mgctag_model"] = result.model
        item["mgctag_genres"] = "; ".join(genres)  # what mgctag set: a later edit makes the genre the user's
        in_db = not _show_changes(item)
        in_file = result.existing_genre == "; ".join(genres)
        if in_db and (in_file or not write):
            return "unchanged"
        if not pretend:
            item.try_sync(write=write, move=False)
        return "tagged"


def _show_changes(item) -> bool:
    """beets' diff of the fields mgctag sets, headed by the item; an item with no artist or title
    (beets would print " -  - ") is named by its path. True when something changed."""
    fresh = item.get_fresh_from_db()
    if not any(item.get(f) != fresh.get(f) for f in FIELDS):
        return False
    ui.print_(format(fresh) if (fresh.artist or fresh.title) else displayable_path(fresh.path))
    return ui.show_model_changes(item, fresh, fields=FIELDS, print_obj=False)


def _set_by_mgctag(item) -> bool:
    """Whether the item's genre is still the one mgctag set (not edited since)."""
    return bool(item.get("mgctag_model")) and item.get("mgctag_genres") == "; ".join(item.genres)


def _check_type(key: str, value, annotation) -> None:
    """A config value of the wrong kind is a clear error here, not a traceback deep in a scan.
    The kinds come from ScanOptions' own annotations ("int", "float | None", ...)."""
    kinds = set(re.findall(r"\b(bool|int|float|str|None)\b", str(annotation)))
    if not kinds - {"None"} or (value is None and "None" in kinds):
        return
    if "bool" in kinds:
        ok, kind = isinstance(value, bool), "yes or no"
    elif "float" in kinds:
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif "int" in kinds:
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    else:
        ok, kind = isinstance(value, str), "text"
    if not ok:
        raise ui.UserError(f"mgctag: {key} must be {kind}, not {value!r}")
