"""The game-facing server: a pure protocol core (one op table), the OSC codec, transports."""
