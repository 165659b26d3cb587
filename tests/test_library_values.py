"""Library values are keyed by content, not by which copies share an object (issue 21 #3, corpus: sympy_lecture).

sympy interns what it builds through its cache: an expression made in a run can hold two equal symbols as two
objects, and unpickled in a new kernel the same expression holds one. The key fed an object met again as a
back-reference, so the restored expression keyed unlike the run's and every cell reading it missed after a
restart (``expand(s1 * s2)`` of a lecture's series).
"""

import pytest

from tests._fresh import RUN, twice

pytest.importorskip("sympy")

MAKE = ("%%lazycache\n" + RUN + "from sympy import Symbol\nx = Symbol('x')\n"
        "twin = Symbol.__xnew__(Symbol, 'x')  # equal to x, another object, as sympy's uncached paths make\n"
        "pair = (x**2, twin**3, x + twin)")
READ = "%%lazycache\n" + RUN + "shown = str(pair)"


def test_a_restored_expression_keys_like_the_run_and_its_reader_hits(tmp_path):
    expected, first, again = twice(tmp_path, [MAKE, READ], ["shown"])
    assert expected["shown"] == repr("(x**2, x**3, 2*x)")
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "the reader hit in the new kernel"
