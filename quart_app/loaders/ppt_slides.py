"""Hidden slides of a legacy .ppt ([MS-PPT] SlideShowSlideInfoAtom.fHidden) and hidden shapes ([MS-ODRAW] fHidden in
a shape's Group Shape Boolean Properties, set by the Selection Pane). A slide's own shapes sit in its SlideContainer,
but its title and body placeholders' text sits in the document's slide list, under the slide's persist id: the persist
directory maps that id to the SlideContainer's offset in the 'PowerPoint Document' stream, and a placeholder names its
text by its index among the slide's texts there (OutlineTextRefAtom)."""

import re
import struct
from collections.abc import Iterator

SLIDE = 0x03EE  # SlideContainer
NOTES = 0x03F0  # NotesContainer
SLIDE_PERSIST = 0x03F3  # SlidePersistAtom: a slide's persist id and slide id, before its texts in the slide list
SLIDE_LIST = 0x0FF0  # SlideListWithTextContainer; instance 0 lists the slides, 1 the masters, 2 the notes
_NOTES_ATOM = 0x03F1
_SLIDE_SHOW_INFO = 0x03F9  # SlideShowSlideInfoAtom
_HIDDEN = 0x0004  # its fHidden bit: the slide show skips the slide
SHAPE_GROUP = 0xF003  # OfficeArtSpgrContainer: its first child is the group's own shape, then the grouped shapes
SHAPE = 0xF004  # OfficeArtSpContainer
# OfficeArtFOPT, OfficeArtSecondaryFOPT, OfficeArtTertiaryFOPT: a shape's property tables (record instance = count)
_PROPERTY_TABLES = (0xF00B, 0xF121, 0xF122)
_GROUP_SHAPE_BOOLEANS = 0x03BF
_GROUP_SHAPE_BOOLEANS_ID = struct.pack("<H", _GROUP_SHAPE_BOOLEANS)
_BIT_1_SET = b"[" + b"".join(b"\\x%02x" % value for value in range(256) if value & 0x02) + b"]"
# the property with fHidden (bit 1 of its value's first byte) and fUsefHidden (bit 1 of its third byte) set
_HIDING_PROPERTY = re.compile(re.escape(_GROUP_SHAPE_BOOLEANS_ID) + _BIT_1_SET + b"." + _BIT_1_SET, re.DOTALL)
_SHAPE_HIDDEN = 0x0002_0002  # fUsefHidden (the fHidden bit is set, not defaulted) and fHidden
_PROPERTY = struct.Struct("<HI")  # OfficeArtFOPTE: opid (its low 14 bits name the property), op
_OUTLINE_TEXT_REF = 0x0F9E
_CONTAINER_VERSION = 0xF
_USER_EDIT = 0x0FF5
_PERSIST_DIRECTORY = 0x1772
_CURRENT_EDIT_OFFSET = 16  # offsetToCurrentEdit in the 'Current User' stream's CurrentUserAtom
_HEADER = struct.Struct("<HHI")
_U32 = struct.Struct("<I")


