"""TextGrid reading: long and short text formats against hand-written expected tiers."""

import pytest

from speechunits.data.textgrid import parse_textgrid, read_textgrid, tier_alignment
from speechunits.errors import DataFormatError

LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.5
tiers? <exists>
size = 3
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.5
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.9
            text = "say ""hi"""
        intervals [3]:
            xmin = 0.9
            xmax = 1.5
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.5
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.35
            text = "S"
        intervals [3]:
            xmin = 0.35
            xmax = 0.9
            text = "EY1"
        intervals [4]:
            xmin = 0.9
            xmax = 1.2
            text = "sil"
        intervals [5]:
            xmin = 1.2
            xmax = 1.5
            text = ""
    item [3]:
        class = "TextTier"
        name = "events"
        xmin = 0
        xmax = 1.5
        points: size = 1
        points [1]:
            number = 0.6
            mark = "click"
'''

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
1.5
<exists>
3
"IntervalTier"
"words"
0
1.5
3
0
0.2
""
0.2
0.9
"say ""hi"""
0.9
1.5
""
"IntervalTier"
"phones"
0
1.5
5
0
0.2
""
0.2
0.35
"S"
0.35
0.9
"EY1"
0.9
1.2
"sil"
1.2
1.5
""
"TextTier"
"events"
0
1.5
1
0.6
"click"
'''

PHONES = [(0, 0.2, ""), (0.2, 0.35, "S"), (0.35, 0.9, "EY1"), (0.9, 1.2, "sil"), (1.2, 1.5, "")]


@pytest.mark.parametrize("text", [LONG, SHORT], ids=["long", "short"])
def test_both_formats_give_the_hand_written_tiers(text):
    grid = parse_textgrid(text)
    assert (grid.xmin, grid.xmax) == (0, 1.5)
    assert [t.name for t in grid.tiers] == ["words", "phones", "events"]
    words = grid.tier("WORDS")  # names match case-insensitively
    assert [(i.start, i.end, i.text) for i in words.intervals] == [(0, 0.2, ""), (0.2, 0.9, 'say "hi"'), (0.9, 1.5, "")]
    assert [(i.start, i.end, i.text) for i in grid.tier("phones").intervals] == PHONES
    events = grid.tier("events")
    assert events.kind == "point" and [(p.time, p.text) for p in events.points] == [(0.6, "click")]


def test_tier_alignment_maps_silences_and_strips_stress():
    tier = parse_textgrid(LONG).tier("phones")
    # "" and "sil" are silence; the two adjacent silences at the end merge into one
    assert tier_alignment(tier) == [(0, 0.2, "sil"), (0.2, 0.35, "S"), (0.35, 0.9, "EY1"), (0.9, 1.5, "sil")]
    assert [p for _, _, p in tier_alignment(tier, strip_stress=True)] == ["sil", "S", "EY", "sil"]
    with pytest.raises(DataFormatError, match="point tier"):
        tier_alignment(parse_textgrid(LONG).tier("events"))


def test_files_in_utf16_and_utf8_bom(tmp_path):
    for name, encoding in (("a.TextGrid", "utf-16"), ("b.TextGrid", "utf-8-sig")):
        (tmp_path / name).write_bytes(SHORT.replace('"S"', '"ʃ"').encode(encoding))
        grid = read_textgrid(tmp_path / name)
        assert grid.tier("phones").intervals[1].text == "ʃ"


def test_missing_tier_names_the_tiers_there_are(tmp_path):
    path = tmp_path / "x.TextGrid"
    path.write_text(LONG)
    with pytest.raises(DataFormatError, match=r"no tier named 'segments' \(tiers: 'words', 'phones', 'events'\)") as e:
        read_textgrid(path).tier("segments")
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "text,message",
    [
        (SHORT.replace('"TextGrid"', '"Sound"', 1), "not a TextGrid"),
        ("hello", "file ends"),
        (SHORT.rsplit("\n", 4)[0], "file ends where"),  # truncated inside the last tier
        (SHORT.replace("0.35\n0.9\n", "0.9\n0.35\n", 1), r"ends \(0.35\) before it starts \(0.9\)"),
        (SHORT.replace('"IntervalTier"\n"phones"', '"SoundTier"\n"phones"'), "unknown tier class"),
        (SHORT.replace("\n5\n0\n", '\n"five"\n0\n', 1), "expected number of intervals"),
    ],
)
def test_malformed_files_raise_with_the_problem(text, message):
    with pytest.raises(DataFormatError, match=message):
        parse_textgrid(text, "x.TextGrid")


def test_binary_format_is_refused(tmp_path):
    path = tmp_path / "b.TextGrid"
    path.write_bytes(b"ooBinaryFile\x08TextGrid\x00\x00")
    with pytest.raises(DataFormatError, match="binary"):
        read_textgrid(path)


def test_errors_name_the_line(tmp_path):
    path = tmp_path / "x.TextGrid"
    path.write_text(LONG.replace('xmax = 0.35\n            text = "S"', 'xmax = 0.35\n            text = S'))
    with pytest.raises(DataFormatError) as e:
        read_textgrid(path)
    lines = LONG.splitlines()
    line_of_next = next(i for i, ln in enumerate(lines, 1) if ln.strip() == "intervals [3]:" and i > 40) + 1
    assert e.value.line == line_of_next  # the first value after the broken "text = S" line
