"""German chat phrases for the demo generator: a staff member asking the company's HR assistant."""

from __future__ import annotations

from pipeline.devtools.phrasebook import Phrasebook

__all__ = ["PHRASEBOOK"]

PHRASEBOOK = Phrasebook(
    language="de",
    labels=("german", "German", "Deutsch"),
    greetings=("Hallo", "Guten Morgen", "Guten Tag", "Moin", "Hallo, ich habe eine Frage"),
    greeting_replies=(
        "Hallo! Wie kann ich Ihnen helfen?",
        "Guten Tag! Was kann ich für Sie tun?",
    ),
    topics={
        "SCHEDULE_HOURS": (
            (
                "Wann ist meine nächste Schicht?",
                "Ihren Dienstplan finden Sie in der Mitarbeiter-App unter 'Mein Dienstplan'. "
                "Der Plan für die nächsten zwei Wochen erscheint jeden Donnerstag.",
            ),
            (
                "Kann ich meine Samstagsschicht mit einer Kollegin tauschen?",
                "Ja, das geht in der App:\n1. 'Mein Dienstplan' öffnen\n"
                "2. Die Schicht antippen und 'Tauschen' wählen\n3. Ihre Teamleitung bestätigt den Tausch",
            ),
        ),
        "LEAVE_VACATION": (
            (
                "Wie viele Urlaubstage habe ich noch?",
                "Ihren Resturlaub sehen Sie in der App unter 'Urlaub'. Beantragte "
                "Tage sind bereits abgezogen.",
            ),
            (
                "Wie beantrage ich Urlaub für nächsten Monat?",
                "Beantragen Sie Urlaub mindestens zwei Wochen vorher in der App. "
                "Ihre Teamleitung entscheidet innerhalb von fünf Werktagen.",
            ),
        ),
        "SICK_LEAVE_RECOVERY": (
            (
                "Ich bin krank, was muss ich tun?",
                "Gute Besserung! Rufen Sie vor Schichtbeginn Ihre Filialleitung an "
                "und melden Sie sich in der App krank.",
            ),
            (
                "Ab wann brauche ich eine Krankmeldung vom Arzt?",
                "Ab dem vierten Krankheitstag brauchen Sie eine Arbeitsunfähigkeitsbescheinigung.",
            ),
        ),
        "SALARY_COMPENSATION": (
            (
                "Wann wird das Gehalt diesen Monat überwiesen?",
                "Das Gehalt kommt am 25. jedes Monats. Fällt der 25. auf ein Wochenende, "
                "wird es am Freitag davor überwiesen.",
            ),
            (
                "Bekomme ich einen Zuschlag für Sonntagsarbeit?",
                "Ja, Stunden an Sonn- und Feiertagen werden mit 150 % vergütet.",
            ),
        ),
        "CONTRACT_HOURS": (
            (
                "Darf ich mehr Stunden arbeiten, als in meinem Vertrag stehen?",
                "Mehrstunden sind möglich, wenn Ihr Team sie braucht. Sprechen Sie mit Ihrer Teamleitung.",
            ),
            (
                "Mein Vertrag läuft nächsten Monat aus, wird er verlängert?",
                "Ihre Teamleitung spricht spätestens einen Monat vor Vertragsende mit Ihnen über eine "
                "Verlängerung.",
            ),
        ),
        "ONBOARDING": (
            (
                "Morgen ist mein erster Arbeitstag, wohin muss ich?",
                "Willkommen im Team! Melden Sie sich um 08:45 am Personaleingang und fragen Sie nach Ihrem "
                "Paten.",
            ),
            (
                "Welche Schulungen muss ich in der ersten Woche machen?",
                "In der ersten Woche absolvieren Sie:\n- das E-Learning Lebensmittelhygiene\n"
                "- die Kassenschulung\n- die Brandschutzunterweisung",
            ),
        ),
        "OFFBOARDING": (
            (
                "Ich möchte kündigen, welche Kündigungsfrist habe ich?",
                "Die Kündigungsfrist beträgt einen Monat zum Monatsende. Bitte kündigen Sie schriftlich.",
            ),
            (
                "Was passiert mit meinem Resturlaub, wenn ich gehe?",
                "Nicht genommener Urlaub wird mit dem letzten Gehalt ausgezahlt.",
            ),
        ),
        "WORKWEAR_STAFF_PASS": (
            (
                "Ich habe meinen Mitarbeiterausweis verloren, wie bekomme ich einen neuen?",
                "Einen neuen Ausweis beantragen Sie am Servicepunkt. Der Ersatz kostet 10 Euro.",
            ),
            (
                "Wo bekomme ich neue Arbeitskleidung? Meine ist zu klein.",
                "Fragen Sie Ihre Teamleitung nach einem Bestellformular. Die Kleidung kommt innerhalb einer "
                "Woche.",
            ),
        ),
        "TEAM_CONTACTS": (
            ("Wer ist meine Teamleitung?", "Ihre Teamleitung steht in der App unter 'Mein Team'."),
            ("Wie erreiche ich die Filialleitung?", "Über das Filialtelefon oder den Chat in der App."),
        ),
        "PERSONAL_QUESTIONS": (
            (
                "Ich ziehe um, wie ändere ich meine Adresse?",
                "Ihre Adresse ändern Sie in der App unter 'Meine Daten'.",
            ),
            (
                "Kann ich meine Bankverbindung ändern?",
                "Ja, unter 'Meine Daten'. Änderungen nach dem 15. gelten ab dem Folgemonat.",
            ),
        ),
        "ACCESS_LOGIN": (
            (
                "Ich komme nicht in die App, angeblich ist mein Passwort falsch.",
                "Nutzen Sie 'Passwort vergessen' auf dem Anmeldebildschirm. Sie bekommen einen Link per SMS.",
            ),
            (
                "Mein Konto ist gesperrt, was soll ich tun?",
                "Nach fünf Fehlversuchen wird das Konto gesperrt. Nach 30 Minuten wird es automatisch "
                "entsperrt.",
            ),
        ),
        "SOCIAL_QUESTIONS": (
            (
                "Bist du ein Mensch?",
                "Ich bin ein digitaler Assistent. Die meisten Fragen zu Ihrer Arbeit kann ich beantworten.",
            ),
            (
                "Sprichst du auch Türkisch?",
                "Ja! Sie können mir auf Deutsch, Englisch, Niederländisch oder Türkisch schreiben.",
            ),
        ),
        "UNRECOGNIZED_OTHER": (
            (
                "Wie wird das Wetter morgen?",
                "Entschuldigung, ich helfe nur bei Fragen rund um Ihre Arbeit. Kann ich sonst etwas tun?",
            ),
            ("asdf", "Das habe ich leider nicht verstanden. Können Sie Ihre Frage anders formulieren?"),
        ),
    },
    followups=(
        ("Und wo finde ich das in der App?", "Öffnen Sie die App und tippen Sie oben links auf das Menü."),
        ("Gilt das auch für Teilzeitkräfte?", "Ja, die Regeln gelten für alle, anteilig zu Ihren Stunden."),
        (
            "Entschuldigung, das verstehe ich nicht.\nGeht das einfacher?",
            "Natürlich. Kurz gesagt: Sie erledigen alles in der App, und Ihre Teamleitung bestätigt es.",
        ),
    ),
    escalations=(
        (
            "Das hilft mir nicht weiter. Ich möchte mit einem Vorgesetzten sprechen.",
            "Ich verstehe Ihren Ärger. Ich habe Ihr Anliegen an eine Führungskraft weitergeleitet; "
            "Sie werden so bald wie möglich kontaktiert.",
        ),
    ),
    hr_referrals=(
        (
            "An wen kann ich mich damit wenden?",
            "Bitte wenden Sie sich an die Personalabteilung (HR) unter {hr}. "
            "Dort wird Ihre persönliche Situation geprüft.",
        ),
    ),
    closings=(
        ("Danke, das hilft!", "Gern geschehen! Einen schönen Tag noch."),
        ("ok danke", "Freut mich, dass ich helfen konnte."),
    ),
)
