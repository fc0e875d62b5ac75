"""Collection rules for the whole repository (doctests of the package included).

``woodbury_sparse.dask`` imports Dask at import time; where Dask is not installed (the
optional ``dask`` extra), its doctests are not collected instead of failing to import.
"""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("dask") else ["woodbury_sparse/dask.py"]
