"""The built-in synth: the API, its state layout, shared DSP, a voice per instrument, the kernel.

Reading order: :mod:`~engine.synth.polysynth` (the Python API: :class:`~engine.synth.polysynth.Synth`,
:func:`~engine.synth.polysynth.render_midi`), :mod:`~engine.synth.layout` (what every column of the
state arrays means), :mod:`~engine.synth.kernel` (one compiled call per block), :mod:`~engine.synth.events`
(voice allocation, note-on/off), :mod:`~engine.synth.voices` (the instruments) and
:mod:`~engine.synth.dsp` (the small kernels they share).
"""
