"""Retrieval and answer quality on a labelled dataset (``grounded eval``)."""
