"""Persistence: the models, engines and sessions, the claim helper and the migrations."""
