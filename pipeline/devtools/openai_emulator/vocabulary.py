"""The emulator's word lists in English, Dutch, German and Turkish, from which the analyst draws its answers.

A keyword is a word or a phrase, written in lower case. A ``*`` at either end of a word stands for any further
letters there: ``sick*`` matches "sickness", ``*schicht*`` matches "Samstagsschicht". Phrases say more than
single words, so the analyst weighs them double.
"""

# Turkish spells with the dotless i (U+0131), which RUF001 takes for a look-alike of i.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CATEGORY_KEYWORDS",
    "CATEGORY_LABELS",
    "ESCALATION_AUTHORITIES",
    "ESCALATION_VERBS",
    "ESCALATION_WORDS",
    "HR_MARKERS",
    "HR_PHRASES",
    "LANGUAGE_MARKERS",
    "LANGUAGE_NAMES",
    "NEGATIVE_WORDS",
    "POSITIVE_WORDS",
]

# The tables read better as dense lines of words than as one word per line.
# fmt: off

#: Stop words and greetings, and for Turkish its own letters. Words two languages share ("de", "is") count for
#: both, which is harmless: only the sum over a whole conversation decides.
LANGUAGE_MARKERS: Mapping[str, tuple[str, ...]] = {
    "en": (
        "the", "a", "an", "i", "you", "is", "are", "do", "does", "my", "me", "to", "of", "and", "it",
        "what", "how", "when", "can", "have", "for", "on", "with", "that", "this", "where", "who", "why",
        "not", "will", "am", "get", "hi", "hello", "hey", "thanks", "thank", "please", "there",
    ),
    "nl": (
        "de", "het", "een", "ik", "je", "jij", "u", "is", "zijn", "mijn", "wat", "hoe", "wanneer", "kan",
        "heb", "hebt", "van", "voor", "op", "met", "niet", "dat", "dit", "waar", "wie", "en", "er", "naar",
        "moet", "ook", "nog", "bij", "als", "krijg", "aan", "wil", "hoi", "goedemorgen", "goedendag",
        "bedankt", "dank", "alsjeblieft",
    ),
    "de": (
        "der", "die", "das", "ich", "du", "ist", "sind", "mein", "meine", "meinen", "meinem", "was", "wie",
        "wann", "kann", "habe", "hat", "von", "für", "auf", "mit", "nicht", "dass", "wo", "wer", "und", "ein",
        "eine", "einen", "einem", "zu", "muss", "auch", "noch", "bei", "wenn", "bin", "mich", "mir", "moin",
        "guten", "danke", "bitte",
    ),
    "tr": (
        "bir", "ve", "bu", "ne", "nasıl", "ben", "sen", "mi", "mı", "mu", "mü", "için", "ile", "da", "de",
        "çok", "var", "yok", "gibi", "kim", "nerede", "zaman", "misin", "mısın", "miyim", "mıyım", "musun",
        "değil", "ama", "hangi", "nereye", "neden", "kaç", "bana", "benim", "merhaba", "selam", "günaydın",
        "teşekkürler", "tamam", "lütfen",
        # Words with letters only Turkish has among the four; stop words alone miss short questions.
        "*ı*", "*ş*", "*ğ*",
    ),
}

LANGUAGE_NAMES: Mapping[str, str] = {"en": "English", "nl": "Dutch", "de": "German", "tr": "Turkish"}

POSITIVE_WORDS: tuple[str, ...] = (
    # English
    "thanks", "thank you", "great", "helpful", "helps", "perfect", "awesome", "excellent", "appreciate*",
    "glad", "happy", "wonderful",
    # Dutch
    "bedankt", "dank je", "dankjewel", "fijn", "geweldig", "prima", "helpt", "perfect", "top", "blij",
    # German
    "danke", "toll", "perfekt", "hilft", "super", "klasse", "wunderbar", "freue*",
    # Turkish
    "teşekkür*", "sağ ol", "sağol", "harika", "süper", "mükemmel", "yardımcı oldu",
)

