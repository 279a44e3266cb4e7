"""Western (cp1252) or Central European (cp1250, ISO-8859-2) code page, judged by which reading spells a language.

charset-normalizer cannot tell these code pages apart in a short text (no language is recognised, every candidate
has zero chaos) and returned cp1250 first: a Latin-1 "Café crème" became "Café crčme". The bytes above 0x7F are
read in each code page, and the reading whose letters best fit one language's alphabet wins.
"""

import re
import unicodedata

from charset_normalizer.utils import is_multi_byte_encoding

# in order of preference when two readings fit equally well (the same letters in both, or too few to tell)
_CANDIDATES = ("cp1252", "cp1250", "iso8859_2")
_ASCII = bytes(range(0x80))
# share of bytes above 0x7F that Western and Central European text stays under; Cyrillic, Greek or CJK text is above
_MAX_LATIN_HIGH_SHARE = 0.2
_HIGH_BYTE_RUN = re.compile(rb"[\x80-\xff]+")
_ASCII_LETTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TWO_ASCII_LETTERS = re.compile(rb"[A-Za-z]{2}")
# the accented letters each language writes (lower case): the languages of the candidates and of other Latin code pages
# charset-normalizer may rightly guess, which keep their reading when it fits as well
_ALPHABETS = (
    "àâæçéèêëîïôœùûüÿ",  # French
    "äöüß",  # German
    "áéíóúñü¡¿",  # Spanish
    "áâãàçéêíóôõú",  # Portuguese
    "àèéìíòóùú",  # Italian
    "àçèéíïòóúü·",  # Catalan
    "éèëïöüáóú",  # Dutch
    "æøåéó",  # Danish, Norwegian
    "åäöéšž",  # Swedish, Finnish
    "áéíóúýþðæö",  # Icelandic
    "áčďéěíňóřšťúůýž",  # Czech
    "áäčďéíĺľňóôŕšťúýž",  # Slovak
    "ąćęłńóśźż",  # Polish
    "áéíóöőúüű",  # Hungarian
    "čćđšžäöüß",  # Slovene, Croatian, Bosnian (German loans are common)
    "ăâîşţ",  # Romanian
    "çğıöşüâî",  # Turkish (cp1254)
    "äöõüšž",  # Estonian (cp1257)
    "āčēģīķļņšūž",  # Latvian (cp1257)
    "ąčęėįšųūž",  # Lithuanian (cp1257)
    "çë",  # Albanian
    "ĉĝĥĵŝŭ",  # Esperanto (ISO-8859-3)
)
# punctuation any of these languages uses; symbols such as ± ¶ ¹ are what a wrong code page makes of letters
# (no-break space, typographic quotes, dashes, ellipsis, euro, bullet, degree, section)
_PUNCTUATION = frozenset("\xa0\u201e\u201c\u201d\u2018\u2019«»\u2039\u203a\u2013\u2014…€•°§")


def _reading(byte_counts: dict[int, int], encoding: str) -> dict[str, int] | None:
    """Each non-ASCII character of the text read in `encoding` with its count; None when a byte is undefined there."""
    characters: dict[str, int] = {}
    for byte, count in byte_counts.items():
        try:
            character = bytes((byte,)).decode(encoding).lower()
        except UnicodeDecodeError:
            return None
        characters[character] = characters.get(character, 0) + count
    return characters


def _fit(characters: dict[str, int]) -> float:
    """Share of the non-ASCII characters that are punctuation or letters of the best-fitting language."""
    total = sum(characters.values())
    punctuation = sum(count for character, count in characters.items() if character in _PUNCTUATION)
    letters = max(
        sum(count for character, count in characters.items() if character in alphabet) for alphabet in _ALPHABETS
    )
    return (punctuation + letters) / total


def _is_latin_script(characters: dict[str, int]) -> bool:
    letters = {character: count for character, count in characters.items() if character.isalpha()}
    latin = sum(count for character, count in letters.items() if unicodedata.name(character, "").startswith("LATIN"))
    return latin * 2 > sum(letters.values())


def _accents_inside_ascii_words(data: bytes) -> bool:
    """Every run of non-ASCII bytes touches an ASCII letter, as accents do inside Latin words ("čaša", "Đuro"),
    and the text has two ASCII letters in a row; CJK characters come in runs between spaces and punctuation."""
    for run in _HIGH_BYTE_RUN.finditer(data):
        before = data[run.start() - 1] if run.start() else None
        after = data[run.end()] if run.end() < len(data) else None
        if before not in _ASCII_LETTERS and after not in _ASCII_LETTERS:
            return False
    return _TWO_ASCII_LETTERS.search(data) is not None


def latin_code_page(data: bytes, guessed: str, language_recognised: bool) -> str:
    """The guessed encoding, or the Latin code page whose reading of `data` best spells a language."""
    high_bytes = data.translate(None, _ASCII)
    # count each byte value in C: a Counter over the bytes of a large file cost as much as the detection
    byte_counts = {byte: high_bytes.count(byte) for byte in range(0x80, 0x100) if byte in high_bytes}
    # NUL bytes: UTF-16 or UTF-32, never a single-byte code page
    if not byte_counts or b"\x00" in data:
        return guessed
    guessed_reading = None if is_multi_byte_encoding(guessed) else _reading(byte_counts, guessed)
    latin_guess = guessed_reading is not None and _is_latin_script(guessed_reading)
    fits: list[tuple[float, str]] = []
    for encoding in (*_CANDIDATES, guessed) if latin_guess else _CANDIDATES:
        characters = _reading(byte_counts, encoding)
        if characters is not None:
            fits.append((_fit(characters), encoding))
    if not fits:
        return guessed
    # max() keeps the first of equal fits, so a tie goes to the earlier (Western) code page
    best_fit, encoding = max(fits, key=lambda fit: fit[0])
    if latin_guess:
        return encoding
    # a guess in another script (charset-normalizer read "Hallo Jürgen" as Urdu) stands unless it found no language
    # in the text, every non-ASCII character is a letter of one Latin alphabet, and the text is mostly ASCII or,
    # when short ("Đuro i Ćiro žele čašu." is a quarter accents), its accents sit inside ASCII words
    if best_fit < 1.0 or language_recognised:
        return guessed
    mostly_ascii = len(high_bytes) <= len(data) * _MAX_LATIN_HIGH_SHARE
    return encoding if mostly_ascii or _accents_inside_ascii_words(data) else guessed
