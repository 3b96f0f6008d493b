# PyInstaller run-time hook (packaging/grounded.spec): runs before the app.
#
# On Linux the bootloader puts the app's own folder first on LD_LIBRARY_PATH so the bundled
# libraries are found; every program the app starts would inherit it (xdg-open, xdg-mime,
# the PDF viewer: QDesktopServices and subprocess), load our copies of Qt, ICU, zlib... and
# may fail. The app's own libraries are already resolved by now (the dynamic loader reads the
# variable at start-up only), so the value the user had is put back for child processes.
# The extraction sandbox's child is this same executable, whose bootloader sets it again.
import os

if "LD_LIBRARY_PATH_ORIG" in os.environ:
    os.environ["LD_LIBRARY_PATH"] = os.environ.pop("LD_LIBRARY_PATH_ORIG")
else:
    os.environ.pop("LD_LIBRARY_PATH", None)
