"""`python -m desktop`: the window, or a subcommand of the command line."""

from desktop.cli import main

if __name__ == "__main__":
    main()
