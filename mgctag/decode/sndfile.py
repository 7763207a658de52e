"""libsndfile (through soundfile): PCM, FLAC, AIFF, AU. Exact, and seeks sample-accurately.

MPEG streams (MP3, or MP3 inside a WAV) are handed to FFmpeg before libsndfile opens them: its
mpg123 misreads a WAV's stream once a chunk follows it and prints "Illegal Audio-MPEG-Header"
notes to stderr. Only as FFmpeg's fallback does it read MPEG (given a pre-roll, and quietly), and
never Vorbis, whose seeks land wrongly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext

import numpy as np

from .common import AudioInfo, Handoff, head, mono, mpeg_stream, quiet_stderr

CHUNK = 16384  # frames per libsndfile read: a corrupt tail loses at most this much
# samples decoded and dropped before a window after a seek: mpg123 decodes the first frame after a
# seek wrongly now and then (bit reservoir)
MP3_PREROLL = 8192
SNDFILE_MAGIC = (b"RIFF", b"RF64", b"BW64", b"FORM", b"fLaC", b"OggS", b".snd", b"caff")


class SoundfileReader:
    backend = "soundfile"

    def __init__(self, fspath: bytes, *, fallback: bool = False):
        import soundfile as sf

        first = head(fspath)
        mpeg = mpeg_stream(first)
        if mpeg and not fallback:
            raise Handoff("MPEG audio goes to FFmpeg")
        # libsndfile tries mpg123 on what it does not recognise: quiet unless it is a container it knows
        self._quiet = nullcontext if first[:4] in SNDFILE_MAGIC and not mpeg else quiet_stderr
        self._open = lambda: sf.SoundFile(fspath)
        with self._quiet():
            self.f = self._open()
        f = self.f
        if f.frames <= 0:  # an Ogg truncated before its first page says 0: let FFmpeg have a go
            f.close()
            raise ValueError("no audio samples")
        if f.subtype == "VORBIS":  # libsndfile 1.2 lands wrongly on ~10% of Vorbis seeks: FFmpeg's are exact
            f.close()
            raise Handoff("Vorbis goes to FFmpeg")
        if (f.format == "MP3" or f.subtype.startswith("MPEG")) and not fallback:  # the sniff missed it
            f.close()
            raise Handoff("MPEG audio goes to FFmpeg")
        self.preroll = MP3_PREROLL if f.format == "MP3" or f.subtype.startswith("MPEG") else 0
        self.frames = f.frames
        self.info = AudioInfo(
            duration=f.frames / f.samplerate, sample_rate=f.samplerate, channels=f.channels, backend=self.backend
        )

    def close(self) -> None:
        self.f.close()

    def _read(self, n: int) -> Iterator[np.ndarray]:
        """Up to `n` frames from here, in chunks, so a corrupt tail (a truncated FLAC's "lost
        sync") costs only the chunk it is in; an error ends the reading quietly."""
        while n > 0:
            try:
                with self._quiet():
                    x = self.f.read(min(n, CHUNK), dtype="float32", always_2d=True)
            except Exception:
                return
            if len(x) == 0:
                return
            n -= len(x)
            yield x

    def blocks(self) -> Iterator[np.ndarray]:
        """Whole stream as (samples, channels) float32 blocks."""
        return self._read(self.frames)

    def mono_blocks(self) -> Iterator[np.ndarray]:
        return map(mono, self.blocks())

    def spans(self, spans: Sequence[tuple[int, int]]) -> list[tuple[np.ndarray, int]]:
        """Mono audio for each native-sample span [begin, end), zero-padded, with its real length."""
        out = []
        for begin, end in spans:
            buf = np.zeros(end - begin, np.float32)
            at = lo = max(begin, 0)
            if lo < self.frames:
                early = max(lo - self.preroll, 0)
                try:
                    with self._quiet():
                        self.f.seek(early)
                    ready = sum(len(x) for x in self._read(lo - early)) == lo - early
                except Exception:  # past the end of a truncated file
                    ready = False
                if ready:
                    for x in self._read(end - lo):
                        buf[at - begin : at - begin + len(x)] = mono(x)
                        at += len(x)
                if at < end:  # an error or an early end leaves libsndfile unusable: start afresh
                    self.f.close()
                    with self._quiet():
                        self.f = self._open()
            out.append((buf, at - lo))
        return out
