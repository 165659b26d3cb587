"""A def holding an object that lives inside a library instance one of its refs holds (corpus: statsmodels_glm).

``res = sm.GLM(data.endog, ...).fit()``: the fitted model holds ``data.endog`` itself. The store copied it into
the model's blob, so after a restart ``res.model.data.orig_endog is data.endog`` was False, a later change of
``data.endog`` no longer reached the model, and every cell reading both missed (the sharing is in the key).
"""

from tests._fresh import RUN, twice

CELLS = ["import collections, types\nns = types.SimpleNamespace(rows=[1, 2])\n"
         "od = collections.OrderedDict(k=[5])",
         "%%lazycache\n" + RUN + "held = (ns.rows, od['k'])",
         "%%lazycache\n" + RUN + "n = len(held[0]) + len(ns.rows)",
         "ns.rows.append(3)\nod['k'].append(6)"]
NAMES = ["held", "held[0] is ns.rows", "held[1] is od['k']", "n"]


def test_a_def_keeps_sharing_an_object_inside_a_library_instance_after_a_restart(tmp_path):
    expected, first, again = twice(tmp_path, CELLS, NAMES)
    assert expected["held"] == "([1, 2, 3], [5, 6])"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cached cells hit in the new kernel"


# A logger keys as its name, levels and its handlers' kinds and formats: its handlers' streams (this
# process's stdout) and their own state are not in the key, so a path through them need not lead, in
# another kernel, to what the run left there (a real kernel's stream reaches its session and namespace).
LOGGER_CELLS = ["import logging, sys\nclass Keep(logging.Handler):\n    def __init__(self):\n"
                "        super().__init__()\n        self.records = []\n"
                "    def emit(self, record):\n        self.records.append(record.getMessage())\n"
                "log = logging.getLogger('nb')\nlog.setLevel(logging.INFO)\nout = logging.StreamHandler(sys.stdout)\n"
                "out.setFormatter(logging.Formatter('%(levelname)s %(message)s'))\n"
                "log.addHandler(out)\nlog.addHandler(Keep())",
                "%%lazycache\n" + RUN + "log.info('made')\ngot = log.handlers[1].records\n"
                "fmt = log.handlers[0].formatter",
                "%%lazycache\n" + RUN + "n = len(got) + len(fmt._fmt)"]


def test_a_def_sharing_a_loggers_internals_hits_after_a_restart_with_the_runs_values(tmp_path):
    expected, first, again = twice(tmp_path, LOGGER_CELLS, ["got", "fmt._fmt", "n"])
    assert expected == {"got": "['made']", "fmt._fmt": "'%(levelname)s %(message)s'", "n": "26"}
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cached cells hit in the new kernel"
