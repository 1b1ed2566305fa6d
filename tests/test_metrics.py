import numpy as np
import pytest

from stages.metrics import kendall_tau, rankdata, spearman_rho


def test_kendall_tau_b_on_a_hand_counted_example():
    # 5 pairs concordant, 1 discordant, no ties among 4 items: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # one tie in a: tau-b = (C - D) / sqrt((n0 - n1) (n0 - n2)) = 2 / sqrt(2 * 3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(6))


def test_spearman_rho_uses_average_ranks_for_ties():
    np.testing.assert_allclose(rankdata([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
    assert spearman_rho([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
