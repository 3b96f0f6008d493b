"""Questions into answers: retrieval, evidence, prompts, quoting, citations, support, compare."""
