"""A number or a date as Excel displays it under its number format code (ECMA-376 §18.8.31), for the codes sheets and
charts commonly use: fixed decimals, thousands separators, percent, currency and other literals, dates and times.

A code this does not render (fractions, scientific notation, conditions, digit masks, era letters) gives None,
and the caller keeps the plain value: a raw number is still better than a wrong rendering. Month and day names
follow the code's locale tag ([$-407]: "März", "Montag"), in English for a language calendar_names does not know.
"""

import datetime
import decimal
import functools
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from .calendar_names import ENGLISH, CalendarNames, calendar_names

# quoted literal | escaped character | padding or fill character | [bracketed] | General | AM/PM | date part | one char
_TOKEN = re.compile(
    r'"(?P<quoted>[^"]*)"?|\\(?P<escaped>.)|[_*](?P<padding>.)|\[(?P<bracket>[^\]]*)\]|(?P<general>general)'
    r"|(?P<ampm>am/pm|a/p)|(?P<part>y+|m+|d+|h+|s+)|(?P<char>.)",
    re.IGNORECASE | re.DOTALL,
)
_COLOR = re.compile(r"black|blue|cyan|green|magenta|red|white|yellow|color\s*\d+", re.IGNORECASE)
_ELAPSED = re.compile(r"h+|m+|s+", re.IGNORECASE)
_PLACEHOLDERS = "0#?"
_BLANKS = re.compile(r"\s+")
_EPOCH_1900 = datetime.datetime(1899, 12, 30)
_EPOCH_1904 = datetime.datetime(1904, 1, 1)
_LAST_SERIAL = 2958466  # 1 January 10000

Token = tuple[str, str]
Moment = datetime.datetime | datetime.date | datetime.time | datetime.timedelta


class _Unrendered(Exception):
    """The code uses something this module does not render; the caller keeps the plain value."""


def _bracket(content: str) -> list[Token]:
    if content.startswith("$"):  # [$€-407]: a currency symbol and a locale; [$-409]: a locale alone
        symbol, _, locale = content[1:].partition("-")
        return [("locale", locale), ("literal", symbol)]
    if _COLOR.fullmatch(content):
        return []
    if _ELAPSED.fullmatch(content):  # [h]:mm: hours past 24
        return [("elapsed", content.lower())]
    raise _Unrendered  # conditions ([>=1000]), calendars and number systems


@functools.lru_cache(maxsize=256)
def _sections(code: str) -> tuple[tuple[Token, ...], ...]:
    """The code's sections (positive; negative; zero; text), each as tokens."""
    sections: list[tuple[Token, ...]] = []
    tokens: list[Token] = []
    for match in _TOKEN.finditer(code):
        kind, text = next((kind, text) for kind, text in match.groupdict().items() if text is not None)
        if kind == "char" and text == ";":
            sections.append(tuple(tokens))
            tokens = []
        elif kind in ("quoted", "escaped"):
            tokens.append(("literal", text))
        elif kind == "bracket":
            tokens.extend(_bracket(text))
        elif kind != "padding":  # padding and fill only align columns
            tokens.append((kind, text))
    sections.append(tuple(tokens))
    return tuple(sections)


def _general(number: float) -> str:
    return str(int(number)) if number.is_integer() else f"{number:.15g}"


def _half_up(number: float, decimals: int) -> decimal.Decimal | float:
    """Rounded as Excel rounds, halves away from zero (1312500.5 shows as 1,312,501; Python's format gives 1,312,500)
    from the shortest decimal form of the float (2.675 shows as 2.68)."""
    try:
        return decimal.Decimal(repr(number)).quantize(decimal.Decimal(1).scaleb(-decimals), decimal.ROUND_HALF_UP)
    except decimal.InvalidOperation:  # beyond decimal's 28 digits: no half to round
        return number


class _Digits(NamedTuple):
    """A digit pattern such as '#,##0.00' or '0.0#'."""

    grouping: str
    decimals: int
    required_decimals: int  # optional decimals ('#', '?') show only where they are not trailing zeros
    integer_zeros: int

    def render(self, number: float) -> str:
        integer, dot, fraction = f"{_half_up(number, self.decimals):{self.grouping}.{self.decimals}f}".partition(".")
        fraction = fraction[: self.required_decimals] + fraction[self.required_decimals :].rstrip("0")
        if self.integer_zeros == 0 and integer == "0":  # '#.##' shows 0.5 as .5
            integer = ""
        elif not self.grouping:
            integer = integer.zfill(self.integer_zeros)
        return integer + dot + fraction


def _digits(placeholders: str) -> _Digits:
    whole, _, decimals = placeholders.partition(".")
    return _Digits("," if "," in whole else "", len(decimals), len(decimals.rstrip("#?")), whole.count("0"))


