"""The local model: a GGUF file run by llama.cpp, its chat template and its LoRA adapters."""
