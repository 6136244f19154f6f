"""Dutch chat phrases for the demo generator: a staff member asking the company's HR assistant."""

from __future__ import annotations

from pipeline.devtools.phrasebook import Phrasebook

__all__ = ["PHRASEBOOK"]

PHRASEBOOK = Phrasebook(
    language="nl",
    labels=("Dutch", "dutch", "dutch"),
    greetings=("Hoi", "Hallo", "Goedemorgen", "Goedendag", "hey", "Hallo, ik heb een vraag"),
    greeting_replies=(
        "Hallo! Waarmee kan ik je helpen?",
        "Hoi! Wat kan ik voor je doen?",
        "Goedendag! Stel gerust je vraag over je werk, je rooster of je contract.",
    ),
    topics={
        "SCHEDULE_HOURS": (
            (
                "Wanneer is mijn volgende dienst?",
                "Je rooster staat in de personeelsapp onder 'Mijn rooster'. "
                "Het rooster voor de komende twee weken verschijnt elke donderdag.",
            ),
            (
                "Kan ik mijn dienst van zaterdag ruilen met een collega?",
                "Ja, dat kan in de personeelsapp:\n1. Open 'Mijn rooster'\n"
                "2. Tik op de dienst en kies 'Ruilen'\n3. Je teamleider keurt de ruil goed",
            ),
            (
                'In mijn rooster staat "vrij" op vrijdag, maar mijn manager zegt dat ik moet werken. '
                "Wat klopt?",
                "Het rooster in de app is leidend. Klopt het niet, vraag dan je teamleider om het aan te "
                "passen.",
            ),
        ),
        "LEAVE_VACATION": (
            (
                "Hoeveel vakantiedagen heb ik nog?",
                "Je verlofsaldo staat in de personeelsapp onder 'Verlof'. "
                "Aangevraagde maar nog niet goedgekeurde dagen zijn al afgetrokken.",
            ),
            (
                "Hoe vraag ik een vrije dag aan voor volgende maand?",
                "Vraag verlof minstens twee weken vooraf aan in de app. "
                "Je teamleider beslist binnen vijf werkdagen.",
            ),
        ),
        "SICK_LEAVE_RECOVERY": (
            (
                "Ik ben ziek, wat moet ik doen?",
                "Vervelend! Bel je filiaalmanager voordat je dienst begint en meld je ziek in de app. "
                "Beterschap!",
            ),
            (
                "Hallo,\nik was vorige week ziek, heb ik een doktersverklaring nodig?",
                "Nee, voor een korte ziekte is geen verklaring nodig. Meld je beter bij je teamleider.",
            ),
        ),
        "SALARY_COMPENSATION": (
            (
                "Wanneer krijg ik deze maand mijn salaris?",
                "Het salaris wordt op de 25e van elke maand uitbetaald. Valt de 25e in het weekend, "
                "dan krijg je het op de vrijdag ervoor.",
            ),
            (
                "Krijg ik een toeslag als ik op zondag werk?",
                "Ja, uren op zondag en feestdagen worden uitbetaald tegen 150%. "
                "De toeslag staat op de loonstrook van de maand erna.",
            ),
        ),
        "CONTRACT_HOURS": (
            (
                "Mag ik meer uren werken dan in mijn contract staat?",
                "Extra uren kunnen als je team ze nodig heeft. Overleg met je teamleider; "
                "uren boven je contract worden als overwerk betaald.",
            ),
            (
                "Mijn contract loopt volgende maand af, wordt het verlengd?",
                "Je teamleider bespreekt een verlenging uiterlijk een maand voor het einde van je contract.",
            ),
        ),
        "ONBOARDING": (
            (
                "Morgen is mijn eerste werkdag, waar moet ik naartoe?",
                "Welkom bij het team! Meld je om 08:45 bij de personeelsingang en vraag naar je buddy. "
                "Neem je ID en je bankgegevens mee.",
            ),
            (
                "Welke trainingen moet ik in mijn eerste week doen?",
                "In je eerste week doe je:\n- de e-learning voedselveiligheid\n- de kassatraining\n"
                "- de brandveiligheidsinstructie\nJe vindt ze in de app onder 'Leren'.",
            ),
        ),
        "OFFBOARDING": (
            (
                "Ik wil ontslag nemen, wat is mijn opzegtermijn?",
                "De opzegtermijn is een maand, vanaf de eerste dag van de volgende maand. "
                "Lever je opzegging schriftelijk in bij je filiaalmanager.",
            ),
            (
                "Wat gebeurt er met mijn verlofdagen als ik uit dienst ga?",
                "Niet opgenomen verlofdagen worden uitbetaald met je laatste salaris.",
            ),
        ),
        "WORKWEAR_STAFF_PASS": (
            (
                "Ik ben mijn personeelspas kwijt, hoe krijg ik een nieuwe?",
                "Je kunt een nieuwe pas aanvragen bij de servicebalie. Een vervangende pas kost 10 euro.",
            ),
            (
                "Waar krijg ik nieuwe werkkleding? Mijn shirt is te klein.",
                "Vraag je teamleider om een bestelformulier. "
                "Nieuwe kleding is binnen een week in je filiaal.",
            ),
        ),
        "TEAM_CONTACTS": (
            (
                "Wie is mijn teamleider?",
                "Je teamleider staat in de app onder 'Mijn team', met telefoonnummer.",
            ),
            ("Hoe bereik ik de filiaalmanager?", "Via de winkeltelefoon of via de chat in de personeelsapp."),
        ),
        "PERSONAL_QUESTIONS": (
            (
                "Ik ga verhuizen, hoe geef ik mijn nieuwe adres door?",
                "Je wijzigt je adres zelf in de app onder 'Mijn gegevens'. Dat is binnen twee werkdagen "
                "verwerkt.",
            ),
            (
                "Kan ik mijn rekeningnummer wijzigen?",
                "Ja, onder 'Mijn gegevens'. Wijzigingen na de 15e gaan de maand erna in.",
            ),
        ),
        "ACCESS_LOGIN": (
            (
                "Ik kan niet inloggen in de app, hij zegt dat mijn wachtwoord fout is.",
                "Kies 'Wachtwoord vergeten' op het inlogscherm; je krijgt een sms met een link. "
                "Lukt het nog steeds niet? Neem contact op met de IT-servicedesk.",
            ),
            (
                "Mijn account is geblokkeerd, wat nu?",
                "Na vijf mislukte pogingen wordt je account geblokkeerd. Na 30 minuten gaat het vanzelf weer "
                "open.",
            ),
        ),
        "SOCIAL_QUESTIONS": (
            (
                "Ben jij een echt persoon?",
                "Ik ben een digitale assistent. Ik beantwoord de meeste vragen over je werk "
                "en vertel je bij wie je terechtkunt als ik het niet weet.",
            ),
            (
                "Spreek je ook Turks?",
                "Ja! Je kunt je vragen stellen in het Nederlands, Engels, Duits of Turks.",
            ),
        ),
        "UNRECOGNIZED_OTHER": (
            (
                "Wat voor weer wordt het morgen?",
                "Sorry, ik help alleen met vragen over je werk. Kan ik nog iets anders voor je doen?",
            ),
            ("Lalalaposie", "Ik begrijp niet helemaal wat je bedoelt. Kun je je vraag anders stellen?"),
        ),
    },
    followups=(
        ("En waar vind ik dat in de app?", "Open de personeelsapp en tik linksboven op het menu."),
        (
            "Oké. Geldt dat ook voor parttimers?",
            "Ja, dezelfde regels gelden voor iedereen, naar rato van je uren.",
        ),
        (
            "En als mijn teamleider op vakantie is?",
            "Dan regelt de vervangend teamleider of de filiaalmanager het.",
        ),
        (
            "Sorry, ik snap het niet.\nKun je het simpeler uitleggen?",
            "Natuurlijk. Kort gezegd: je regelt alles in de app en je teamleider keurt het goed.",
        ),
    ),
    escalations=(
        (
            "Hier heb ik niks aan. Ik wil een manager spreken.",
            "Ik begrijp je frustratie. Ik heb je vraag doorgezet naar een manager; "
            "die neemt zo snel mogelijk contact met je op.",
        ),
    ),
    hr_referrals=(
        (
            "Met wie kan ik hierover praten?",
            "Voor deze vraag kun je contact opnemen met HR via {hr}. Zij kijken naar jouw persoonlijke "
            "situatie.",
        ),
    ),
    closings=(
        ("Dank je, dat helpt!", "Graag gedaan! Fijne dag nog."),
        ("ok bedankt", "Fijn dat ik je kon helpen. Succes met je dienst!"),
    ),
)
