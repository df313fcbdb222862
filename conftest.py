"""Collection rules for the whole repository (pytest reads this file before tests/ and minidl/)."""

import importlib.util

# minidl/sklearn.py needs scikit-learn, the optional extra `baselines`. Without it the module
# cannot be imported, so its doctests are not collected (tests/test_sklearn.py skips itself).
collect_ignore = [] if importlib.util.find_spec("sklearn") else ["minidl/sklearn.py"]
