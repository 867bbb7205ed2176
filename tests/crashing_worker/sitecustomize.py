"""A Ray worker that dies on one file, for tests/test_cluster.py; never part of the product.

The test puts this folder on PYTHONPATH and names the file in CRASH_ON_FILE. Python imports
`sitecustomize` in every process it starts, Ray's workers included, and this one patches
`debrief.cluster.BatchWorker.run` as that module is imported: given the named file, the worker
process exits at once, as a decoder that crashes the interpreter would.
"""

import importlib.abc
import importlib.util
import os
import sys

CRASH_ON = os.environ.get("CRASH_ON_FILE")


class _CrashOnFile(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "debrief.cluster":
            return None
        sys.meta_path.remove(self)  # find the real module, then patch it once it has run
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            run = module.BatchWorker.run

            def crashing(self, job):
                if os.path.basename(job.path) == CRASH_ON:
                    os._exit(1)
                return run(self, job)

            module.BatchWorker.run = crashing

        spec.loader.exec_module = exec_module
        return spec


if CRASH_ON:
    sys.meta_path.insert(0, _CrashOnFile())
