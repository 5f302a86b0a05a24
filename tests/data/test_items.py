"""ZeroSpeech item files: validating reader, atomic sorted writer, items from alignments."""

import numpy as np
import pytest

from speechunits.data.items import ITEM_HEADER, ItemRow, ItemSet, make_items, read_items, write_items
from speechunits.errors import DataFormatError

GOOD = f"""{ITEM_HEADER}
6295-244435-0009 0.2925 0.4725 IH L NG 6295
6295-244435-0009 0.3725 0.5325 NG IH K 6295

2902-9006-0005 0.3725 0.6925 UW JH L 2902
"""


def test_read_items(tmp_path):
    path = tmp_path / "a.item"
    path.write_text(GOOD)
    items = read_items(path)
    assert len(items) == 3
    assert items.file == ["6295-244435-0009", "6295-244435-0009", "2902-9006-0005"]
    np.testing.assert_array_equal(items.onset, [0.2925, 0.3725, 0.3725])
    np.testing.assert_array_equal(items.offset, [0.4725, 0.5325, 0.6925])
    assert items.phone == ["IH", "NG", "UW"] and items.prev == ["L", "IH", "JH"] and items.next == ["NG", "K", "L"]
    assert items.speaker == ["6295", "6295", "2902"]
    assert list(items.lines) == [2, 3, 5]  # the blank line 4 is skipped, numbers stay true
    assert items[2] == ItemRow("2902-9006-0005", 0.3725, 0.6925, "UW", "JH", "L", "2902")
    assert items.where(2).endswith("a.item:5")


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("", 1, "header"),
        ("#file onset offset #phone speaker\nf 0 1 a s\n", 1, "header"),
        (f"{ITEM_HEADER}\nf 0.1 0.2 a b c\n", 2, "7 fields"),
        (f"{ITEM_HEADER}\nf 0.1 0.2 a b c s\nf 0.1 0.2 a b c s extra\n", 3, "7 fields"),
        (f"{ITEM_HEADER}\nf zero 0.2 a b c s\n", 2, "not a number"),
        (f"{ITEM_HEADER}\nf 0.1 nan a b c s\n", 2, "not finite"),
        (f"{ITEM_HEADER}\nf -0.1 0.2 a b c s\n", 2, "negative"),
        (f"{ITEM_HEADER}\nf 0.2 0.2 a b c s\n", 2, "not after onset"),
        (f"{ITEM_HEADER}\nf 0.1 0.2 a b c s\nf 0.3 0.25 a b c s\n", 3, "not after onset"),
    ],
)
def test_read_items_errors(tmp_path, text, line, message):
    path = tmp_path / "bad.item"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=message) as err:
        read_items(path)
    assert err.value.line == line and err.value.path == str(path)
    assert f"bad.item:{line}" in str(err.value)


def test_write_items_round_trip_sorted_atomic(tmp_path):
    rows = [
        ItemRow("u2", 0.5, 0.75, "a", "b", "c", "s2"),
        ItemRow("u1", 1.0, 1.2, "b", "a", "c", "s1"),
        ItemRow("u1", 0.0125, 0.2925, "c", "a", "b", "s1"),
        ItemRow("u1", 0.1, 0.1234567, "a", "c", "b", "s1"),
    ]
    path = tmp_path / "out" / "x.item"
    write_items(path, rows)
    lines = path.read_text().splitlines()
    assert lines[0] == ITEM_HEADER
    assert lines[1:] == [
        "u1 0.0125 0.2925 c a b s1",
        "u1 0.1000 0.123457 a c b s1",  # four decimals, more when they are needed
        "u1 1.0000 1.2000 b a c s1",
        "u2 0.5000 0.7500 a b c s2",
    ]
    back = read_items(path)
    assert [tuple(r) for r in back] == [
        ("u1", 0.0125, 0.2925, "c", "a", "b", "s1"),
        ("u1", 0.1, 0.123457, "a", "c", "b", "s1"),
        ("u1", 1.0, 1.2, "b", "a", "c", "s1"),
        ("u2", 0.5, 0.75, "a", "b", "c", "s2"),
    ]
    write_items(tmp_path / "y.item", back)  # an ItemSet writes too
    assert (tmp_path / "y.item").read_text() == path.read_text()
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.item"]  # no temporary left


@pytest.mark.parametrize(
    "row", [ItemRow("u 1", 0.0, 1.0, "a", "b", "c", "s"), ItemRow("u", 1.0, 1.0, "a", "b", "c", "s"), ItemRow("u", 0.0, 1.0, "", "b", "c", "s")]
)
def test_write_items_rejects_bad_rows(tmp_path, row):
    with pytest.raises(DataFormatError):
        write_items(tmp_path / "x.item", [row])
    assert not (tmp_path / "x.item").exists()


ALIGN = {
    "u1": [
        (0.00, 0.10, "sil"),
        (0.10, 0.20, "a"),  # first real phone: its prev is silence -> no item
        (0.20, 0.35, "b"),  # a b c -> item
        (0.35, 0.40, "c"),  # b c sil -> no item
        (0.40, 0.50, "sil"),
        (0.50, 0.60, "d"),
        (0.60, 0.70, "e"),  # d e f -> item
        (0.70, 0.80, "f"),  # e f | gap | g -> no item
        (0.85, 0.90, "g"),
        (0.90, 1.00, "h"),  # last phone -> no item
    ],
    "u0": [(0.0, 0.1, "x"), (0.1, 0.2, "y"), (0.2, 0.3, "z")],  # y: the only item, first in sort order
}


def test_make_items_phone_and_triphone():
    utt2spk = {"u1": "s1", "u0": "s0"}
    assert make_items(ALIGN, utt2spk, level="phone") == [
        ItemRow("u0", 0.1, 0.2, "y", "x", "z", "s0"),
        ItemRow("u1", 0.20, 0.35, "b", "a", "c", "s1"),
        ItemRow("u1", 0.60, 0.70, "e", "d", "f", "s1"),
    ]
    assert make_items(ALIGN, utt2spk, level="triphone") == [
        ItemRow("u0", 0.0, 0.3, "y", "x", "z", "s0"),
        ItemRow("u1", 0.10, 0.40, "b", "a", "c", "s1"),
        ItemRow("u1", 0.50, 0.80, "e", "d", "f", "s1"),
    ]
    # a label set without "sil" as silence makes the silences ordinary phones
    rows = make_items(ALIGN, utt2spk, level="phone", silences={"nothing"})
    assert ItemRow("u1", 0.10, 0.20, "a", "sil", "b", "s1") in rows


def test_make_items_errors():
    with pytest.raises(DataFormatError, match="u0"):
        make_items(ALIGN, {"u1": "s1"})
    with pytest.raises(ValueError):
        make_items(ALIGN, {"u1": "s1", "u0": "s0"}, level="word")


def test_item_set_take_and_from_rows():
    items = ItemSet.from_rows([("f", 0.0, 1.0, "a", "b", "c", "s"), ("g", 1.0, 2.0, "d", "e", "f", "t")])
    sub = items.take([1])
    assert list(sub) == [ItemRow("g", 1.0, 2.0, "d", "e", "f", "t")]
    assert list(sub.lines) == [3]
