"""``python -m pipeline`` is the ``livedash`` command (used by ``livedash run`` to start its children)."""

from pipeline.cli import main

main()
