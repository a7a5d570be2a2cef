"""The study's model, both forward passes and both losses, checked against hand computations."""

import math

import pytest
import torch

from pipeline.core.model.vae import VAE, kl_to_standard_normal, loss_terms


def test_shapes_and_parameter_count():
    model = VAE(latent_size=100, hidden_size=392)
    out = model(torch.rand(7, 784))
    assert out.logits.shape == (7, 784) and out.mean.shape == (7, 100) and out.logvar.shape == (7, 100)
    assert model.decode(torch.zeros(3, 100)).shape == (3, 784)
    # 784*392+392 + 2*(392*100+100) + 100*392+392 + 392*784+784
    assert sum(p.numel() for p in model.parameters()) == 307720 + 78600 + 39592 + 308112


def test_bce_loss_equals_hand_computation():
    torch.manual_seed(0)
    logits, x = torch.randn(3, 784), torch.rand(3, 784)
    mean, logvar = torch.randn(3, 5), torch.randn(3, 5) * 0.3
    p = torch.sigmoid(logits).double()
    xd = x.double()
    bce = -(xd * p.log() + (1 - xd) * (1 - p).log()).sum() / 3
    kl = (
        sum(0.5 * (math.exp(lv) + m * m - 1 - lv) for m, lv in zip(mean.flatten().tolist(), logvar.flatten().tolist()))
        / 3
    )
    from pipeline.core.model.vae import ForwardOutput

    terms = loss_terms(ForwardOutput(logits, mean, logvar), x, "bce")
    assert terms.reconstruction.item() == pytest.approx(bce.item(), rel=1e-5)
    assert terms.kl.item() == pytest.approx(kl, rel=1e-5)
    assert terms.total.item() == pytest.approx(bce.item() + kl, rel=1e-5)


def test_mse_loss_is_summed_squared_error_per_image():
    from pipeline.core.model.vae import ForwardOutput

    logits, x = torch.zeros(2, 784), torch.ones(2, 784)
    terms = loss_terms(ForwardOutput(logits, torch.zeros(2, 4), torch.zeros(2, 4)), x, "mse")
    assert terms.reconstruction.item() == pytest.approx(784 * 0.25)  # sigmoid(0) = 0.5 everywhere
    assert terms.kl.item() == 0.0


def test_kl_closed_form_matches_monte_carlo():
    torch.manual_seed(1)
    mean, logvar = torch.tensor([[0.7, -1.2, 0.1]]), torch.tensor([[-0.5, 0.4, -2.0]])
    std = torch.exp(0.5 * logvar)
    z = mean + std * torch.randn(400_000, 3)
    q = torch.distributions.Normal(mean, std)
    prior = torch.distributions.Normal(0.0, 1.0)
    monte_carlo = (q.log_prob(z) - prior.log_prob(z)).sum(-1).mean()
    assert kl_to_standard_normal(mean, logvar).item() == pytest.approx(monte_carlo.item(), abs=0.01)


def test_sampled_params_forward_adds_the_studys_extra_noise():
    torch.manual_seed(2)
    standard = VAE(8, 16, "standard")
    sampled = VAE(8, 16, "sampled-params")
    sampled.load_state_dict(standard.state_dict())
    mean, logvar = torch.zeros(200_000, 1), torch.full((200_000, 1), math.log(0.25))
    z_standard = standard.draw_latent(mean, logvar)
    z_sampled = sampled.draw_latent(mean, logvar)
    assert z_standard.var().item() == pytest.approx(0.25, rel=0.02)
    # mu' ~ N(0, 1); log s'^2 ~ N(log 0.25, 1) so E[s'^2] = 0.25 * e^{1/2}: Var z = 1 + 0.25 e^{0.5}
    assert z_sampled.var().item() == pytest.approx(1 + 0.25 * math.exp(0.5), rel=0.02)


def test_the_forward_pass_decodes_the_mean_plus_sigma_times_its_one_noise_draw():
    """Same seed, same output: the only randomness of the standard forward pass is one N(0, 1) draw
    per latent coordinate, taken from torch's generator after encoding."""
    torch.manual_seed(3)
    model = VAE(10, 20)
    x = torch.rand(4, 784)
    mean, logvar = model.encode(x)
    torch.manual_seed(5)
    out = model(x)
    torch.manual_seed(5)
    eps = torch.randn_like(mean)
    assert torch.equal(out.mean, mean) and torch.equal(out.logvar, logvar)
    assert torch.allclose(out.logits, model.decode_logits(mean + torch.exp(0.5 * logvar) * eps), atol=1e-6)
    torch.manual_seed(5)
    assert torch.equal(model(x).logits, out.logits)
    torch.manual_seed(6)
    assert not torch.allclose(model(x).logits, out.logits)  # another draw, another output


def test_unknown_forward_mode_is_refused():
    with pytest.raises(ValueError, match="forward_mode"):
        VAE(forward_mode="other")