#: Phrases like "doesn't help" also contain a positive word; weighing phrases double makes them win.
NEGATIVE_WORDS: tuple[str, ...] = (
    # English
    "doesn't help", "not helpful", "useless", "terrible", "awful", "horrible", "angry", "annoy*", "frustrat*",
    "ridiculous", "unacceptable", "disappointed", "worst", "hate", "already asked",
    # Dutch
    "niks aan", "slecht", "boos", "belachelijk", "waardeloos", "teleurgesteld", "irritant", "frustrerend",
    # German
    "hilft mir nicht", "hilft nicht", "schlecht", "ärger*", "wütend", "nutzlos", "lächerlich", "enttäuscht",
    "unverschämt",
    # Turkish
    "yardımcı olmadı", "kötü", "berbat", "rezalet", "saçma", "sinir*", "şikayet*",
)

#: The user asks for escalation when one sentence names someone in charge and a verb of speaking to them...
ESCALATION_AUTHORITIES: tuple[str, ...] = (
    "manager", "supervisor", "boss", "leidinggevende", "vorgesetzt*", "chef", "führungskraft",
    "yönetici*", "müdür*", "amir*",
)
ESCALATION_VERBS: tuple[str, ...] = (
    "speak", "talk", "spreken", "praten", "sprechen", "reden", "konuş*", "görüş*",
)
#: ... or when it says so outright.
ESCALATION_WORDS: tuple[str, ...] = ("escalat*", "escaleer*", "escaleren", "eskalier*", "üst makam*")

#: HR is mentioned, by the user or the assistant. The abbreviations count only in capitals: "hr." is a Dutch
#: title and "ik" the Dutch "I".
HR_MARKERS: tuple[str, ...] = ("HR", "İK", "P&O")
HR_PHRASES: tuple[str, ...] = (
    "human resources", "hr department", "personeelszaken", "hr-afdeling", "personeelsafdeling",
    "personalabteilung", "personalbüro", "hr-abteilung", "insan kaynak*",
)

#: Display labels of the categories, as the dashboard shows them; SOCIAL_QUESTIONS in Title Case.
CATEGORY_LABELS: Mapping[str, str] = {
    "SCHEDULE_HOURS": "Schedule & Hours",
    "LEAVE_VACATION": "Leave & Vacation",
    "SICK_LEAVE_RECOVERY": "Sick Leave & Recovery",
    "SALARY_COMPENSATION": "Salary & Compensation",
    "CONTRACT_HOURS": "Contract & Hours",
    "ONBOARDING": "Onboarding",
    "OFFBOARDING": "Offboarding",
    "WORKWEAR_STAFF_PASS": "Workwear & Staff Pass",
    "TEAM_CONTACTS": "Team & Contacts",
    "PERSONAL_QUESTIONS": "Personal Questions",
    "ACCESS_LOGIN": "Access & Login",
    "SOCIAL_QUESTIONS": "Social Questions",
    "UNRECOGNIZED_OTHER": "General Inquiry",
}

