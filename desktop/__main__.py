"""`python -m desktop`: the window, or a subcommand of the command line.

Also the packaged app's entry script (packaging/grounded.spec).
"""

import multiprocessing

if __name__ == "__main__":
    # In the packaged app the extraction sandbox's "spawn" child is this same executable:
    # freeze_support() runs the child's work and exits before the app starts again. (Elsewhere
    # it does nothing.) First thing, before anything heavy is imported.
    multiprocessing.freeze_support()

    from desktop.cli import main

    main()
