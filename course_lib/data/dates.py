"""A character-level translation task: dates written in many ways → ISO dates ``YYYY-MM-DD``.

Each example is a random calendar date between 1900-01-01 and 2099-12-31 written in one of
the surface forms of :data:`DATE_FORMATS`, paired with the same date in ISO 8601:

    ========================  =================================================================
    format                    example (Wednesday 3 March 1999)
    ========================  =================================================================
    ``ordinal_of``            the 3rd of March 1999
    ``month_day_year``        March 3, 1999
    ``day_month_year``        3 March 1999
    ``day_mon_year``          03-Mar-1999
    ``slash_dmy``             03/03/1999   (day/month/year, the European order)
    ``dotted_ymd``            1999.03.03
    ``weekday_short``         Wed 3 Mar 99 (two-digit year)
    ``weekday_long``          Wednesday, March 3, 1999
    ``spelled``               the third of march nineteen ninety-nine
    ``spelled_weekday``       wednesday the third of march nineteen ninety-nine
    ========================  =================================================================

**Two-digit years.** ``weekday_short`` writes the year with two digits and follows the pivot
of :func:`time.strptime`'s ``%y``: 69–99 mean 1969–1999 and 00–68 mean 2000–2068. Examples in
this format are drawn from 1969-01-01 … 2068-12-31 only, so every source has exactly one
reading.

**Spelled years.** 1900 is "nineteen hundred", 1905 "nineteen oh five", 1999 "nineteen
ninety-nine"; 2000 is "two thousand", 2007 "two thousand seven"; from 2010 on, "twenty ten",
"twenty twenty-four". Weekday names are always the true weekday of the date.

**Case.** Every source is written as above, in lower case or in upper case (probabilities
1/2, 1/4, 1/4), so "MARCH 3, 1999" and "march 3, 1999" occur too; the target does not change.

Sources are 10 (``1999.03.03``) to 64 characters long (the longest spelled form,
``wednesday the twenty-seventh of september nineteen seventy-eight``), targets always 10.
Everything is drawn from ``random.Random(seed)``: the same seed gives the same examples on
every machine, whatever the global random state.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

ONES = ("", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth", "twenty": "twentieth", "thirty": "thirtieth",
}  # fmt: skip

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2099, 12, 31)
TWO_DIGIT_FIRST_DAY, TWO_DIGIT_LAST_DAY = date(1969, 1, 1), date(2068, 12, 31)


def number_words(n: int) -> str:
    """0 < n < 100 in words: 7 → "seven", 21 → "twenty-one", 40 → "forty"."""
    if not 0 < n < 100:
        raise ValueError(f"only numbers from 1 to 99 are spelled, got {n}")
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (f"-{ONES[ones]}" if ones else "")


def ordinal_words(n: int) -> str:
    """1 ≤ n ≤ 31 as an ordinal in words: 3 → "third", 21 → "twenty-first", 30 → "thirtieth"."""
    words = number_words(n)
    head, _, last = words.rpartition("-")
    last = ORDINAL_WORDS.get(last, last + "th")
    return f"{head}-{last}" if head else last


def ordinal_suffix(n: int) -> str:
    """1 → "1st", 2 → "2nd", 3 → "3rd", 11 → "11th", 22 → "22nd"."""
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def year_words(year: int) -> str:
    """A year 1900–2099 as spoken: "nineteen oh five", "two thousand seven", "twenty ten"."""
    if not FIRST_DAY.year <= year <= LAST_DAY.year:
        raise ValueError(f"only years from 1900 to 2099 are spelled, got {year}")
    century, rest = divmod(year, 100)
    if century == 20 and rest < 10:
        return "two thousand" + (f" {ONES[rest]}" if rest else "")
    head = number_words(century)
    if rest == 0:
        return f"{head} hundred"
    return f"{head} oh {ONES[rest]}" if rest < 10 else f"{head} {number_words(rest)}"


def _month(d: date) -> str:
    return MONTHS[d.month - 1]


def _weekday(d: date) -> str:
    return WEEKDAYS[d.weekday()]


FORMATTERS = {
    "ordinal_of": lambda d: f"the {ordinal_suffix(d.day)} of {_month(d)} {d.year}",
    "month_day_year": lambda d: f"{_month(d)} {d.day}, {d.year}",
    "day_month_year": lambda d: f"{d.day} {_month(d)} {d.year}",
    "day_mon_year": lambda d: f"{d.day:02d}-{_month(d)[:3]}-{d.year}",
    "slash_dmy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    "dotted_ymd": lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    "weekday_short": lambda d: f"{_weekday(d)[:3]} {d.day} {_month(d)[:3]} {d.year % 100:02d}",
    "weekday_long": lambda d: f"{_weekday(d)}, {_month(d)} {d.day}, {d.year}",
    "spelled": lambda d: f"the {ordinal_words(d.day)} of {_month(d).lower()} {year_words(d.year)}",
    "spelled_weekday": lambda d: (
        f"{_weekday(d).lower()} the {ordinal_words(d.day)} of {_month(d).lower()} {year_words(d.year)}"
    ),
}
"""Format name → function writing a :class:`datetime.date` in that form."""

DATE_FORMATS: tuple[str, ...] = tuple(FORMATTERS)
"""The names of the surface forms, in the order of the table above."""

TWO_DIGIT_YEAR_FORMATS = frozenset({"weekday_short"})


def format_date(d: date, date_format: str) -> str:
    """Write ``d`` in one of :data:`DATE_FORMATS` (before any change of case)."""
    if date_format not in FORMATTERS:
        raise ValueError(f"unknown date format {date_format!r}; choose from {DATE_FORMATS}")
    return FORMATTERS[date_format](d)


def _random_day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def date_pairs(n: int, seed: int = 0, formats: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``n`` random dates as ``(source, target)`` pairs, e.g. ``("the 3rd of March 1999", "1999-03-03")``.

    Each example picks a format uniformly from ``formats``, then a day uniformly from
    1900–2099 (1969–2068 for a two-digit year), then a case (as written, lower, upper).

    Args:
        n: the number of pairs.
        seed: seeds the ``random.Random`` that draws everything.
        formats: names from :data:`DATE_FORMATS`; ``None`` uses all of them.
    """
    if n < 0:
        raise ValueError(f"n must be at least 0, got {n}")
    formats = DATE_FORMATS if formats is None else tuple(formats)
    if not formats:
        raise ValueError("give at least one date format")
    unknown = [f for f in formats if f not in FORMATTERS]
    if unknown:
        raise ValueError(f"unknown date formats {unknown}; choose from {DATE_FORMATS}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        date_format = rng.choice(formats)
        if date_format in TWO_DIGIT_YEAR_FORMATS:
            day = _random_day(rng, TWO_DIGIT_FIRST_DAY, TWO_DIGIT_LAST_DAY)
        else:
            day = _random_day(rng, FIRST_DAY, LAST_DAY)
        source = format_date(day, date_format)
        case = rng.random()
        if case >= 0.75:
            source = source.upper()
        elif case >= 0.5:
            source = source.lower()
        pairs.append((source, day.isoformat()))
    return pairs
