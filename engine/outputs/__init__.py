"""Where the music goes: the General MIDI table, sinks, MIDI port, audio stream, recorders, output process."""
