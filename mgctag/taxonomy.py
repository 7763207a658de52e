"""Genre names: one canonical name per genre, the spellings every source uses for it, and presets.

Models, data sets and libraries spell genres differently: GTZAN's folders say `hiphop`, AudioSet
says "Hip hop music", a tag editor "Hip Hop", mgctag writes `Hip-Hop`. `canonical` maps each
known spelling to the name mgctag writes; any two labels that differ only in case, spaces and
punctuation match (`key`). A label nobody listed keeps its own name, so a user's own taxonomy
passes through untouched.

Presets (`--genres`) choose which genres a model may write: a model's other labels are never
written (and do not take part in its confidence, see mgctag.analyser).
"""

from __future__ import annotations

import re
import unicodedata

# canonical name -> other spellings of the same genre (never a different name for it: a user who
# says "Rap" means Rap). key() is applied to both, so case and punctuation never need listing.
ALIASES: dict[str, tuple[str, ...]] = {
    "Hip-Hop": ("hip hop music",),
    "R&B": ("rnb", "rhythm and blues", "r and b", "rhythm & blues"),
    "Rock": ("rock music",),
    "Pop": ("pop music",),
    "Metal": ("heavy metal",),
    "Punk": ("punk rock",),
    "Rock & Roll": ("rock and roll", "rock n roll", "rock'n'roll"),
    "Soul": ("soul music",),
    "Swing": ("swing music",),
    "Folk": ("folk music",),
    "Middle Eastern": ("middle eastern music",),
    "Classical": ("classical music",),
    "Electronic": ("electronic music",),
    "House": ("house music",),
    "Drum & Bass": ("drum and bass", "drum n bass", "dnb", "drumnbass"),
    "EDM": ("electronic dance music",),
    "Ambient": ("ambient music",),
    "Trance": ("trance music",),
    "Latin": ("music of latin america", "latin music"),
    "Salsa": ("salsa music",),
    "Children's": ("music for children", "children's music"),
    "New Age": ("new-age music", "new age music", "newage"),
    "Vocal": ("vocal music",),
    "A Cappella": ("a capella", "acapella"),
    "African": ("music of africa", "african music"),
    "Christian": ("christian music",),
    "Gospel": ("gospel music",),
    "Asian": ("music of asia", "asian music"),
    "Carnatic": ("carnatic music",),
    "Bollywood": ("music of bollywood",),
    "Traditional": ("traditional music",),
    "Indie": ("independent music", "indie music"),
    "Blues": (),
    "Country": (),
    "Disco": (),
    "Jazz": (),
    "Reggae": (),
    "Opera": (),
    "Funk": (),
    "Techno": (),
    "Dubstep": (),
    "Electronica": (),
    "Flamenco": (),
    "Afrobeat": (),
    "Ska": (),
    "Grunge": (),
    "Progressive Rock": (),
    "Psychedelic Rock": (),
    "Bluegrass": (),
    "Beatboxing": (),
    "World": ("world music",),
}

# AudioSet's music-genre classes (ontology indices 216-265, in order), named as a library names them
AUDIOSET_FIRST_GENRE = 216
AUDIOSET_GENRES: tuple[str, ...] = (
    "Pop",
    "Hip-Hop",
    "Beatboxing",
    "Rock",
    "Metal",
    "Punk",
    "Grunge",
    "Progressive Rock",
    "Rock & Roll",
    "Psychedelic Rock",
    "R&B",
    "Soul",
    "Reggae",
    "Country",
    "Swing",
    "Bluegrass",
    "Funk",
    "Folk",
    "Middle Eastern",
    "Jazz",
    "Disco",
    "Classical",
    "Opera",
    "Electronic",
    "House",
    "Techno",
    "Dubstep",
    "Drum & Bass",
    "Electronica",
    "EDM",
    "Ambient",
    "Trance",
    "Latin",
    "Salsa",
    "Flamenco",
    "Blues",
    "Children's",
    "New Age",
    "Vocal",
    "A Cappella",
    "African",
    "Afrobeat",
    "Christian",
    "Gospel",
    "Asian",
    "Carnatic",
    "Bollywood",
    "Ska",
    "Traditional",
    "Indie",
)
AUDIOSET_GENRE_INDICES: tuple[int, ...] = tuple(
    range(AUDIOSET_FIRST_GENRE, AUDIOSET_FIRST_GENRE + len(AUDIOSET_GENRES))
)

