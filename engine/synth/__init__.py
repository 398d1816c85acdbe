"""The built-in synth: API, numba kernels, DSP, a voice per instrument."""
