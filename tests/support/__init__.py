"""What the tests share: sandboxes served in-process, the stack, the chaos run, helpers."""
