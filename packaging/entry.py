"""The single-file executable's entry point: what the ``small-yi`` console script runs.

PyInstaller freezes this script (``packaging/small-yi.spec``); everything else it bundles is found from
here and from the spec's list of modules that are imported by name at run time.
"""

from smallyi.cli.main import main

if __name__ == "__main__":
    main()
