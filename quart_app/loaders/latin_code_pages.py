"""Western (cp1252) or Central European (cp1250, ISO-8859-2) code page, judged by which reading spells a language.

charset-normalizer cannot tell these code pages apart in a short text (no language is recognised, every candidate
has zero chaos) and returned cp1250 first: a Latin-1 "Café crème" became "Café crčme". The bytes above 0x7F are
read in each code page, and the reading whose letters best fit one language's alphabet wins.
"""

import unicodedata

from charset_normalizer.utils import is_multi_byte_encoding

# in order of preference when two readings fit equally well (the same letters in both, or too few to tell)
_CANDIDATES = ("cp1252", "cp1250", "iso8859_2")
_ASCII = bytes(range(0x80))
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


def latin_code_page(data: bytes, guessed: str) -> str:
    """The guessed encoding, or the Latin code page whose reading of `data` best spells a language."""
    high_bytes = data.translate(None, _ASCII)
    # count each byte value in C: a Counter over the bytes of a large file cost as much as the detection
    byte_counts = {byte: high_bytes.count(byte) for byte in range(0x80, 0x100) if byte in high_bytes}
    if is_multi_byte_encoding(guessed) or not byte_counts:
        return guessed
    guessed_reading = _reading(byte_counts, guessed)
    # Cyrillic, Greek, Hebrew... code pages are charset-normalizer's business
    if guessed_reading is None or not _is_latin_script(guessed_reading):
        return guessed
    fits: list[tuple[float, str]] = []
    for encoding in (*_CANDIDATES, guessed):
        characters = _reading(byte_counts, encoding)
        if characters is not None:
            fits.append((_fit(characters), encoding))
    # max() keeps the first of equal fits, so a tie goes to the earlier (Western) code page
    return max(fits, key=lambda fit: fit[0])[1]