def _children(stream: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The records between `start` and `end` at one level: (type, body offset, body length)."""
    while start + 8 <= end:
        _, rec_type, rec_len = _HEADER.unpack_from(stream, start)
        yield rec_type, start + 8, rec_len
        start += 8 + rec_len


def is_hidden_slide(stream: bytes, offset: int) -> bool:
    """Whether the record at `offset` is a SlideContainer whose slide show skips it."""
    if offset + 8 > len(stream):
        return False
    _, rec_type, rec_len = _HEADER.unpack_from(stream, offset)
    if rec_type != SLIDE:
        return False
    for child_type, body, length in _children(stream, offset + 8, min(offset + 8 + rec_len, len(stream))):
        if child_type == _SLIDE_SHOW_INFO and length >= 12 and body + 12 <= len(stream):
            # slideTime (4 bytes), soundIdRef (4), effectDirection (1), effectType (1), then the flags
            return bool(struct.unpack_from("<H", stream, body + 10)[0] & _HIDDEN)
    return False


def _shape_hidden(stream: bytes, start: int, end: int) -> bool:
    """Whether the OfficeArtSpContainer whose children lie between `start` and `end` marks its shape hidden."""
    while start + 8 <= end:  # checked for every shape: a plain loop, not _children's generator
        ver_instance, rec_type, rec_len = _HEADER.unpack_from(stream, start)
        body = start + 8
        table_end = min(body + min(ver_instance >> 4, rec_len // _PROPERTY.size) * _PROPERTY.size, end)
        if rec_type in _PROPERTY_TABLES:
            for position in range(body, table_end - _PROPERTY.size + 1, _PROPERTY.size):
                opid, op = _PROPERTY.unpack_from(stream, position)
                if opid & 0x3FFF == _GROUP_SHAPE_BOOLEANS and op & _SHAPE_HIDDEN == _SHAPE_HIDDEN:
                    return True
        start = body + rec_len
    return False


def may_hide_shapes(stream: bytes) -> bool:
    """Whether a shape may be hidden: the property hiding one occurs somewhere in the stream (most presentations hide
    none: their shapes are then not looked at one by one)."""
    return _HIDING_PROPERTY.search(stream) is not None


def is_hidden_shape(stream: bytes, offset: int) -> bool:
    """Whether the record at `offset` is a shape, or a group (whose first shape is the group's own), marked hidden;
    a hidden group hides the shapes in it."""
    _, rec_type, rec_len = _HEADER.unpack_from(stream, offset)
    end = min(offset + 8 + rec_len, len(stream))
    # most shapes' bytes do not name the property at all: one byte search passes them
    if stream.find(_GROUP_SHAPE_BOOLEANS_ID, offset + 8, end) == -1:
        return False
    if rec_type == SHAPE_GROUP:
        group_shape = next(_children(stream, offset + 8, end), None)
        if group_shape is None or group_shape[0] != SHAPE:
            return False
        _, body, length = group_shape
        return _shape_hidden(stream, body, min(body + length, end))
    return rec_type == SHAPE and _shape_hidden(stream, offset + 8, end)


def notes_slide_id(stream: bytes, offset: int, rec_len: int) -> int | None:
    """The slide id a NotesContainer at `offset` belongs to (its NotesAtom's slideIdRef)."""
    for child_type, body, length in _children(stream, offset + 8, min(offset + 8 + rec_len, len(stream))):
        if child_type == _NOTES_ATOM and length >= 4 and body + 4 <= len(stream):
            slide_id: int = _U32.unpack_from(stream, body)[0]
            return slide_id
    return None


def _persist_offsets(stream: bytes, current_user: bytes) -> dict[int, int]:
    """Each persist id's offset, from the newest edit's persist directory back to the first save's."""
    offsets: dict[int, int] = {}
    if len(current_user) < _CURRENT_EDIT_OFFSET + 4:
        return offsets
    edit = _U32.unpack_from(current_user, _CURRENT_EDIT_OFFSET)[0]
    seen: set[int] = set()
    while edit not in seen and edit + 8 + 16 <= len(stream):
        seen.add(edit)
        _, rec_type, _ = _HEADER.unpack_from(stream, edit)
        if rec_type != _USER_EDIT:
            break
        # lastSlideIdRef (4 bytes), version (2), minorVersion (1), majorVersion (1), then the two offsets
        previous_edit, directory = struct.unpack_from("<II", stream, edit + 8 + 8)
        _, rec_type, rec_len = _HEADER.unpack_from(stream, directory)
        if rec_type == _PERSIST_DIRECTORY:
            position, end = directory + 8, min(directory + 8 + rec_len, len(stream))
            while position + 4 <= end:
                entry = _U32.unpack_from(stream, position)[0]
                first, count = entry & 0xFFFFF, entry >> 20
                for index in range(min(count, (end - position - 4) // 4)):
                    # a newer edit's offset wins over the older ones read after it
                    offsets.setdefault(first + index, _U32.unpack_from(stream, position + 4 + 4 * index)[0])
                position += 4 + 4 * count
        if previous_edit == 0:
            break
        edit = previous_edit
    return offsets


def outline_text_indices(stream: bytes, offset: int) -> Iterator[int]:
    """The indices of the slide-list texts that the shape or group at `offset` shows (its placeholders'
    OutlineTextRefAtom: a title's or body's text sits in the slide list, among its slide's texts)."""
    _, _, rec_len = _HEADER.unpack_from(stream, offset)
    # (children's start, end); a stack, not recursion: a file's nesting is not bounded
    pending = [(offset + 8, min(offset + 8 + rec_len, len(stream)))]
    while pending:
        start, end = pending.pop()
        for rec_type, body, length in _children(stream, start, end):
            if rec_type == _OUTLINE_TEXT_REF and length >= 4 and body + 4 <= end:
                yield _U32.unpack_from(stream, body)[0]
            elif _HEADER.unpack_from(stream, body - 8)[0] & 0xF == _CONTAINER_VERSION:
                pending.append((body, min(body + length, end)))


def persist_offsets(stream: bytes, current_user: bytes) -> dict[int, int]:
    """Each persist id's offset in the stream; none when the persist directory is missing or damaged (every slide's
    placeholder text is then read)."""
    try:
        return _persist_offsets(stream, current_user)
    except struct.error:
        return {}


def hidden_slide_persist_ids(stream: bytes, offsets: dict[int, int]) -> frozenset[int]:
    """The persist ids of the hidden slides."""
    return frozenset(persist_id for persist_id, offset in offsets.items() if is_hidden_slide(stream, offset))
