"""The token language: vocabulary, grammar, notes <-> tokens, MIDI files."""
