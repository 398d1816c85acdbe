"""The music of one session: conductor, layers, stingers, leitmotifs, percussion, keys, tempo map."""
