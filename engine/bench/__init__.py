"""``affetto bench``: benchmarks of the composer, engine, server (also under a flood, and in a long
soak), steering and synth."""
