"""Genre names: one canonical name per genre, the spellings every source uses for it, and presets.

Models, data sets and libraries spell genres differently: GTZAN's folders say `hiphop`, AudioSet
says "Hip hop music", a tag editor "Hip Hop", mgctag writes `Hip-Hop`. `canonical` maps each
known spelling to the name mgctag writes; any two labels that differ only in case, spaces and
punctuation match (`key`). A label nobody listed keeps its own name, so a user's own taxonomy
passes through untouched.

Presets (`--genres`) choose which genres a model may write, and fold sub-genres into the genre a
library files them under (Grunge -> Rock). They were fixed before anything was measured with them.
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
    "Blues": (), "Country": (), "Disco": (), "Jazz": (), "Reggae": (), "Opera": (), "Funk": (),
    "Techno": (), "Dubstep": (), "Electronica": (), "Flamenco": (), "Afrobeat": (), "Ska": (),
    "Grunge": (), "Progressive Rock": (), "Psychedelic Rock": (), "Bluegrass": (), "Beatboxing": (),
    "World": ("world music",),
}

# AudioSet's music-genre classes (ontology indices 216-265, in order), named as a library names them
AUDIOSET_FIRST_GENRE = 216
AUDIOSET_GENRES: tuple[str, ...] = (
    "Pop", "Hip-Hop", "Beatboxing", "Rock", "Metal", "Punk", "Grunge", "Progressive Rock", "Rock & Roll",
    "Psychedelic Rock", "R&B", "Soul", "Reggae", "Country", "Swing", "Bluegrass", "Funk", "Folk", "Middle Eastern",
    "Jazz", "Disco", "Classical", "Opera", "Electronic", "House", "Techno", "Dubstep", "Drum & Bass", "Electronica",
    "EDM", "Ambient", "Trance", "Latin", "Salsa", "Flamenco", "Blues", "Children's", "New Age", "Vocal",
    "A Cappella", "African", "Afrobeat", "Christian", "Gospel", "Asian", "Carnatic", "Bollywood", "Ska",
    "Traditional", "Indie",
)
AUDIOSET_GENRE_INDICES: tuple[int, ...] = tuple(range(AUDIOSET_FIRST_GENRE, AUDIOSET_FIRST_GENRE + len(AUDIOSET_GENRES)))

# Classes that describe an audience, a technique, a theme or a business, not how music sounds:
# never written unless a user names them (`--genres Vocal,Christian`).
NOT_GENRES: frozenset[str] = frozenset({"Beatboxing", "Children's", "Vocal", "A Cappella", "Christian",
                                        "Traditional", "Indie"})

GTZAN = ("Blues", "Classical", "Country", "Disco", "Hip-Hop", "Jazz", "Metal", "Pop", "Reggae", "Rock")

# `common`: the genres real libraries file music under, each with the sub-genres folded into it.
COMMON: dict[str, tuple[str, ...]] = {
    "Pop": (), "Hip-Hop": (), "R&B": (), "Soul": (), "Funk": (), "Disco": (), "Reggae": (), "Ska": (),
    "Rock": ("Grunge", "Progressive Rock", "Psychedelic Rock", "Rock & Roll"), "Metal": (), "Punk": (),
    "Country": ("Bluegrass",), "Folk": (), "Blues": (), "Jazz": ("Swing",), "Gospel": (),
    "Classical": (), "Opera": (), "New Age": (), "Ambient": (),
    "Electronic": ("Electronica", "EDM"), "House": (), "Techno": (), "Trance": (), "Drum & Bass": (), "Dubstep": (),
    "Latin": ("Salsa", "Flamenco"),
    "World": ("Middle Eastern", "African", "Afrobeat", "Asian", "Carnatic", "Bollywood"),
}
PRESETS: dict[str, str] = {
    "gtzan": "GTZAN's ten: " + ", ".join(GTZAN) + " (sub-genres folded in as in common)",
    "common": f"{len(COMMON)} genres real libraries use, sub-genres folded in (Grunge -> Rock, EDM -> Electronic, "
              "Salsa -> Latin, Afrobeat -> World, ...)",
    "all": "every genre the model knows, each on its own (not audience or theme classes such as Vocal or Christian)",
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
    if name == "all":
        return {label: (None if canonical(label) in NOT_GENRES else canonical(label)) for label in labels}
    folded = {member: genre for genre, members in COMMON.items() for member in (genre, *members)}
    if name == "gtzan":
        folded = {m: g for m, g in folded.items() if g in GTZAN}
    return {label: folded.get(canonical(label)) for label in labels}