#: Keywords per SessionCategory, in the enum's order, which also breaks ties. UNRECOGNIZED_OTHER has none: it
#: is the answer when nothing matches.
CATEGORY_KEYWORDS: Mapping[str, tuple[str, ...]] = {
    "SCHEDULE_HOURS": (
        "shift*", "schedule*", "roster*", "rota",
        "dienst", "diensten", "rooster*", "werktijd*",
        "*schicht*", "dienstplan*", "arbeitszeit*",
        "vardiya*", "mesai*",
    ),
    "LEAVE_VACATION": (
        "vacation*", "holiday*", "day off", "days off", "time off", "annual leave", "leave day*",
        "vakantie*", "verlof*", "vrije dag*",
        "urlaub*", "freien tag*",
        # Turkish drops a vowel before some endings: izin, iznim.
        "izin*", "izn*", "tatil*", "yıllık izin*", "yıllık izn*",
    ),
    "SICK_LEAVE_RECOVERY": (
        "sick*", "ill", "illness", "doctor*", "unwell", "recover*",
        "ziek*", "dokter*", "huisarts*", "beterschap",
        "krank*", "arzt*", "ärzt*",
        "hasta*", "doktor*", "rapor*", "iyileş*",
    ),
    "SALARY_COMPENSATION": (
        "salary*", "pay", "paid", "payslip*", "payroll", "wage*", "bonus*", "extra pay",
        "salaris*", "loon*", "loonstrook*", "toeslag*", "uitbetaa*",
        "gehalt*", "lohn*", "*zuschlag*", "lohnabrechnung*",
        "maaş*", "ücret*", "bordro*",
    ),
    "CONTRACT_HOURS": (
        "contract*", "flex*", "hours", "part-time*", "full-time*", "overtime",
        "uren", "parttime*", "fulltime*", "overwerk*",
        "vertrag*", "stunden", "teilzeit*", "vollzeit*", "überstunden*",
        "sözleşme*", "kontrat*", "yarı zamanlı*", "tam zamanlı*",
    ),
    "ONBOARDING": (
        "first day", "first week", "onboarding", "training*", "induction", "new starter*",
        "eerste werkdag", "eerste week", "inwerk*", "trainingen",
        "erste* arbeitstag*", "ersten woche", "einarbeitung*", "schulung*",
        "ilk iş gün*", "ilk hafta*", "eğitim*", "oryantasyon*",
    ),
    "OFFBOARDING": (
        "resign*", "notice period", "quit*", "last working day", "when i leave", "leaving the company",
        "remaining leave", "unused leave",
        "ontslag*", "opzeg*", "uit dienst", "laatste werkdag",
        "kündig*", "austritt*", "resturlaub*", "letzte* arbeitstag*",
        "istifa*", "ihbar*", "ayrıl*", "işten çık*", "kullanmadığım izin*",
    ),
    "WORKWEAR_STAFF_PASS": (
        "uniform*", "workwear", "staff pass*", "badge*", "clothing", "shirt*",
        "personeelspas*", "werkkleding*", "pasje",
        "*ausweis*", "*kleidung*",
        "personel kart*", "kart*", "kıyafet*", "üniforma*",
    ),
    "TEAM_CONTACTS": (
        "team leader*", "team lead", "store manager*", "colleague*", "reach",
        "teamleider*", "filiaalmanager*", "collega*", "bereik*",
        "teamleit*", "filialleit*", "kolleg*", "erreich*", "ansprechpartner*",
        "takım lider*", "müdür*", "ulaş*",
    ),
    "PERSONAL_QUESTIONS": (
        "address*", "moving house", "bank account*", "bank details", "personal details", "iban",
        "adres*", "verhuiz*", "rekeningnummer*", "bankrekening*",
        "adresse*", "ziehe um", "umzug*", "bankverbindung*",
        "taşın*", "banka*", "hesap numara*",
    ),
    "ACCESS_LOGIN": (
        "log in", "login*", "logged", "password*", "locked", "sign in", "account*",
        "inlog*", "wachtwoord*", "geblokkeerd", "gebruikersnaam*",
        "passwort*", "einlogg*", "konto*", "gesperrt", "zugang*",
        "giriş*", "şifre*", "parola*", "hesab*", "kilitlen*",
    ),
    "SOCIAL_QUESTIONS": (
        "real person", "human", "robot*", "bot", "how are you", "your name", "do you speak", "you also speak",
        "echt persoon", "echte persoon", "mens", "hoe gaat het", "spreek je",
        "mensch", "bist du", "wie geht*", "sprichst du",
        "gerçek bir insan", "insan mı*", "nasılsın*", "konuşuyor musun",
    ),
}
# fmt: on
