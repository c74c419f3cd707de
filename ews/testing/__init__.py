"""Test doubles shipped with the package so tests and ``bench/`` share them; production code never imports this."""
