"""UserError: the one base of errors the CLI prints as a message and exits 2 on."""

from __future__ import annotations

import pickle

import pytest

from pipeline.data.discovery import DiscoveryError
from pipeline.errors import UserError
from pipeline.features.backbones import BackboneError
from pipeline.features.store_admin import StoreAdminError
from pipeline.fileio import UserTextError
from pipeline.video.errors import VideoError


@pytest.mark.parametrize(
    "error", [DiscoveryError, BackboneError, StoreAdminError, UserTextError, VideoError]
)
def test_each_stages_user_errors_share_the_base(error: type[Exception]) -> None:
    assert issubclass(error, UserError) and issubclass(UserError, Exception)


def test_the_message_alone_is_what_the_user_sees_and_it_pickles() -> None:
    error = UserError("features.backbone: unknown backbone 'resnet999'")
    assert str(error) == "features.backbone: unknown backbone 'resnet999'"
    copy = pickle.loads(pickle.dumps(error))  # Dask workers send errors back
    assert type(copy) is UserError and str(copy) == str(error)
