"""Audio files that Home Assistant sends for announcements (a chime, a recording),
decoded to a satellite's reply format.

Only the four formats a person is likely to have are read: WAV, MP3, FLAC and Ogg
(Vorbis or Opus). The format is told from the file's first bytes and named to the
decoder, never guessed by it: FFmpeg's own probing would also accept playlists and
other containers that name further files or addresses to open. Decoding uses PyAV
(FFmpeg's libraries, which faster-whisper already brings); it runs in a worker thread.
"""

from __future__ import annotations

import io

from .audio_format import PcmFormat
from .errors import BadRequest, TooLarge

MAX_MEDIA_SECONDS = 300.0
"""The longest announcement a file may hold: a small file may decode to hours."""


class MediaError(BadRequest):
    """A file that is not audio of a format the server reads, or is damaged."""


def container_of(data: bytes) -> str:
    """FFmpeg's name for the container of `data`, told from its first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    # An ID3 tag, or an MPEG audio frame's sync word (11 bits set) of layer III.
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE6 == 0xE2):
        return "mp3"
    raise MediaError("the file is not WAV, MP3, FLAC or Ogg audio")


def decode_media(data: bytes, target: PcmFormat, max_seconds: float = MAX_MEDIA_SECONDS) -> bytes:
    """`data`, an audio file, as 16-bit PCM in `target`'s rate and channels.

    MediaError when it cannot be read, TooLarge when it plays longer than `max_seconds`.
    """
    if target.width != 2 or target.channels not in (1, 2):
        raise ValueError(f"decode_media makes 16-bit mono or stereo, not {target}")
    import av  # only the server's extra has it (faster-whisper's dependency)

    container_format = container_of(data)
    limit = int(max_seconds * target.bytes_per_second)
    pcm = bytearray()
    try:
        with av.open(io.BytesIO(data), mode="r", format=container_format) as container:
            if not container.streams.audio:
                raise MediaError(f"the {container_format} file holds no audio")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(
                format="s16", layout="mono" if target.channels == 1 else "stereo", rate=target.rate
            )
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    pcm += converted.to_ndarray().tobytes()
                if len(pcm) > limit:
                    raise TooLarge(f"the file plays longer than {max_seconds:g} s")
            for converted in resampler.resample(None):
                pcm += converted.to_ndarray().tobytes()
    except av.FFmpegError as error:
        raise MediaError(f"the {container_format} file cannot be decoded: {error}") from None
    if not pcm:
        raise MediaError(f"the {container_format} file holds no sound")
    return bytes(pcm[:limit])
