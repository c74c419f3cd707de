# A package on purpose: its conftest.py is then imported as ``store.conftest`` and does not replace the
# root ``conftest`` module that other test folders import ``require`` from.
