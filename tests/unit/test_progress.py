"""Progress helpers: throttling to whole percentages without losing a step, and stages."""

from __future__ import annotations

from churndesk.progress import Throttled, stage, step_name


def test_throttled_forwards_whole_percentages_only() -> None:
    seen: list[tuple[float, str]] = []
    report = Throttled(lambda fraction, text: seen.append((fraction, text)))
    for i in range(1000):
        report(i / 1000, f"Reading: {i} rows")
    assert len(seen) == 100
    assert [round(f * 100) for f, _ in seen] == list(range(100))


def test_throttled_lets_a_new_step_through_within_the_same_percentage() -> None:
    seen: list[str] = []
    report = Throttled(lambda fraction, text: seen.append(text))
    report(0.300, "Read 1,000 rows")
    report(0.301, "Read 1,001 rows")  # same step, same percentage: dropped
    report(0.302, "Saving 1,001 customers")  # a new step: shown at once
    report(0.303, "Saving 1,001 customers")
    assert seen == ["Read 1,000 rows", "Saving 1,001 customers"]


def test_stage_maps_a_step_onto_its_part_of_the_bar() -> None:
    seen: list[float] = []
    writing = stage(lambda fraction, text: seen.append(fraction), 0.5, 0.9)
    rebuild = stage(writing, 0.25, 1.0)
    for fraction in (0.0, 0.5, 1.0):
        rebuild(fraction, "Rebuilding")
    assert [round(f, 3) for f in seen] == [0.6, 0.75, 0.9]


def test_a_step_is_named_by_the_first_word_of_its_texts() -> None:
    assert step_name("Reading big.csv: 1,000 rows (0 rejected)") == "Reading"
    assert step_name("Saving customers: 5 of 9") == step_name("Saving 9 customers")
    assert step_name("") == ""
