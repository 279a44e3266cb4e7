"""The lexical leg in any language: which words count comes from the user's own chunks, not an English/German list."""

from __future__ import annotations

import pytest
from corpus_writer import Corpus

from quart_app.store.database import Database
from quart_app.store.lexical_query import COMMON_WORD_SHARE, WORD_STATS_MIN_CHUNKS, informative_words, lexical_terms
from quart_app.store.search_store import SearchStore

FRENCH_TARGET = "Le mot de passe du compte se modifie dans les paramètres personnels, rubrique sécurité."
SPANISH_TARGET = "La contraseña de la cuenta se modifica en los ajustes personales, apartado de seguridad."
# FAQ-style pages: full of the question's function words ("comment", "je", "mon", "puis"), none of its subject
FRENCH_TOPICS = [
    "le thème de couleur",
    "le fond d'écran de mon bureau",
    "la langue de mon interface",
    "le fuseau horaire de mon agenda",
    "la photo de mon profil",
    "le format de date de mon calendrier",
    "la taille de police de mon éditeur",
    "le son de mes notifications",
    "la page d'accueil de mon tableau de bord",
    "le tri de mes fichiers",
    "la signature de mes courriels",
    "le dossier de mes téléchargements",
]
SPANISH_TOPICS = [
    "el tema de color",
    "el fondo de pantalla de mi escritorio",
    "el idioma de mi interfaz",
    "la zona horaria de mi agenda",
    "la foto de mi perfil",
    "el formato de fecha de mi calendario",
    "el tamaño de letra de mi editor",
    "el sonido de mis notificaciones",
    "la página de inicio de mi panel",
    "el orden de mis archivos",
    "la firma de mis correos",
    "la carpeta de mis descargas",
]


@pytest.fixture
async def two_languages(corpus: Corpus) -> Corpus:
    await corpus.add("fr: mot de passe", [FRENCH_TARGET], ["alice"])
    await corpus.add("es: contraseña", [SPANISH_TARGET], ["alice"])
    for n, topic in enumerate(FRENCH_TOPICS):
        text = f"Comment je change {topic} ? Je clique sur mon profil, puis je choisis {topic} de mon compte."
        await corpus.add(f"fr: faq {n}", [text.replace(" de mon compte", "")], ["alice"])
    for n, topic in enumerate(SPANISH_TOPICS):
        text = f"¿Cómo puedo cambiar {topic}? Primero abro mi perfil, luego puedo elegir {topic} de la lista."
        await corpus.add(f"es: faq {n}", [text], ["alice"])
    return corpus


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Comment puis-je changer le mot de passe de mon compte ?", "fr: mot de passe"),
        ("¿Cómo puedo cambiar la contraseña de mi cuenta?", "es: contraseña"),
    ],
)
async def test_a_french_or_spanish_question_finds_its_subject(
    db: Database, two_languages: Corpus, question: str, expected: str
) -> None:
    # with the old English/German list, "comment je de mon puis" (or "cómo puedo la de mi") outvoted the subject
    hits = await SearchStore(db).lexical_search("alice", lexical_terms(question, 64), 10)
    assert [h.source_id for h in hits] == [expected]


async def test_words_common_in_another_users_chunks_still_count_for_this_user(
    db: Database, two_languages: Corpus, corpus: Corpus
) -> None:
    # bob's one page is all he has: the statistics are his own, so alice's FAQ pages change nothing for him
    await corpus.add("bob: profil", ["Comment je change la photo de mon profil ?"], ["bob"])
    hits = await SearchStore(db).lexical_search("bob", lexical_terms("comment changer mon profil", 64), 10)
    assert [h.source_id for h in hits] == ["bob: profil"]


def test_informative_words_by_share_of_chunks() -> None:
    n = 100
    common = int(COMMON_WORD_SHARE * n)
    words = ["de", "mot", "absent"]
    assert informative_words(words, n, [common, common - 1, 0]) == ["mot", "absent"]
    # too few chunks to judge: every word counts
    assert informative_words(words, WORD_STATS_MIN_CHUNKS - 1, [19, 1, 0]) == words
    # when every word is common, they all count rather than none
    assert informative_words(["de", "la"], n, [n, n]) == ["de", "la"]
