"""The command center's I/O: report intake and routing, Tagana mobilisation; the pure rules are in ews.command."""
