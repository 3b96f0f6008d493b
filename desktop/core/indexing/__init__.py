"""Files into the index: scan, extract (in a sandboxed child), chunk, embed, store; watch."""
