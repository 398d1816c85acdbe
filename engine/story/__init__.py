"""Story text: readers, the text emotion model, arcs, scoring."""
