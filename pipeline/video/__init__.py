"""Video: probe a file and decode it frame-exactly, in bounded memory.

``probe`` and ``iter_chunks`` are the surface (``check_path`` rejects what cannot be a video
file at all); ``plan`` decides which frames to decode,
``errors`` holds the typed errors and warnings, the underscored modules are the two decoders and
the container checks behind them.
"""

from pipeline.lazy import lazy_surface

_EXPORTS = {
    "probe": "decode",
    "iter_chunks": "decode",
    "VideoInfo": "decode",
    "FrameChunk": "decode",
    "DECODER_VERSION": "decode",
    "sample_plan": "plan",
    "resized_shape": "plan",
    "check_path": "_container",
    "VideoError": "errors",
    "VideoWarning": "errors",
    "VideoNotFoundError": "errors",
    "UnreadableVideoError": "errors",
    "NotAVideoError": "errors",
    "NoVideoStreamError": "errors",
    "EmptyVideoError": "errors",
    "DecodeError": "errors",
    "TruncatedVideoWarning": "errors",
    "DamagedVideoWarning": "errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_surface(__name__, _EXPORTS)
