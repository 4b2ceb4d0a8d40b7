"""Answers you can trust and reuse: checked against the requested format (``validate``),
repaired by asking again (``repair``), and kept in an exact cache (``cache``)."""
