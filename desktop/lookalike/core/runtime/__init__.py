"""Running models: ONNX Runtime sessions, downloads, model caches, small numpy nets."""
