"""Review artefacts for people checking a cycle: risk maps (PNG and offline HTML) of villages and warnings.

:mod:`ews.review.scene` decides what a run's map shows (levels in force, alerts the run ended, who drew each
area, the title, exercises); :mod:`ews.review.riskmap` draws it. Renderers here return bytes or text;
writing them (atomically) is the caller's job at the edge.
"""
