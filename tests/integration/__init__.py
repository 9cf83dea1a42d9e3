"""Stages and clients against the real broker and the sandboxes, in the test's process."""
