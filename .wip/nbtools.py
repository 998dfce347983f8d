"""Write a notebook from a list of (kind, source) cells, keeping cell ids stable by position."""
import json
import hashlib
import nbformat


def build(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                          "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                          "pygments_lexer": "ipython3", "version": "3.11.7"},
    }
    for i, (kind, source) in enumerate(cells):
        source = source.strip("\n")
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        cell.id = hashlib.sha1(f"{path}:{i}:{source[:40]}".encode()).hexdigest()[:8]
        nb.cells.append(cell)
    nbformat.write(nb, path)