# Classes that describe an audience, a technique, a theme or a business, not how music sounds:
# never written unless a user names them (`--genres Vocal,Christian`).
NOT_GENRES: frozenset[str] = frozenset(
    {"Beatboxing", "Children's", "Vocal", "A Cappella", "Christian", "Traditional", "Indie"}
)

# The genre tree: each sub-genre's parent, as AudioSet's public ontology places its music-genre
# classes (Rock music's children, Electronic music's, Jazz's Swing, ...), in canonical names. When
# a preset or a genre map leaves a sub-genre out, its evidence goes to its nearest ancestor that is
# still written (mgctag.analyser), instead of being lost: under `--genres gtzan`, Punk counts for Rock.
PARENT: dict[str, str] = {
    "Metal": "Rock",
    "Punk": "Rock",
    "Grunge": "Rock",
    "Progressive Rock": "Rock",
    "Rock & Roll": "Rock",
    "Psychedelic Rock": "Rock",
    "Beatboxing": "Hip-Hop",
    "Bluegrass": "Country",
    "Swing": "Jazz",
    "Opera": "Classical",
    "House": "Electronic",
    "Techno": "Electronic",
    "Dubstep": "Electronic",
    "Drum & Bass": "Electronic",
    "Electronica": "Electronic",
    "EDM": "Electronic",
    "Ambient": "Electronic",
    "Trance": "Electronic",
    "Salsa": "Latin",
    "Flamenco": "Latin",
    "A Cappella": "Vocal",
    "Afrobeat": "African",
    "Gospel": "Christian",
    "Carnatic": "Asian",
    "Bollywood": "Asian",
}


def ancestors(label: str) -> list[str]:
    """`label`'s parents in the genre tree, nearest first (canonical names; [] for a root or an unknown)."""
    chain, name = [], canonical(label)
    while name in PARENT and PARENT[name] not in chain:
        name = PARENT[name]
        chain.append(name)
    return chain


GTZAN = ("Blues", "Classical", "Country", "Disco", "Hip-Hop", "Jazz", "Metal", "Pop", "Reggae", "Rock")

# `common`: the genres real libraries file music under. Sub-genres (Grunge, Swing, EDM, Salsa ...)
# are not folded into them: measured on gtzan-mini, folding AudioSet's sub-genre classes in by their
# maximum cost 3-7 points of accuracy (Rock & Roll fires on blues and country), so they are left out.
COMMON: tuple[str, ...] = (
    "Pop",
    "Hip-Hop",
    "R&B",
    "Soul",
    "Funk",
    "Disco",
    "Reggae",
    "Ska",
    "Rock",
    "Metal",
    "Punk",
    "Country",
    "Folk",
    "Blues",
    "Jazz",
    "Gospel",
    "Classical",
    "Opera",
    "New Age",
    "Ambient",
    "Electronic",
    "House",
    "Techno",
    "Trance",
    "Drum & Bass",
    "Dubstep",
    "Latin",
)
PRESETS: dict[str, str] = {
    "gtzan": "GTZAN's ten: " + ", ".join(GTZAN),
    "common": f"{len(COMMON)} genres real libraries use: " + ", ".join(COMMON),
    "all": "every genre the model knows (not the classes that name an audience or a theme, such as Vocal, "
    "Children's or Christian)",
}

_PUNCT = re.compile(r"[^0-9a-z]+")


def key(label: str) -> str:
    """What two spellings of one genre share: accents, case, spaces and punctuation removed, & as 'and'."""
    text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().casefold()
    return _PUNCT.sub("", text.replace("&", "and"))


_CANONICAL: dict[str, str] = {key(alias): name for name, aliases in ALIASES.items() for alias in (name, *aliases)}


def canonical(label: str) -> str:
    """The name mgctag writes for `label` (hiphop -> Hip-Hop); an unknown label keeps its own name."""
    return _CANONICAL.get(key(label), " ".join(label.split()))


def preset_targets(name: str, labels: list[str]) -> dict[str, str | None]:
    """What preset `name` writes for each of a model's labels (None: never written)."""
    if name not in PRESETS:
        raise KeyError(name)
    keep = {"gtzan": set(GTZAN), "common": set(COMMON)}.get(name)
    return {
        label: (
            canonical(label)
            if (canonical(label) in keep if keep is not None else canonical(label) not in NOT_GENRES)
            else None
        )
        for label in labels
    }
