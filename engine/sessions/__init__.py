"""Sessions: profiles, the one op dispatcher, the session host, offline render, scripted scenes."""
