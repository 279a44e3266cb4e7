"""List labels as a word processor shows them: "3.", "b)", "IV.", "1.2.3", and "-" for every bullet."""

BULLET = "-"
_ROMAN = (
    (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
    (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
)  # fmt: skip


def roman(number: int) -> str:
    """1994 -> 'mcmxciv'; a number below 1 (a list starting at 0) as its digits."""
    if number < 1:
        return str(number)
    digits = []
    for value, letters in _ROMAN:
        count, number = divmod(number, value)
        digits.append(letters * count)
    return "".join(digits)


def letters(number: int) -> str:
    """1 -> 'a', 26 -> 'z', 27 -> 'aa', 28 -> 'bb': Word and LibreOffice repeat the letter past z."""
    if number < 1:
        return str(number)
    count, index = divmod(number - 1, 26)
    return chr(ord("a") + index) * (count + 1)


def counter_text(number: int, style: str) -> str:
    """`number` in a list's counter style: 'decimal', 'decimalZero', 'lowerLetter', 'upperLetter', 'lowerRoman',
    'upperRoman' (Word's names); any other style (full-width, ideographic, spelled out) as its decimal digits."""
    if style in ("lowerLetter", "upperLetter"):
        text = letters(number)
    elif style in ("lowerRoman", "upperRoman"):
        text = roman(number)
    elif style == "decimalZero":
        return f"{number:02d}"
    else:
        return str(number)
    return text.upper() if style.startswith("upper") else text
