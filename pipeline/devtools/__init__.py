"""Tools for the demo, the tests and the benchmarks: a demo data source and (later) an OpenAI emulator."""
