"""A notebook executed twice, in two separate real kernels (nbclient +
ipykernel): the second run restores instead of running the cached cell."""

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

CELLS = [
    "%load_ext ipy_lazycache\n%matplotlib inline",
    "n = 200",
    "%%lazycache\n"
    "open('runs.txt', 'a').write('run\\n')\n"
    "import matplotlib.pyplot as plt\n"
    "from IPython.display import HTML, display\n"
    "squares = [i * i for i in range(n)]\n"
    "print('sum', sum(squares))\n"
    "display(HTML('<b>bold</b>'))\n"
    "plt.plot(squares)\n"
    "plt.title('squares')\n"
    "len(squares)",
    "print(squares[-1], sum(squares))",
]


def execute(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def visible(cell):
    """A cell's outputs without ipy_lazycache's own status line."""
    out = []
    for o in cell.outputs:
        o = dict(o)
        if o.get("output_type") == "stream":
            o["text"] = "".join(l for l in o["text"].splitlines(True) if not l.startswith("lazycache:"))
            if not o["text"]:
                continue
        if o.get("output_type") == "execute_result":
            o.pop("execution_count", None)
        out.append(o)
    return out


def test_second_kernel_restores_values_and_outputs(tmp_path):
    path = tmp_path / "nb.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbformat.write(nb, path)

    first = execute(path)
    second = execute(path)

    assert (tmp_path / "runs.txt").read_text().count("run") == 1, "the cached body ran twice"
    cached, after = 2, 3
    assert visible(second.cells[cached]) == visible(first.cells[cached])
    assert visible(second.cells[after]) == visible(first.cells[after])
    kinds = {o["output_type"] for o in first.cells[cached].outputs}
    assert {"stream", "display_data", "execute_result"} <= kinds
    assert any("image/png" in o.get("data", {}) for o in second.cells[cached].outputs)
    assert any("text/html" in o.get("data", {}) for o in second.cells[cached].outputs)
    status = "".join(o.get("text", "") for o in second.cells[cached].outputs if o["output_type"] == "stream")
    assert "lazycache: restored" in status


def test_matplotlib_inline_in_a_cached_cell_is_run_again_by_a_hit(tmp_path):
    """`%matplotlib inline` hooks figure drawing into the kernel: a hit must do
    it too, or later plain cells stop showing their figures."""
    cells = [
        "%load_ext ipy_lazycache",
        "%%lazycache\nopen('runs.txt', 'a').write('run\\n')\n%matplotlib inline\nimport matplotlib.pyplot as plt",
        "plt.plot([1, 2, 3]);",
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    first = execute(path)
    second = execute(path)
    assert (tmp_path / "runs.txt").read_text().count("run") == 1
    for nb in (first, second):
        assert any("image/png" in o.get("data", {}) for o in nb.cells[2].outputs), nb.cells[2].outputs
