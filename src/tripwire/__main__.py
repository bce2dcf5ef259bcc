"""``python -m tripwire`` and the installed ``tripwire`` command (``main``).

The command's script imports this module, not :mod:`tripwire.cli`: a scan's worker processes are spawned, and
a spawned child re-imports the parent's script as ``__mp_main__``; importing Typer and every command module there
cost each worker ~0.1 s before its first file (issue 12). ``python -m`` children skip the main module altogether.
"""


def main() -> None:
    from tripwire.cli import app

    app(prog_name="tripwire")


if __name__ == "__main__":
    main()