def _literal_text(tokens: Sequence[Token]) -> str:
    texts: list[str] = []
    for kind, text in tokens:
        if kind == "locale":  # only a date's names depend on it
            continue
        if kind == "char" and text.isascii() and (text.isalnum() or text in "@.,/?#"):
            raise _Unrendered  # scientific notation, fractions, text placeholders in a number section
        if kind not in ("literal", "char"):
            raise _Unrendered  # a date part in a number section
        texts.append(text)
    return _BLANKS.sub(" ", "".join(texts))


class _NumberSection(NamedTuple):
    """One section of a number code, compiled: literal text around the number's digits."""

    before: str
    digits: Callable[[float], str] | None  # None: the section shows its literal text alone ('"n/a"')
    scale: float  # '%' shows hundredths, a trailing ',' thousands
    after: str

    def render(self, number: float) -> str:
        digits = self.digits(number * self.scale) if self.digits else ""
        return f"{self.before}{digits}{self.after}".strip()


def _number_section(tokens: Sequence[Token]) -> _NumberSection:
    """A section of a number code, for a number made positive where the section writes its own sign."""
    indexes = [i for i, (kind, text) in enumerate(tokens) if kind == "char" and text in _PLACEHOLDERS]
    general = [i for i, (kind, _) in enumerate(tokens) if kind == "general"]
    scale = 100.0 ** sum(1 for token in tokens if token == ("char", "%"))
    if (indexes and general) or len(general) > 1:
        raise _Unrendered
    if general:
        first, last = general[0], general[0] + 1
        return _NumberSection(_literal_text(tokens[:first]), _general, scale, _literal_text(tokens[last:]))
    if not indexes:
        return _NumberSection(_literal_text(tokens), None, scale, "")
    first, last = indexes[0], indexes[-1] + 1
    while tokens[last : last + 1] == (("char", ","),):
        last += 1
    placeholders = "".join(text for _, text in tokens[first:last])
    if any(kind != "char" for kind, _ in tokens[first:last]) or set(placeholders) - set("0#?.,"):
        raise _Unrendered  # digit masks (000-00-0000), scientific notation, fractions
    if placeholders.count(".") > 1:
        raise _Unrendered
    scale /= 1000 ** (len(placeholders) - len(placeholders.rstrip(",")))  # '#,##0,' shows thousands
    digits = _digits(placeholders.rstrip(",")).render
    return _NumberSection(_literal_text(tokens[:first]), digits, scale, _literal_text(tokens[last:]))


@functools.lru_cache(maxsize=256)
def _number_sections(code: str) -> tuple[_NumberSection, ...] | None:
    if code.strip().lower() == "general":
        return None
    try:
        # the fourth section is for text cells
        return tuple(_number_section(section) for section in _sections(code)[:3])
    except _Unrendered:
        return None


def format_number(number: float, code: str) -> str | None:
    """The number as Excel shows it under `code`; None for General (the caller's plain text) and unrendered codes."""
    sections = _number_sections(code)
    if sections is None:
        return None
    number = float(number)
    if number < 0 and len(sections) > 1:  # an explicit negative section writes its own sign or parentheses
        return sections[1].render(-number)
    if number == 0 and len(sections) > 2:
        return sections[2].render(number)
    shown = sections[0].render(abs(number))
    return f"-{shown}" if number < 0 and shown else shown


class _Moment(NamedTuple):
    """A cell's date, time or duration, split the way date codes read it."""

    day: datetime.date | None
    clock: datetime.time
    duration: datetime.timedelta | None

    @classmethod
    def of(cls, moment: Moment) -> "_Moment":
        if isinstance(moment, datetime.timedelta):
            clock = (datetime.datetime.min + datetime.timedelta(seconds=moment.total_seconds() % 86400)).time()
            return cls(None, clock, moment)
        if isinstance(moment, datetime.datetime):
            return cls(moment.date(), moment.time(), None)
        if isinstance(moment, datetime.date):
            return cls(moment, datetime.time(), None)
        return cls(None, moment, None)


def _minute_parts(tokens: Sequence[Token]) -> set[int]:
    """Indexes of the 'm'/'mm' parts that are minutes: right after an hour or right before a second."""
    parts = [(i, text[0].lower()) for i, (kind, text) in enumerate(tokens) if kind in ("part", "elapsed")]
    minutes = set()
    for position, (index, letter) in enumerate(parts):
        previous = parts[position - 1][1] if position else ""
        following = parts[position + 1][1] if position + 1 < len(parts) else ""
        if letter == "m" and len(tokens[index][1]) <= 2 and (previous == "h" or following == "s"):
            minutes.add(index)
    return minutes


