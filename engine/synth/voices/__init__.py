"""The instruments of the built-in synth, a module each.

Each of :mod:`~engine.synth.voices.piano`, :mod:`~engine.synth.voices.pad`,
:mod:`~engine.synth.voices.bass`, :mod:`~engine.synth.voices.pluck` and
:mod:`~engine.synth.voices.drums` has a ``start_*`` kernel, which sets voice ``v`` up at its
note-on, and a ``render_*`` kernel, which adds ``n`` samples of voice ``v`` into ``mix[:, 0:n]``
(planar left, right). Instruments are numbered as in :data:`engine.outputs.gm.INSTRUMENTS`
(:data:`engine.synth.layout.PIANO` ...). Pad and bass share the lane-group oscillators of
:mod:`~engine.synth.voices.oscillators`; the serial renderers end with
:func:`~engine.synth.voices.mix.finish_serial`.

Speed: what has a closed form in the voice's age -- the piano's partials, the pad's and bass's
band-limited saws and sub sine, the drums' noise (a counter-based hash), metal and fixed tone -- is
computed for many samples at once in loops that LLVM vectorises; only filters and envelopes run
sample by sample (a one- or two-FMA dependency per sample). Hot loops index with unsigned
integers (numba adds negative-index wraparound to signed ones) and every kernel uses
``error_model="numpy"`` (no division-by-zero branch): both would block vectorisation. Envelope
stages and voice lifetimes are counted in samples, so per-sample loops carry no comparisons.
"""
