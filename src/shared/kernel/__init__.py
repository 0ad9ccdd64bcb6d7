"""The shared kernel: errors, values, pagination keys, preconditions, ports.

No framework and no driver: import-linter holds it (contract shared-kernel-pure).
"""
