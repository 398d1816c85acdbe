"""The composer runtime: batched ONNX Runtime streams, steering, sampling, tonal primers, artifacts."""
