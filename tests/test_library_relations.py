"""A def holding an object that lives inside a library instance one of its refs holds (corpus: statsmodels_glm).

``res = sm.GLM(data.endog, ...).fit()``: the fitted model holds ``data.endog`` itself. The store copied it into
the model's blob, so after a restart ``res.model.data.orig_endog is data.endog`` was False, a later change of
``data.endog`` no longer reached the model, and every cell reading both missed (the sharing is in the key).
"""

import pytest

from tests._fresh import RUN, twice

CELLS = ["import collections, types\nns = types.SimpleNamespace(rows=[1, 2])\n"
         "od = collections.OrderedDict(k=[5])",
         "%%lazycache\n" + RUN + "held = (ns.rows, od['k'])",
         "%%lazycache\n" + RUN + "n = len(held[0]) + len(ns.rows)",
         "ns.rows.append(3)\nod['k'].append(6)"]
NAMES = ["held", "held[0] is ns.rows", "held[1] is od['k']", "n"]


@pytest.mark.xfail(strict=True, reason="library-instance-relations (docs/defects-round3.md): a path through a library "
                   "instance's attributes is not in the key and need not exist in another kernel (a logger's)")
def test_a_def_keeps_sharing_an_object_inside_a_library_instance_after_a_restart(tmp_path):
    expected, first, again = twice(tmp_path, CELLS, NAMES)
    assert expected["held"] == "([1, 2, 3], [5, 6])"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cached cells hit in the new kernel"
