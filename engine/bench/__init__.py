"""``affetto bench``: benchmarks of the composer, engine, server, steering and synth."""
