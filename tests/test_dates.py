"""Tests of course_lib.data.dates (dates in many surface forms → ISO dates).

Oracle: ``datetime.strptime`` for the formats it can read (its ``%y`` pivot for two-digit
years), and for the spelled forms a reader written here from number words; weekdays from
``date.weekday()``.
"""

import re
from collections import Counter
from datetime import date, datetime

import pytest

from course_lib.data.dates import DATE_FORMATS, date_pairs, format_date, ordinal_words, year_words

STRPTIME = {
    "month_day_year": "%B %d, %Y",
    "day_month_year": "%d %B %Y",
    "day_mon_year": "%d-%b-%Y",
    "slash_dmy": "%d/%m/%Y",
    "dotted_ymd": "%Y.%m.%d",
    "weekday_short": "%a %d %b %y",
    "weekday_long": "%A, %B %d, %Y",
}
UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
    "sixteen seventeen eighteen nineteen".split()
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fifth": 5, "eighth": 8, "ninth": 9, "twelfth": 12,
            "twentieth": 20, "thirtieth": 30}
MONTHS = "january february march april may june july august september october november december".split()


def number(words: str) -> int:
    """ "twenty-one" → 21, "seven" → 7."""
    total = 0
    for word in words.split("-"):
        total += TENS[word] if word in TENS else UNITS.index(word)
    return total


def ordinal(words: str) -> int:
    """ "twenty-first" → 21, "fourth" → 4."""
    *head, last = words.split("-")
    value = ORDINALS[last] if last in ORDINALS else number(last.removesuffix("th"))
    return value + (number(head[0]) if head else 0)


def spoken_year(words: list[str]) -> int:
    """ "nineteen oh five", "two thousand seven", "twenty ten", "nineteen hundred"."""
    if words[:2] == ["two", "thousand"]:
        return 2000 + (number(words[2]) if len(words) > 2 else 0)
    century = number(words[0]) * 100
    if words[1] == "hundred":
        return century
    return century + number(words[-1])


def read_date(source: str, date_format: str) -> tuple[date, str | None]:
    """The date written in ``source`` and the weekday name it mentions (None if it has none)."""
    if date_format in STRPTIME:
        weekday = source.split()[0].rstrip(",").lower() if "weekday" in date_format else None
        return datetime.strptime(source, STRPTIME[date_format]).date(), weekday
    words = source.lower().split()
    if date_format == "ordinal_of":
        _, day, _, month, year = words
        return date(int(year), MONTHS.index(month) + 1, int(re.sub(r"\D", "", day))), None
    weekday = words.pop(0) if date_format == "spelled_weekday" else None
    _, day, _, month, *year = words
    return date(spoken_year(year), MONTHS.index(month) + 1, ordinal(day)), weekday


def test_examples_of_every_format():
    day = date(1999, 3, 3)
    assert [format_date(day, f) for f in DATE_FORMATS] == [
        "the 3rd of March 1999", "March 3, 1999", "3 March 1999", "03-Mar-1999", "03/03/1999",
        "1999.03.03", "Wed 3 Mar 99", "Wednesday, March 3, 1999", "the third of march nineteen ninety-nine",
        "wednesday the third of march nineteen ninety-nine",
    ]  # fmt: skip
    assert format_date(date(2024, 12, 22), "ordinal_of") == "the 22nd of December 2024"
    assert format_date(date(2011, 1, 11), "ordinal_of") == "the 11th of January 2011"
    assert [ordinal_words(d) for d in (1, 2, 3, 4, 11, 12, 20, 21, 30, 31)] == [
        "first", "second", "third", "fourth", "eleventh", "twelfth", "twentieth", "twenty-first",
        "thirtieth", "thirty-first",
    ]  # fmt: skip
    assert [year_words(y) for y in (1900, 1905, 1999, 2000, 2007, 2010, 2024)] == [
        "nineteen hundred", "nineteen oh five", "nineteen ninety-nine", "two thousand", "two thousand seven",
        "twenty ten", "twenty twenty-four",
    ]  # fmt: skip


def test_every_source_reads_back_as_its_target():
    pairs = date_pairs(3000, seed=5)
    for date_format in DATE_FORMATS:
        for source, target in date_pairs(200, seed=1, formats=[date_format]):
            day, weekday = read_date(source, date_format)
            assert day.isoformat() == target, (source, target)
            if weekday is not None:
                assert day.strftime("%A").lower().startswith(weekday), (source, target)
    for _, target in pairs:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", target)
        assert date(1900, 1, 1) <= date.fromisoformat(target) <= date(2099, 12, 31)


def test_two_digit_years_are_unambiguous():
    years = [int(target[:4]) for _, target in date_pairs(2000, seed=2, formats=["weekday_short"])]
    assert 1969 <= min(years) and max(years) <= 2068
    assert min(years) < 1975 and max(years) > 2060  # the whole window is used


def test_determinism_mixture_and_case():
    assert date_pairs(50, seed=3) == date_pairs(50, seed=3)
    assert date_pairs(50, seed=3) != date_pairs(50, seed=4)
    pairs = date_pairs(4000, seed=0)
    years = [int(target[:4]) for _, target in pairs]
    assert min(years) < 1905 and max(years) > 2094
    sources = [source for source, _ in pairs]
    assert sum(s.isupper() for s in sources) > 700
    assert sum(s != s.lower() and not s.isupper() for s in sources) > 700
    lengths = [len(source) for source in sources]
    assert min(lengths) == 10 and 55 <= max(lengths) <= 64
    counts = Counter(len(s) // 10 for s in sources)
    assert all(counts[k] > 20 for k in range(1, 6))  # every length from 10 to 59 occurs often


def test_formats_filter_and_errors():
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", s) for s, _ in date_pairs(30, formats=["slash_dmy"]))
    assert date_pairs(0) == []
    with pytest.raises(ValueError, match="unknown date formats"):
        date_pairs(5, formats=["us_slash"])
    with pytest.raises(ValueError, match="at least one"):
        date_pairs(5, formats=[])
