"""Display text: counts in words, trend arrows and tooltips that stay plain text."""

from __future__ import annotations

from churndesk.ui import formatting


def test_counts_use_the_singular_only_for_one() -> None:
    assert formatting.count(1, "alert") == "1 alert"
    assert formatting.count(0, "alert") == "0 alerts"
    assert formatting.count(1204, "new alert") == "1,204 new alerts"
    assert formatting.count(2, "match", "matches") == "2 matches"


def test_trend_arrows_ignore_changes_under_a_point() -> None:
    assert formatting.trend(80, 70) == "▲ 10"
    assert formatting.trend(60, 70.4) == "▼ 10"
    assert formatting.trend(70.5, 70) == "–"
    assert formatting.trend(None, 70) == ""


def test_tooltips_show_markup_literally() -> None:
    assert "&lt;b&gt;x&lt;/b&gt;" in formatting.plain_tooltip("<b>x</b>")


def test_durations_round_to_the_second_and_never_show_sixty_or_zero_seconds() -> None:
    assert formatting.duration(0.4) == "under a second"
    assert formatting.duration(1.5) == "2 s"
    assert formatting.duration(59.6) == "1 min"
    assert formatting.duration(119.6) == "2 min"
    assert formatting.duration(93.4) == "1 min 33 s"
