"""Video: probe a file and decode it frame-exactly, in bounded memory.

``probe`` and ``iter_chunks`` are the surface (``check_path`` rejects what cannot be a video
file at all); ``plan`` decides which frames to decode, ``errors`` holds the typed errors and
warnings, the underscored modules are the two decoders and the container checks behind them.
"""

from pipeline.lazy import lazy_surface

__all__, __getattr__, __dir__ = lazy_surface(
    __name__,
    decode="probe iter_chunks VideoInfo FrameChunk DECODER_VERSION",
    plan="sample_plan resized_shape",
    _container="check_path container_kind read_head",
    _backends="upright_rgb resize_frame",
    errors=(
        "VideoError VideoWarning VideoNotFoundError UnreadableVideoError NotAVideoError "
        "NoVideoStreamError EmptyVideoError DecodeError TruncatedVideoWarning DamagedVideoWarning"
    ),
)
