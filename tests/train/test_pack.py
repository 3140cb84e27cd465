"""pack: a training folder as a small tar of WebP images that LabImages reads back, grey files left out."""

import tarfile

import cv2
import numpy as np

from filmcolor.train.data import LabImages
from filmcolor.train.pack import pack


def test_pack_resizes_keeps_layout_and_round_trips_through_labimages(tmp_path):
    src = tmp_path / "src"
    (src / "street").mkdir(parents=True)
    img = np.zeros((120, 200, 3), np.uint8)
    img[:60] = (200, 120, 40)
    img[60:] = (40, 160, 60)
    cv2.imwrite(str(src / "a.png"), img)
    cv2.imwrite(str(src / "street" / "b.jpg"), img[:, ::-1])
    cv2.imwrite(str(src / "grey.png"), np.full((50, 50, 3), 90, np.uint8))

    rep = pack(src, tmp_path / "p.tar", short_side=60, quality=80)
    assert rep["images"] == 2 and rep["skipped"] == 1
    with tarfile.open(tmp_path / "p.tar") as tar:
        assert sorted(tar.getnames()) == ["a.webp", "street/b.webp"]
        tar.extractall(tmp_path / "out", filter="data")
    data = LabImages(tmp_path / "out", short_side=None)
    assert [im.shape for im in data.images] == [(60, 100, 3), (60, 100, 3)]  # short side 60, aspect kept
    truth = cv2.cvtColor(cv2.resize(img, (100, 60), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2LAB)
    err = np.abs(data.images[0][..., 1:].astype(int) - truth[..., 1:]).mean()
    assert err < 3  # a,b survive the lossy encoding
