"""A data frame's MultiIndex comes back as the run made it (issue 21 #1, corpus: xarray_weather).

Stored through Arrow, the index was rebuilt from its level values: levels sorted (``['IA', 'IL', 'IN']`` for
``['IA', 'IN', 'IL']``), codes recomputed, a level's ``freq`` dropped. ``df.index.levels`` showed it, and the frame
hashed unlike the run's, so every cell reading it missed after a restart (``ds.to_dataframe()`` makes such an index).
"""

import pytest

from tests._fresh import RUN, twice

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

MAKE = ("%%lazycache\n" + RUN + "import pandas as pd\n"
        "index = pd.MultiIndex(levels=[pd.date_range('2000-01-01', periods=2, name='time'), ['IA', 'IN', 'IL']],\n"
        "                      codes=[[0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]], names=['time', 'location'])\n"
        "df = pd.DataFrame({'t': [float(i) for i in range(6)]}, index=index)")
READ = "%%lazycache\n" + RUN + "total = df['t'].sum()"
NAMES = ["df.index.levels[1].tolist()", "df.index.levels[0].freq", "[c.tolist() for c in df.index.codes]", "total"]


def test_a_frame_keeps_its_multiindex_and_its_readers_hit_after_a_restart(tmp_path):
    expected, first, again = twice(tmp_path, [MAKE, READ], NAMES)
    assert expected["df.index.levels[1].tolist()"] == "['IA', 'IN', 'IL']"
    assert first["values"] == again["values"] == expected
    assert again["runs"] == 2, "both cells hit in the new kernel"
