"""Questions about nothing in particular, in several languages: their mean vector is the direction every question
shares in a multilingual model, which the cross-lingual leg takes out of a question's vector (CrossLingualConfig
.hub_correction).

In multilingual-e5-small every question lies close to some passages that say little (a CSS rule, a list of links):
"hubs" that outrank the passage a German question is about. Their likeness to any question is their likeness to
this mean, so subtracting part of it from the question's vector ranks each passage by its cosine less part of that
likeness. The list holds no word of any corpus: it is the same for every install.
"""

from __future__ import annotations

GENERIC_QUESTIONS: tuple[str, ...] = (
    "What is this?",
    "How do I do it?",
    "Why does it not work?",
    "Where can I find more information?",
    "Which option should I use?",
    "Can you explain that?",
    "Was ist das?",
    "Wie mache ich das?",
    "Warum funktioniert es nicht?",
    "Wo finde ich mehr Informationen?",
    "Welche Option soll ich verwenden?",
    "Kannst du das erklären?",
    "Qu'est-ce que c'est ?",
    "Comment faire ?",
    "Pourquoi ça ne marche pas ?",
    "Où trouver plus d'informations ?",
    "Quelle option dois-je utiliser ?",
    "Peux-tu expliquer cela ?",
    "¿Qué es esto?",
    "¿Cómo lo hago?",
    "¿Por qué no funciona?",
    "¿Dónde encuentro más información?",
    "¿Qué opción debo usar?",
    "¿Puedes explicarlo?",
    "Che cos'è?",
    "Come si fa?",
    "Perché non funziona?",
    "O que é isso?",
    "Como eu faço isso?",
    "Por que não funciona?",
    "Wat is dit?",
    "Hoe doe ik dat?",
    "Co to jest?",
    "Jak to zrobić?",
    "Что это такое?",
    "Как это сделать?",
)
