"""The page a film is composed into (app.film.compose): sizes of Table 4-31 at a printer's
resolution, portrait 14x17 stays portrait, boxes of a layout, images fitted or at true size."""

from __future__ import annotations

import numpy as np
import pytest

from app.film.compose import FilmError, boxes, compose, film_sizes, page_shape, true_size_scale


def test_every_film_size_of_table_4_31_and_portrait_stays_portrait():
    assert set(film_sizes()) == {"8INX10IN", "10INX12IN", "10INX14IN", "11INX14IN", "14INX14IN", "14INX17IN",
                                 "24CMX24CM", "24CMX30CM"}
    assert page_shape("14INX17IN", "PORTRAIT", 300) == (5100, 4200)  # rows > columns
    assert page_shape("14INX17IN", "LANDSCAPE", 300) == (4200, 5100)
    assert page_shape("24CMX30CM", "PORTRAIT", 254) == (3000, 2400)
    with pytest.raises(FilmError, match="not one of"):
        page_shape("A4", "PORTRAIT", 300)
    with pytest.raises(FilmError, match="PORTRAIT or LANDSCAPE"):
        page_shape("14INX17IN", "SIDEWAYS", 300)


def test_boxes_of_a_layout_cover_the_page_row_by_row():
    b = boxes((100, 90), 2, 3, gap=3)
    assert len(b) == 6 and (b[0].top, b[0].left) == (0, 0) and (b[1].top, b[1].left) == (0, 31)
    assert (b[3].top, b[3].left) == (51, 0) and (b[0].height, b[0].width) == (48, 28)
    with pytest.raises(FilmError):
        boxes((100, 90), 0, 3)


def test_images_are_fitted_centred_with_their_aspect_and_empty_boxes_stay_background():
    tall = np.full((40, 20), 4095, np.uint16)  # 2:1, into a 50x50 box: 50x25, centred
    page = compose([tall, None], (50, 100), 1, 2, bits=12)
    assert page.dtype == np.uint16 and page.shape == (50, 100)
    left_box = page[:, :50]
    cols = np.where(left_box.max(axis=0) == 4095)[0]
    assert (cols.min(), cols.max()) == (12, 36) and (left_box[:, 12] == 4095).all()
    assert not page[:, 50:].any()
    with pytest.raises(FilmError, match="do not fit"):
        compose([tall] * 3, (50, 100), 1, 2)


def test_true_size_prints_mm_for_mm():
    # a 0.1 mm pixel at 254 dpi (0.1 mm per page pixel): one page pixel per image pixel
    assert true_size_scale(0.1, 254) == pytest.approx(1.0)
    img = np.arange(30 * 20, dtype=np.uint16).reshape(30, 20)
    page = compose([img], (60, 60), 1, 1, scales=[true_size_scale(0.1, 254)])
    assert np.array_equal(page[15:45, 20:40], img)  # placed unchanged, centred
    big = compose([np.ones((100, 100), np.uint16)], (60, 60), 1, 1, scales=[1.0])
    assert big.all()  # larger than its box at true size: cropped to it, not shrunk


def test_eight_bit_pages_and_shrinking_averages():
    img = np.zeros((4, 4), np.uint8)
    img[:, :2] = 200
    page = compose([img], (2, 2), 1, 1, bits=8)
    assert page.dtype == np.uint8 and page.tolist() == [[200, 0], [200, 0]]
    checker = np.indices((4, 4)).sum(axis=0) % 2 * 200
    assert (compose([checker.astype(np.uint8)], (2, 2), 1, 1, bits=8) == 100).all()


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_print_values_are_the_viewers_grey_levels_at_twelve_bits(photometric):
    """12 bits: the same window and polarity as the 8 bits the viewer shows, finer."""
    from pydicom.uid import generate_uid

    from app.film.compose import print_values
    from app.imaging import pixels
    from tests.peers.peerutil import ct_dataset
    ds = ct_dataset(generate_uid(), generate_uid(), generate_uid(), 1, size=32, seed=3)
    ds.PhotometricInterpretation = photometric
    stored = np.frombuffer(ds.PixelData, dtype="<i2" if ds.PixelRepresentation else "<u2").reshape(32, 32)
    window = pixels.Window(40, 400)
    twelve = print_values(ds, stored, 12, window)
    eight = print_values(ds, stored, 8, window)
    assert twelve.dtype == np.uint16 and twelve.max() <= 4095 and eight.dtype == np.uint8
    assert np.abs(twelve.astype(float) / 4095 * 255 - eight).max() <= 1.0
