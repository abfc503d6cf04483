"""Labelling: new videos -> per-frame labels, segments and the files people review.

``segments`` turns one video's predictions into labels (pure), ``predict`` runs a model on a
video with its own extractor, ``folder`` plans a folder and labels one video of it,
``outputs`` writes the per-video files and summary.csv, ``page`` the review page,
``preview`` the browser-playable previews it plays, ``truth`` the ground truth it compares with.
``live`` labels a live stream step by step (its frames from ``live_source``).
"""

from pipeline.lazy import lazy_surface

__all__, __getattr__, __dir__ = lazy_surface(
    __name__,
    segments="SegmentBuilder VideoLabels",
    predict="get_model check_spec label_video predict_table",
    folder="plan_folder label_one already_labelled",
    outputs="write_outputs",
    page="index_html",
    preview="preview_entry browser_playable",
    truth="load_truth truth_views",
    live="label_live LiveStepper LiveSegmenter",
)
