"""Tune a LoRA adapter on this machine: a numpy llama with its backward pass, export, check."""
