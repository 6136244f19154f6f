"""The analysis contract both AI paths share reads no database: prices and the model are passed in."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_the_analysis_contract_loads_no_database_module() -> None:
    # Given a fresh interpreter
    # When it imports every module of pipeline.analysis
    probe = (
        "import json, sys, pkgutil, importlib, pipeline.analysis as a\n"
        "for m in pkgutil.iter_modules(a.__path__): importlib.import_module(f'pipeline.analysis.{m.name}')\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True).stdout)

    # Then neither SQLAlchemy nor any database module of ours was loaded (the enums are plain vocabulary)
    database = [
        name
        for name in loaded
        if name.split(".")[0] in {"sqlalchemy", "psycopg", "psycopg2", "alembic"}
        or (name.startswith("pipeline.db.") and name != "pipeline.db.enums")
    ]
    assert database == []
    assert "pipeline.analysis.pricing" in loaded
