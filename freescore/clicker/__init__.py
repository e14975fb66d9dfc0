"""RopeScore clicker: counting devices send scores, receivers watch them live.

Spec: shared/specs/clicker.md; user docs: docs/clicker.md.
"""
