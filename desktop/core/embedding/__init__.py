"""The sentence embedder: a sentence-transformers folder's weights run by ONNX Runtime."""
