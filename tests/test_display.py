"""Human output helpers (issue 12): display width, tables that line up with Chinese in them,
local times, durations and sizes in both languages."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from wcwidth import wcswidth

from daemon import i18n
from daemon.display import Column, duration, fit, local_time, pad, size, table, width


@pytest.fixture
def zh():
    i18n.set_language("zh")
    yield
    i18n.set_language("en")


def test_width_counts_cells_not_characters() -> None:
    assert width("2026-0042") == 9
    assert width("人社监察〔2026〕12号") == 20  # 5 CJK and 2 full-width brackets (14 cells) + 6 digits
    assert width("某某建筑公司") == 12
    assert width("e\u0301") == 1  # a combining accent takes no cell
    assert pad("张伟", 6) == "张伟  " and pad("7", 3, ">") == "  7"


def test_fit_cuts_by_cells_with_an_ellipsis() -> None:
    assert fit("short", 10) == "short"
    cut = fit("某某建筑工程有限责任公司", 9)
    assert cut.endswith("…") and width(cut) <= 9 and cut.startswith("某某建筑")
    assert width(fit("abcdefghijklmnop", 8)) == 8


def _columns(text: str) -> list[list[str]]:
    """Split each line of a table at the header's column starts, measured in display cells
    (a column starts after two spaces; a header may hold one space, as in "open alerts")."""
    lines = text.splitlines()
    header = lines[0]
    starts = [0] + [wcswidth(header[:m.end()]) for m in re.finditer(r"  +(?=\S)", header)]
    return [[_cut(line, a, b) for a, b in zip(starts, starts[1:] + [10_000])] for line in lines]


def _cut(line: str, a: int, b: int) -> str:
    out, used = "", 0
    for ch in line:
        w = wcswidth(ch)
        if a <= used < b:
            out += ch
        used += w
    return out


def test_a_table_with_chinese_and_ascii_lines_up_by_display_width() -> None:
    rows = [["人社监察〔2026〕12号", "某某建筑公司", 3], ["2026-0042", "ACME Ltd", 12],
            ["城管〔2026〕7号", "张伟", 140]]
    text = table([Column("case no"), Column("party"), Column("footage", align=">")], rows, empty="none")
    lines = text.splitlines()
    assert len(lines) == 4
    # every line's columns start at the same display cell: the header's
    cols = _columns(text)
    for line_cells, row in zip(cols[1:], rows, strict=True):
        assert [c.strip() for c in line_cells] == [str(v) for v in row]
    # each column is as wide as its widest cell, in cells (not characters)
    assert wcswidth(cols[1][0]) == wcswidth("人社监察〔2026〕12号") + 2
    # right-aligned numbers end in the same cell
    ends = {wcswidth(line) for line in lines}
    assert len(ends) == 1, lines


def test_a_long_cell_is_cut_never_wrapped() -> None:
    text = table([Column("party", max_width=10), Column("n")], [["某某建筑工程有限责任公司第三分公司", 1]], empty="-")
    header, row = text.splitlines()
    assert "…" in row and wcswidth(row.split("  ")[0]) <= 10


def test_untrusted_cells_are_escaped() -> None:
    text = table([Column("file")], [["a\nb\x1b[2J.MP4"]], empty="-")
    assert text.splitlines() == ["file", "a\\nb\\u001b[2J.MP4"]


def test_an_empty_table_says_so(zh) -> None:
    assert table([Column("x")], [], empty=i18n._("no footage")) == "没有录像"


def test_local_time_in_the_station_time_zone() -> None:
    assert local_time("2026-11-26T16:00:00+00:00", "Asia/Shanghai") == "2026-11-27 00:00"
    assert local_time("2026-11-27T00:30:05+00:00", "Asia/Shanghai", seconds=True) == "2026-11-27 08:30:05"
    assert local_time(datetime(2026, 11, 27, 0, 30, tzinfo=timezone.utc), "UTC") == "2026-11-27 00:30"
    assert local_time("2026-11-27T00:30:00", "Asia/Shanghai") == "2026-11-27 08:30"  # no offset: UTC
    assert local_time(None, "UTC") == "-" and local_time(None, "UTC", missing="(open)") == "(open)"
    assert local_time("garbage\x1b", "UTC") == "garbage\\u001b"


def test_durations_in_both_languages(zh) -> None:
    assert duration(2 * 86400 + 3 * 3600 + 59) == "2 天 3 小时"
    assert duration(312) == "5 分 12 秒"
    assert duration(3600) == "1 小时"
    i18n.set_language("en")
    assert duration(2 * 86400 + 3 * 3600) == "2 d 3 h"
    assert duration(0) == "0 s" and duration(-90) == "-1 min 30 s" and duration(None) == "-"


def test_human_sizes() -> None:
    assert size(512) == "512 B"
    assert size(1288490189) == "1.2 GiB"
    assert size(512 * 1024 * 1024) == "512 MiB"
    assert size(34356940295) == "32 GiB"
    assert size(1536) == "1.5 KiB" and size(None) == "-"


def test_seconds_never_shows_negative_zero_and_translates_its_unit() -> None:
    from daemon import i18n
    from daemon.display import seconds

    assert seconds(-0.04) == "0.0 s" and seconds(-0.04, sign=True) == "+0.0 s" and seconds(-75.0) == "-75.0 s"
    assert seconds(None, missing="n/r") == "n/r"
    i18n.set_language("zh")
    try:
        assert seconds(-75.04, sign=True) == "-75.0 秒"
    finally:
        i18n.set_language("en")
