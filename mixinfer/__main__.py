"""``python -m mixinfer``: the ``mixinfer`` command, for environments without the script on PATH."""

from mixinfer.cli import main

if __name__ == "__main__":
    main()
