import pytest
import torch

from engine.flow.sampler import (add_noise, cfg_combine, euler_step, flow_loss, sample_train_t, schedule,
                                 shift_time, velocity_target)


def test_schedule_endpoints_and_shift():
    ts = schedule(4, 1.0)
    assert ts == [1.0, 0.75, 0.5, 0.25, 0.0]
    shifted = schedule(4, 5.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0
    assert shifted[2] == pytest.approx(5 * 0.5 / (1 + 4 * 0.5))
    assert all(a > b for a, b in zip(shifted, shifted[1:]))


def test_oracle_velocity_recovers_x0_in_one_or_many_steps():
    x0, noise = torch.randn(2, 3), torch.randn(2, 3)
    v = velocity_target(x0, noise)
    for steps in (1, 5):
        x = noise.clone()
        ts = schedule(steps, 3.0)
        for t, tn in zip(ts, ts[1:]):
            x = euler_step(x, v, t, tn)
        torch.testing.assert_close(x, x0)


def test_oracle_velocity_has_zero_loss():
    x0, noise = torch.randn(4, 8), torch.randn(4, 8)
    assert flow_loss(velocity_target(x0, noise), x0, noise).item() == 0.0
    assert flow_loss(torch.zeros(4, 8), x0, noise).item() > 0


def test_add_noise_endpoints():
    x0, noise = torch.randn(3), torch.randn(3)
    torch.testing.assert_close(add_noise(x0, noise, torch.tensor(0.0)), x0)
    torch.testing.assert_close(add_noise(x0, noise, torch.tensor(1.0)), noise)


def test_cfg_combine():
    c, u = torch.tensor([3.0]), torch.tensor([1.0])
    assert cfg_combine(c, u, 1.0).item() == 3.0
    assert cfg_combine(c, u, 2.0).item() == 5.0
    assert cfg_combine(c, u, 0.0).item() == 1.0


def test_train_timesteps_in_range():
    t = sample_train_t((10000,), 3.0, torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1
    assert shift_time(torch.tensor(0.5), 3.0) > 0.5 and t.median() > 0.5
