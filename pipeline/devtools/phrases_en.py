"""English chat phrases for the demo generator: a staff member asking the company's HR assistant."""

from __future__ import annotations

from pipeline.devtools.phrasebook import Phrasebook

__all__ = ["PHRASEBOOK"]

PHRASEBOOK = Phrasebook(
    language="en",
    labels=("english", "english", "English"),
    greetings=("Hi", "Hello", "Good morning", "Good day", "hey", "hi there", "Hello, I have a question"),
    greeting_replies=(
        "Hello! How can I help you today?",
        "Hi! What can I do for you?",
        "Good day! Ask me anything about your work, your schedule or your contract.",
    ),
    topics={
        "SCHEDULE_HOURS": (
            (
                "When is my next shift?",
                "You can find your schedule in the staff app under 'My schedule'. "
                "Schedules for the next two weeks are published every Thursday.",
            ),
            (
                "Can I swap my Saturday shift with a colleague?",
                "Yes, you can swap shifts in the staff app:\n1. Open 'My schedule'\n"
                "2. Tap the shift and choose 'Swap'\n3. Your team leader approves the swap",
            ),
            (
                'My schedule says "off" on Friday, but my manager says I work. Which is right?',
                "The schedule in the app is leading. If it is wrong, ask your team leader to correct it.",
            ),
        ),
        "LEAVE_VACATION": (
            (
                "How many vacation days do I have left?",
                "Your remaining leave is shown in the staff app under 'Leave'. "
                "Days you requested that are not approved yet are already deducted.",
            ),
            (
                "How do I request a day off for next month?",
                "Request leave in the staff app at least two weeks in advance. "
                "Your team leader approves or declines it within five working days.",
            ),
        ),
        "SICK_LEAVE_RECOVERY": (
            (
                "I'm sick, what do I need to do?",
                "Sorry to hear that! Call your store manager before your shift starts "
                "and register your sick report in the staff app. Get well soon.",
            ),
            (
                "Hello,\nI was sick last week, do I need a doctor's note?",
                "No, you don't need a doctor's note for a short illness. "
                "Just report back to your team leader when you are better.",
            ),
            (
                "I have been ill for two weeks, when will the company doctor contact me?",
                "After two weeks of illness the occupational health service contacts you to plan a "
                "consultation.",
            ),
        ),
        "SALARY_COMPENSATION": (
            (
                "When do I get paid this month?",
                "Salaries are paid on the 25th of every month. If the 25th is in a "
                "weekend, you are paid on the "
                "Friday before.",
            ),
            (
                "Do I get extra pay for working on Sunday?",
                "Yes, hours worked on Sundays and public holidays are paid at 150%. "
                "The extra pay is on the payslip of the following month.",
            ),
            (
                "My payslip shows fewer hours than I worked, can you check that?",
                "I can't see individual payslips. Check your registered hours in the app; "
                "if they are wrong, ask your team leader to correct them before the 15th.",
            ),
        ),
        "CONTRACT_HOURS": (
            (
                "Can I work more hours than in my contract?",
                "Extra hours are possible when your team needs them. "
                "Talk to your team leader; hours above your contract are paid as overtime.",
            ),
            (
                'Hi, I have a "flex" contract. Am I allowed to refuse a shift?',
                "With a flexible contract you can decline a shift, but please do "
                "so at least four days ahead.",
            ),
        ),
        "ONBOARDING": (
            (
                "It's my first day tomorrow, where do I need to go?",
                "Welcome to the team! Report to the staff entrance at 08:45 and ask for your buddy. "
                "Bring your ID and your bank details.",
            ),
            (
                "Which trainings do I have to finish in my first week?",
                "In your first week you complete:\n- the food safety e-learning\n- the checkout training\n"
                "- the fire safety instruction\nYou find them in the app under 'Learning'.",
            ),
        ),
        "OFFBOARDING": (
            (
                "I want to resign, how much notice do I need to give?",
                "The notice period is one month, starting on the first day of the next month. "
                "Hand in your resignation in writing to your store manager.",
            ),
            (
                "What happens to my remaining leave days when I leave?",
                "Leave days you have not taken are paid out with your final salary.",
            ),
        ),
        "WORKWEAR_STAFF_PASS": (
            (
                "I lost my staff pass, how do I get a new one?",
                "You can request a new staff pass at the service desk. A replacement costs 10 euros.",
            ),
            (
                "Where can I get a new uniform? Mine is too small.",
                "Ask your team leader for a workwear order form. New clothing arrives at your store within a "
                "week.",
            ),
        ),
        "TEAM_CONTACTS": (
            (
                "Who is my team leader?",
                "Your team leader is listed in the staff app under 'My team', together with their phone "
                "number.",
            ),
            (
                "How can I reach the store manager?",
                "You can reach the store manager on the store phone or through the chat in the staff app.",
            ),
        ),
        "PERSONAL_QUESTIONS": (
            (
                "I'm moving house, how do I change my address?",
                "You can change your address in the staff app under 'My details'. "
                "The change is processed within two working days.",
            ),
            (
                "Can I change my bank account number?",
                "Yes, update it under 'My details'. Changes after the 15th take effect the month after.",
            ),
        ),
        "ACCESS_LOGIN": (
            (
                "I can't log in to the staff app, it says my password is wrong.",
                "Use 'Forgot password' on the login screen; you get a reset link by text message. "
                "Still not working? Contact the IT service desk.",
            ),
            (
                "My account is locked, what should I do?",
                "Your account is locked after five failed attempts. It unlocks by itself after 30 minutes.",
            ),
        ),
        "SOCIAL_QUESTIONS": (
            (
                "Are you a real person?",
                "I'm a digital assistant. I can answer most questions about your work, "
                "and I tell you whom to contact when I can't.",
            ),
            (
                "Do you also speak Turkish?",
                "Yes! You can ask me your questions in English, Dutch, German or Turkish.",
            ),
            ("How are you doing today?", "I'm doing great, thanks for asking! What can I do for you?"),
        ),
        "UNRECOGNIZED_OTHER": (
            (
                "What's the weather like tomorrow?",
                "Sorry, I can only help with questions about your work. Is there anything else I can do for "
                "you?",
            ),
            ("lalala", "I'm not sure what you mean. Could you rephrase your question?"),
            ("test", "Hello! I'm here. What would you like to know?"),
        ),
    },
    followups=(
        (
            "And where do I find that in the app?",
            "Open the staff app and tap the menu at the top left; you find it there.",
        ),
        (
            "Okay. Is that the same for part-timers?",
            "Yes, the same rules apply to everyone, in proportion to your contract hours.",
        ),
        (
            "What if my team leader is on holiday?",
            "Then the deputy team leader or the store manager handles it.",
        ),
        ("Is there a form for that?", "No form is needed; everything goes through the staff app."),
        (
            "Sorry, I don't get it.\nCan you explain it more simply?",
            "Of course. In short: everything is arranged in the staff app, and your team leader approves it.",
        ),
    ),
    escalations=(
        (
            "This doesn't help at all. I want to speak to a manager.",
            "I understand your frustration. I have passed your request on to a manager, "
            "who will contact you as soon as possible.",
        ),
        (
            "I already asked this three times, I want to speak to a manager now!",
            "I'm sorry this took so long. I have escalated your question to the store manager.",
        ),
    ),
    hr_referrals=(
        (
            "Who can I talk to about this?",
            "For this question please contact HR at {hr}. They can look at your personal situation.",
        ),
        (
            "Is there someone who can look at my case?",
            "Yes, please contact HR at {hr} or call the HR service line on working days between 9 and 17.",
        ),
    ),
    closings=(
        ("Thanks, that helps!", "You're welcome! Have a nice day."),
        ("ok thank you", "Glad I could help. Good luck with your shift!"),
        ("Great, bye", "Bye! Come back any time if you have more questions."),
    ),
)
