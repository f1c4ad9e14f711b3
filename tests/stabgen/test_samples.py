import numpy as np
import pytest
import torch
from PIL import Image

from stabgen.errors import StabgenError
from stabgen.samples import load_samples, to_uint8_nchw


def test_layouts_and_ranges():
    u8 = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    assert torch.equal(to_uint8_nchw(u8), u8[:, None])
    assert torch.equal(to_uint8_nchw(u8[..., None].numpy()), u8[:, None])  # NHWC numpy
    unit = u8.float() / 255
    assert torch.equal(to_uint8_nchw(unit), u8[:, None])
    assert torch.equal(to_uint8_nchw(unit * 2 - 1), u8[:, None])  # tanh range


@pytest.mark.parametrize("bad,msg", [
    (torch.zeros(2, 5, 28, 28), "1 or 3 channels"),
    (torch.full((2, 28, 28), 7.0), r"\[0, 1\] or \[-1, 1\]"),
    (torch.full((2, 28, 28), float("nan")), "NaN"),
    (torch.zeros(28, 28), "expected"),
])
def test_bad_samples_are_named(bad, msg):
    with pytest.raises(StabgenError, match=msg):
        to_uint8_nchw(bad)


def test_files_and_folders(tmp_path):
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    torch.save({"samples": x}, tmp_path / "s.pt")
    np.savez(tmp_path / "s.npz", images=x.numpy())
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(x[i, 0].numpy()).save(tmp_path / "imgs" / f"{i}.png")
    for src in ("s.pt", "s.npz", "imgs"):
        assert torch.equal(load_samples(tmp_path / src), x), src
    with pytest.raises(StabgenError, match="do not exist"):
        load_samples(tmp_path / "missing.npz")