def _calendar_part(letter: str, width: int, names: CalendarNames, moment: _Moment) -> str:
    day = moment.day
    if day is None:
        raise _Unrendered  # a calendar part of a time of day or a duration
    if letter == "y":
        return f"{day.year % 100:02d}" if width <= 2 else f"{day.year:04d}"
    if letter == "m":
        month = names.months[day.month - 1]
        short = names.short_months[day.month - 1]
        return month[0] if width >= 5 else {1: str(day.month), 2: f"{day.month:02d}", 3: short}.get(width, month)
    weekday = day.weekday()
    short = names.short_weekdays[weekday]
    return {1: str(day.day), 2: f"{day.day:02d}", 3: short}.get(width, names.weekdays[weekday])


def _clock_part(letter: str, width: int, twelve_hour: bool, moment: _Moment) -> str:
    clock = moment.clock
    value = {"h": (clock.hour % 12 or 12) if twelve_hour else clock.hour, "m": clock.minute, "s": clock.second}[letter]
    return f"{value:0{min(width, 2)}d}"


def _elapsed_part(text: str, moment: _Moment) -> str:
    if moment.duration is None:
        raise _Unrendered
    seconds = int(moment.duration.total_seconds())
    return f"{seconds // {'h': 3600, 'm': 60, 's': 1}[text[0]]:0{len(text)}d}"


def _meridiem(text: str, moment: _Moment) -> str:
    return text.split("/")[moment.clock.hour >= 12]  # AM/PM, am/pm, A/P


def _second_fraction(width: int, moment: _Moment) -> str:
    return "." + f"{moment.clock.microsecond:06d}"[:width]


def _literal(text: str, moment: _Moment) -> str:
    return text


def _date_section(tokens: Sequence[Token]) -> list[Callable[[_Moment], str]]:
    """The section compiled: one function per part, each showing its part of a moment."""
    twelve_hour = any(kind == "ampm" for kind, _ in tokens)
    names = next((calendar_names(text) for kind, text in tokens if kind == "locale" and text), ENGLISH)
    minutes = _minute_parts(tokens)
    steps: list[Callable[[_Moment], str]] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        index += 1
        letter = text[:1].lower()
        if kind == "part" and (letter in "hs" or index - 1 in minutes):
            steps.append(functools.partial(_clock_part, letter, len(text), twelve_hour))
        elif kind == "part":
            steps.append(functools.partial(_calendar_part, letter, len(text), names))
        elif kind == "elapsed":
            steps.append(functools.partial(_elapsed_part, text))
        elif kind == "ampm":
            steps.append(functools.partial(_meridiem, text))
        elif kind == "locale":  # read above: it names the months and weekdays
            continue
        elif (kind, text) == ("char", ".") and tokens[index : index + 1] == (("char", "0"),):
            width = next((n for n, token in enumerate(tokens[index:]) if token != ("char", "0")), len(tokens) - index)
            # 'ss.00': hundredths of a second
            steps.append(functools.partial(_second_fraction, width))
            index += width
        elif kind == "literal" or (kind == "char" and not (text.isascii() and (text.isalnum() or text in "@#?%"))):
            steps.append(functools.partial(_literal, text))
        else:
            raise _Unrendered  # General, a locale's era or calendar letter
    return steps


@functools.lru_cache(maxsize=256)
def _date_steps(code: str) -> list[Callable[[_Moment], str]] | None:
    try:
        return _date_section(_sections(code)[0])
    except _Unrendered:
        return None


def format_moment(moment: Moment, code: str) -> str | None:
    """A date, time or duration as Excel shows it under the date code `code`; None for a code it does not render."""
    steps = _date_steps(code)
    if steps is None:
        return None
    parts = _Moment.of(moment)
    try:
        return " ".join("".join(step(parts) for step in steps).split())
    except _Unrendered:
        return None


def is_date_code(code: str) -> bool:
    """Whether `code` shows its number as a date or a time (charts keep dates as serial numbers with such a code)."""
    try:
        return any(kind in ("part", "elapsed") for kind, _ in _sections(code)[0])
    except _Unrendered:
        return False


def serial_moment(serial: float, date1904: bool = False) -> datetime.datetime | None:
    """The moment an Excel serial number stands for; None outside Excel's calendar (years 1900 to 9999)."""
    if not 0 <= serial < _LAST_SERIAL:
        return None
    if date1904:
        return _EPOCH_1904 + datetime.timedelta(days=serial)
    # Excel counts a 29 February 1900 that never was: the serials before it start a day later
    return _EPOCH_1900 + datetime.timedelta(days=serial + (serial < 60))
