import gzip
import struct

import numpy as np
import pytest

from stabgen import data, settings
from stabgen.errors import StabgenError


def idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[arr.dtype]
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def test_parse_idx_images_and_labels():
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(imgs)), imgs)
    labels = np.array([7, 1, 0], dtype=np.uint8)
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(labels)), labels)
    big = np.array([[1, -2], [300000, 4]], dtype=">i4")
    np.testing.assert_array_equal(data.parse_idx(idx_bytes(big)), big)


@pytest.mark.parametrize("raw,msg", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "data type"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x02\x01\x02", "truncated"),
])
def test_parse_idx_rejects_bad_files(raw, msg):
    with pytest.raises(StabgenError, match=msg):
        data.parse_idx(raw)


def _write(root, stem, arr):
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    (root / "mnist" / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arr)))


def test_checksum_mismatch_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_CACHE_DIR, str(tmp_path / "cache"))
    _write(tmp_path, "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    _write(tmp_path, "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(StabgenError, match="checksum mismatch") as e:
        data.load("mnist", "test", tmp_path, download=False)
    assert "\n" not in str(e.value)


def test_missing_offline_lists_paths_tried(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(settings.ENV_DATA_DIR, str(tmp_path / "env"))
    # a mirror that refuses connections stands in for "no internet"
    src = data.IDX_FILES["mnist"]
    monkeypatch.setitem(data.IDX_FILES, "mnist", data.IdxSource(("http://127.0.0.1:9/",), src.sha256))
    with pytest.raises(StabgenError) as e:
        data.load("mnist", "train", tmp_path / "opt")
    msg = str(e.value)
    for tried in (tmp_path / "opt", tmp_path / "env", tmp_path / "cache"):
        assert str(tried / "mnist") in msg
    assert "download failed" in msg and "STABGEN_DATA_DIR" in msg and "\n" not in msg


def test_lookup_order_option_then_env_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_DATA_DIR, str(tmp_path / "env"))
    monkeypatch.setenv(settings.ENV_CACHE_DIR, str(tmp_path / "cache"))
    assert settings.data_dirs(tmp_path / "opt") == [tmp_path / "opt", tmp_path / "env", tmp_path / "cache"]


def test_real_mnist_matches_published_counts(mnist_train, mnist_test):
    assert mnist_train.images.shape == (60000, 1, 28, 28) and mnist_train.images.dtype.is_floating_point is False
    assert mnist_train.labels.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist_test.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_unit_range_roundtrip():
    import torch
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(data.to_uint8(data.to_unit(x)), x)
