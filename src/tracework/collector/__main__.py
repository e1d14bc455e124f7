"""``python -m tracework.collector [serve options]``: the same ``serve`` command
as ``tracework serve``, without loading the other areas' CLI modules (handy in
containers that ship only the collector)."""

from ..cli.collector_cmd import serve

if __name__ == "__main__":
    serve(prog_name="python -m tracework.collector")
