"""The app without its faces: everything the CLI and the window do, with no Qt.

:class:`desktop.core.workspace.Workspace` builds and owns the objects below from the settings
and the folders; the faces call it and nothing else builds them. The subpackages follow the
path a file and a question take:

- ``indexing``: scan folders, extract text in a sandboxed child, chunk, embed, store; watch.
- ``storage``: the SQLite file (documents, chunks, vectors, FTS5), its migrations and reads.
- ``embedding``: the sentence embedder (a safetensors folder run by ONNX Runtime).
- ``answering``: retrieve, pick the evidence, prompt, quote, cite, check support, compare.
- ``model``: the GGUF model run by llama.cpp, its chat template, LoRA adapters.
- ``tuning``: train a LoRA adapter on the CPU (a numpy llama), export and check it.
- ``evaluation``: retrieval and answer quality on a labelled dataset.
"""
