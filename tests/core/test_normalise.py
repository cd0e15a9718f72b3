import numpy as np
import pytest

from srprep.core.normalise import ScaleParams, inverse_percentile_scale, percentile_scale
from tests.helpers import blob_volume


def test_percentile_scale_maps_percentiles_and_inverts_exactly():
    data = blob_volume()
    scaled, params = percentile_scale(data, lower=1, upper=99, clip=False)
    positive = data[data > 0]
    assert params.low == pytest.approx(np.percentile(positive, 1))
    assert params.high == pytest.approx(np.percentile(positive, 99))
    assert np.percentile(scaled[data > 0], 99) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(inverse_percentile_scale(scaled, params), data, rtol=1e-5, atol=1e-3)


def test_clip_and_dict_round_trip():
    data = np.linspace(0, 100, 1000).reshape(10, 10, 10)
    scaled, params = percentile_scale(data, lower=10, upper=90)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert ScaleParams.from_dict(params.to_dict()) == params


def test_invalid_percentiles():
    with pytest.raises(ValueError):
        percentile_scale(np.ones((3, 3, 3)), lower=50, upper=10)
