"""Message texts per language: ``en``, ``zh``, and what they share (``common``)."""
