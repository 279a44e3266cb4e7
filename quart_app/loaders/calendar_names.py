"""Month and weekday names for the locale tag of a spreadsheet's date format ([$-407] is German): a German sheet shows
"März", and a question about März must find it. English for a locale not listed here."""

import re
from typing import NamedTuple


class CalendarNames(NamedTuple):
    """Names as Windows' locale tables give them to Excel (mmmm, mmm, dddd, ddd); weeks start on Monday."""

    months: tuple[str, ...]
    short_months: tuple[str, ...]
    weekdays: tuple[str, ...]
    short_weekdays: tuple[str, ...]


def _names(months: str, short_months: str, weekdays: str, short_weekdays: str) -> CalendarNames:
    return CalendarNames(
        tuple(months.split()), tuple(short_months.split()), tuple(weekdays.split()), tuple(short_weekdays.split())
    )


ENGLISH = _names(
    "January February March April May June July August September October November December",
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "Mon Tue Wed Thu Fri Sat Sun",
)
_BY_LANGUAGE = {
    "de": _names(
        "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
        "Jan Feb Mrz Apr Mai Jun Jul Aug Sep Okt Nov Dez",
        "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag",
        "Mo Di Mi Do Fr Sa So",
    ),
    "fr": _names(
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
        "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.",
        "lundi mardi mercredi jeudi vendredi samedi dimanche",
        "lun. mar. mer. jeu. ven. sam. dim.",
    ),
    "es": _names(
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
        "ene. feb. mar. abr. may. jun. jul. ago. sept. oct. nov. dic.",
        "lunes martes miércoles jueves viernes sábado domingo",
        "lu. ma. mi. ju. vi. sá. do.",
    ),
    "it": _names(
        "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
        "gen feb mar apr mag giu lug ago set ott nov dic",
        "lunedì martedì mercoledì giovedì venerdì sabato domenica",
        "lun mar mer gio ven sab dom",
    ),
    "nl": _names(
        "januari februari maart april mei juni juli augustus september oktober november december",
        "jan feb mrt apr mei jun jul aug sep okt nov dec",
        "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag",
        "ma di wo do vr za zo",
    ),
    "pt": _names(
        "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
        "jan fev mar abr mai jun jul ago set out nov dez",
        "segunda-feira terça-feira quarta-feira quinta-feira sexta-feira sábado domingo",
        "seg ter qua qui sex sáb dom",
    ),
}
# Windows' primary language ids (the low 10 bits of an LCID): 0x407 is de-DE, 0x807 de-CH, 0x40C fr-FR
_PRIMARY_LANGUAGES = {0x07: "de", 0x0C: "fr", 0x0A: "es", 0x10: "it", 0x13: "nl", 0x16: "pt"}
# an LCID has three hex digits at least ('de' is a language, not 0xDE)
_LCID = re.compile(r"[0-9a-f]{3,8}", re.IGNORECASE)
_LANGUAGE_TAG = re.compile(r"([a-z]{2,3})(?:[-_].*)?", re.IGNORECASE)


def calendar_names(locale: str) -> CalendarNames:
    """The names for a format's locale tag: its LCID in hex ('407', '1010407' with a calendar in the high bits) or a
    language tag ('de-DE'); English for any other."""
    if _LCID.fullmatch(locale):
        language = _PRIMARY_LANGUAGES.get(int(locale, 16) & 0x3FF, "")
    else:
        language = match[1].lower() if (match := _LANGUAGE_TAG.fullmatch(locale)) else ""
    return _BY_LANGUAGE.get(language, ENGLISH)
