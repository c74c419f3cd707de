"""Review artefacts for people checking a cycle: risk maps (PNG and offline HTML) of villages and warnings.

Renderers here return bytes or text; writing them (atomically) is the caller's job at the edge.
"""
