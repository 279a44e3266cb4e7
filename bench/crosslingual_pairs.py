"""50 English sentences with German and French translations, written by hand for the cross-lingual retrieval check."""

from __future__ import annotations

# (English passage, German question-form translation, French question-form translation)
TRIPLES: list[tuple[str, str, str]] = [
    (
        "The server only answers requests for host names listed in trusted_domains.",
        "Der Server beantwortet nur Anfragen für Hostnamen, die in trusted_domains stehen.",
        "Le serveur ne répond qu'aux requêtes pour les noms d'hôte listés dans trusted_domains.",
    ),
    (
        "Files copied directly into the data directory appear after running occ files:scan.",
        "Dateien, die direkt ins Datenverzeichnis kopiert wurden, erscheinen nach occ files:scan.",
        "Les fichiers copiés directement dans le répertoire de données apparaissent après occ files:scan.",
    ),
    (
        "Database backups are kept for thirty days on a separate storage server.",
        "Datenbanksicherungen werden dreißig Tage lang auf einem separaten Speicherserver aufbewahrt.",
        "Les sauvegardes de la base de données sont conservées trente jours sur un serveur de stockage séparé.",
    ),
    (
        "Employees must request vacation at least two weeks in advance through the HR portal.",
        "Mitarbeiter müssen Urlaub mindestens zwei Wochen im Voraus über das Personalportal beantragen.",
        "Les employés doivent demander leurs congés au moins deux semaines à l'avance via le portail RH.",
    ),
    (
        "The cat sleeps on the warm windowsill every afternoon.",
        "Die Katze schläft jeden Nachmittag auf der warmen Fensterbank.",
        "Le chat dort chaque après-midi sur le rebord chaud de la fenêtre.",
    ),
    (
        "Our office is closed on public holidays and between Christmas and New Year.",
        "Unser Büro ist an Feiertagen und zwischen Weihnachten und Neujahr geschlossen.",
        "Notre bureau est fermé les jours fériés et entre Noël et le Nouvel An.",
    ),
    (
        "Travel expenses are reimbursed within ten working days after the receipts are submitted.",
        "Reisekosten werden innerhalb von zehn Arbeitstagen nach Einreichung der Belege erstattet.",
        "Les frais de déplacement sont remboursés dans les dix jours ouvrables après la remise des justificatifs.",
    ),
    (
        "The printer on the second floor needs a new toner cartridge.",
        "Der Drucker im zweiten Stock braucht eine neue Tonerkartusche.",
        "L'imprimante du deuxième étage a besoin d'une nouvelle cartouche de toner.",
    ),
    (
        "Two-factor authentication is mandatory for all administrator accounts.",
        "Die Zwei-Faktor-Authentifizierung ist für alle Administratorkonten Pflicht.",
        "L'authentification à deux facteurs est obligatoire pour tous les comptes administrateur.",
    ),
    (
        "Passwords must be at least twelve characters long and may not be reused.",
        "Passwörter müssen mindestens zwölf Zeichen lang sein und dürfen nicht wiederverwendet werden.",
        "Les mots de passe doivent comporter au moins douze caractères et ne peuvent pas être réutilisés.",
    ),
    (
        "The quarterly report shows that revenue grew by twelve percent.",
        "Der Quartalsbericht zeigt, dass der Umsatz um zwölf Prozent gestiegen ist.",
        "Le rapport trimestriel montre que le chiffre d'affaires a augmenté de douze pour cent.",
    ),
    (
        "Water boils at one hundred degrees Celsius at sea level.",
        "Wasser kocht auf Meereshöhe bei hundert Grad Celsius.",
        "L'eau bout à cent degrés Celsius au niveau de la mer.",
    ),
    (
        "The train to Berlin leaves from platform seven at half past eight.",
        "Der Zug nach Berlin fährt um halb neun von Gleis sieben ab.",
        "Le train pour Berlin part du quai sept à huit heures et demie.",
    ),
    (
        "Please water the tomato plants in the greenhouse every morning.",
        "Bitte gieß die Tomatenpflanzen im Gewächshaus jeden Morgen.",
        "Merci d'arroser les plants de tomates de la serre chaque matin.",
    ),
    (
        "The meeting room on the ground floor can be booked through the shared calendar.",
        "Der Besprechungsraum im Erdgeschoss kann über den gemeinsamen Kalender gebucht werden.",
        "La salle de réunion du rez-de-chaussée peut être réservée via le calendrier partagé.",
    ),
    (
        "New employees receive their laptop and badge on the first day.",
        "Neue Mitarbeiter erhalten ihren Laptop und ihren Ausweis am ersten Tag.",
        "Les nouveaux employés reçoivent leur ordinateur portable et leur badge le premier jour.",
    ),
    (
        "The heating system is serviced every autumn before the cold season.",
        "Die Heizungsanlage wird jeden Herbst vor der kalten Jahreszeit gewartet.",
        "Le système de chauffage est entretenu chaque automne avant la saison froide.",
    ),
    (
        "Children under six travel free of charge on public buses.",
        "Kinder unter sechs Jahren fahren in öffentlichen Bussen kostenlos.",
        "Les enfants de moins de six ans voyagent gratuitement dans les bus publics.",
    ),
    (
        "The library lends books for a period of four weeks.",
        "Die Bibliothek verleiht Bücher für einen Zeitraum von vier Wochen.",
        "La bibliothèque prête des livres pour une durée de quatre semaines.",
    ),
    (
        "Fire exits must never be blocked by boxes or furniture.",
        "Notausgänge dürfen niemals durch Kartons oder Möbel versperrt werden.",
        "Les sorties de secours ne doivent jamais être bloquées par des cartons ou des meubles.",
    ),
    (
        "The software update fixes a security flaw in the login page.",
        "Das Software-Update behebt eine Sicherheitslücke auf der Anmeldeseite.",
        "La mise à jour du logiciel corrige une faille de sécurité sur la page de connexion.",
    ),
    (
        "Sick leave must be reported to the manager before nine in the morning.",
        "Krankmeldungen müssen dem Vorgesetzten vor neun Uhr morgens gemeldet werden.",
        "Les arrêts maladie doivent être signalés au responsable avant neuf heures du matin.",
    ),
    (
        "The bakery around the corner sells fresh bread from six o'clock.",
        "Die Bäckerei um die Ecke verkauft ab sechs Uhr frisches Brot.",
        "La boulangerie du coin vend du pain frais à partir de six heures.",
    ),
    (
        "Invoices are paid by bank transfer within thirty days.",
        "Rechnungen werden innerhalb von dreißig Tagen per Banküberweisung bezahlt.",
        "Les factures sont payées par virement bancaire sous trente jours.",
    ),
    (
        "The museum is free for students on the first Sunday of each month.",
        "Das Museum ist am ersten Sonntag jedes Monats für Studierende kostenlos.",
        "Le musée est gratuit pour les étudiants le premier dimanche de chaque mois.",
    ),
    (
        "Mount Everest is the highest mountain above sea level.",
        "Der Mount Everest ist der höchste Berg über dem Meeresspiegel.",
        "L'Everest est la plus haute montagne au-dessus du niveau de la mer.",
    ),
    (
        "Bicycles may be parked in the courtyard behind the building.",
        "Fahrräder dürfen im Innenhof hinter dem Gebäude abgestellt werden.",
        "Les vélos peuvent être garés dans la cour derrière le bâtiment.",
    ),
    (
        "The contract can be cancelled with three months' notice.",
        "Der Vertrag kann mit einer Frist von drei Monaten gekündigt werden.",
        "Le contrat peut être résilié avec un préavis de trois mois.",
    ),
    (
        "Our customer support is available by phone from Monday to Friday.",
        "Unser Kundendienst ist von Montag bis Freitag telefonisch erreichbar.",
        "Notre service client est joignable par téléphone du lundi au vendredi.",
    ),
    (
        "The recipe needs two eggs, flour, sugar and a pinch of salt.",
        "Das Rezept braucht zwei Eier, Mehl, Zucker und eine Prise Salz.",
        "La recette demande deux œufs, de la farine, du sucre et une pincée de sel.",
    ),
    (
        "Shared folders can be protected with a password and an expiry date.",
        "Geteilte Ordner können mit einem Passwort und einem Ablaufdatum geschützt werden.",
        "Les dossiers partagés peuvent être protégés par un mot de passe et une date d'expiration.",
    ),
    (
        "Deleted files stay in the trash bin for thirty days before they are removed.",
        "Gelöschte Dateien bleiben dreißig Tage im Papierkorb, bevor sie entfernt werden.",
        "Les fichiers supprimés restent trente jours dans la corbeille avant d'être effacés.",
    ),
    (
        "The storage quota of each user is five gigabytes by default.",
        "Das Speicherkontingent jedes Benutzers beträgt standardmäßig fünf Gigabyte.",
        "Le quota de stockage de chaque utilisateur est de cinq gigaoctets par défaut.",
    ),
    (
        "Video calls are limited to twenty participants on the basic plan.",
        "Videoanrufe sind im Basistarif auf zwanzig Teilnehmer begrenzt.",
        "Les appels vidéo sont limités à vingt participants avec l'offre de base.",
    ),
    (
        "The elevator is out of order until next Tuesday.",
        "Der Aufzug ist bis nächsten Dienstag außer Betrieb.",
        "L'ascenseur est en panne jusqu'à mardi prochain.",
    ),
    (
        "Rain is expected in the north of the country tomorrow afternoon.",
        "Für morgen Nachmittag wird im Norden des Landes Regen erwartet.",
        "De la pluie est attendue dans le nord du pays demain après-midi.",
    ),
    (
        "The doctor recommends drinking at least two litres of water a day.",
        "Der Arzt empfiehlt, mindestens zwei Liter Wasser pro Tag zu trinken.",
        "Le médecin recommande de boire au moins deux litres d'eau par jour.",
    ),
    (
        "Overtime is compensated with additional days off.",
        "Überstunden werden mit zusätzlichen freien Tagen ausgeglichen.",
        "Les heures supplémentaires sont compensées par des jours de congé supplémentaires.",
    ),
    (
        "The kitchen must be cleaned after every team lunch.",
        "Die Küche muss nach jedem Teamessen geputzt werden.",
        "La cuisine doit être nettoyée après chaque déjeuner d'équipe.",
    ),
    (
        "Guests have to sign in at the reception desk.",
        "Gäste müssen sich am Empfang anmelden.",
        "Les visiteurs doivent s'enregistrer à l'accueil.",
    ),
    (
        "The encryption key is stored on a hardware security module.",
        "Der Verschlüsselungsschlüssel wird in einem Hardware-Sicherheitsmodul gespeichert.",
        "La clé de chiffrement est stockée dans un module de sécurité matériel.",
    ),
    (
        "The garden party was moved indoors because of the storm.",
        "Das Gartenfest wurde wegen des Sturms nach drinnen verlegt.",
        "La fête dans le jardin a été déplacée à l'intérieur à cause de la tempête.",
    ),
    (
        "Parking in front of the garage entrance is not allowed.",
        "Das Parken vor der Garageneinfahrt ist nicht erlaubt.",
        "Il est interdit de stationner devant l'entrée du garage.",
    ),
    (
        "The email server rejects attachments larger than twenty-five megabytes.",
        "Der E-Mail-Server lehnt Anhänge ab, die größer als fünfundzwanzig Megabyte sind.",
        "Le serveur de messagerie refuse les pièces jointes de plus de vingt-cinq mégaoctets.",
    ),
    (
        "Our dog loves to chase the ball in the park.",
        "Unser Hund jagt im Park gern dem Ball hinterher.",
        "Notre chien adore courir après la balle au parc.",
    ),
    (
        "The annual general meeting takes place in the town hall in May.",
        "Die jährliche Hauptversammlung findet im Mai im Rathaus statt.",
        "L'assemblée générale annuelle a lieu en mai à la mairie.",
    ),
    (
        "Solar panels on the roof cover half of the building's electricity needs.",
        "Solarmodule auf dem Dach decken die Hälfte des Strombedarfs des Gebäudes.",
        "Les panneaux solaires du toit couvrent la moitié des besoins en électricité du bâtiment.",
    ),
    (
        "The night shift starts at ten in the evening and ends at six in the morning.",
        "Die Nachtschicht beginnt um zehn Uhr abends und endet um sechs Uhr morgens.",
        "L'équipe de nuit commence à dix heures du soir et finit à six heures du matin.",
    ),
    (
        "Lost keys can be picked up at the caretaker's office.",
        "Verlorene Schlüssel können beim Hausmeister abgeholt werden.",
        "Les clés perdues peuvent être récupérées au bureau du gardien.",
    ),
    (
        "The language course for beginners meets twice a week in the evening.",
        "Der Sprachkurs für Anfänger trifft sich zweimal pro Woche am Abend.",
        "Le cours de langue pour débutants a lieu deux fois par semaine le soir.",
    ),
]
