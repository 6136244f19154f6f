"""Model choice: the company's active default model, else the configured one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.models import AIModel, Company, CompanyAIModel
from pipeline.stages.ai_models import choose_model
from tests.analysis.statements import recorded_statements
from tests.factories import make_company

#: The configured model (OPENAI_MODEL); not the seeded company default, so the two are told apart.
CONFIGURED = "gpt-4-turbo"


def use_model(db: Session, company: Company, name: str, *, default: bool) -> AIModel:
    model = db.scalars(select(AIModel).where(AIModel.name == name)).one()
    db.add(CompanyAIModel(company_id=company.id, ai_model_id=model.id, is_default=default))
    db.flush()
    return model


def test_a_company_without_a_default_gets_the_configured_model(db: Session) -> None:
    # Given a company with a model that is not its default
    company = make_company(db)
    use_model(db, company, "gpt-4o", default=False)

    # When I choose its model
    # Then it is the configured one
    assert choose_model(db, company.id, CONFIGURED) == CONFIGURED


def test_a_company_default_model_is_chosen(db: Session) -> None:
    # Given a company whose default is gpt-4o-mini, and another company whose default is gpt-4o
    company = make_company(db, name="Acme")
    use_model(db, company, "gpt-4o", default=False)
    use_model(db, company, "gpt-4o-mini", default=True)
    other = make_company(db, name="Globex")
    use_model(db, other, "gpt-4o", default=True)

    # When I choose each company's model
    # Then each gets its own default
    assert choose_model(db, company.id, CONFIGURED) == "gpt-4o-mini"
    assert choose_model(db, other.id, CONFIGURED) == "gpt-4o"


def test_an_inactive_default_model_falls_back_to_the_configured_one(db: Session) -> None:
    # Given a company whose default model was deactivated (the session is rolled back after the test)
    company = make_company(db)
    model = use_model(db, company, "gpt-4o-mini", default=True)
    model.is_active = False
    db.flush()

    # When I choose its model
    # Then it is the configured one
    assert choose_model(db, company.id, CONFIGURED) == CONFIGURED


def test_the_model_is_chosen_in_one_query(db: Session) -> None:
    # Given a company with a default model
    company = make_company(db)
    use_model(db, company, "gpt-4o-mini", default=True)

    # When I choose its model
    with recorded_statements(db) as statements:
        choose_model(db, company.id, CONFIGURED)

    # Then the database was asked once
    assert len(statements) == 1
