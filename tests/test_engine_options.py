"""Each engine option does what it says: optimizers, schedulers, losses, noise, parts trained, caches, saves."""

from __future__ import annotations

import pytest
import torch

from tests.engine_helpers import make_dataset, tiny_config
from trainer.engine.optim import OPTIMIZERS, make_optimizer, make_scheduler, set_train_mode
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora

ADAPTIVE = ("DAdapt", "Prodigy")


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_of_the_schema_builds_and_steps(name):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(32, 32))
    lr = 1.0 if name.startswith(ADAPTIVE) else 1e-2
    opt = make_optimizer(name, [{"params": [w], "lr": lr}], lr)
    set_train_mode(opt, True)
    before = w.detach().clone()
    for _ in range(8):  # RAdam rectification holds the first few steps back
        (w - 1).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    set_train_mode(opt, False)
    # every optimizer moves the weights, DAdaptAdaGrad too (its step size d starts tiny and grows: ~4e-6 here)
    assert (w.detach() - before).abs().max() > 1e-6


def test_schema_optimizer_list_is_the_engine_list():
    from trainer.config import params_by_path

    assert set(params_by_path()["optimizer.optimizer_type"].available_choices()) == set(OPTIMIZERS)


def _lrs(name: str, steps: int = 10, **kw) -> list[float]:
    w = torch.nn.Parameter(torch.zeros(2))
    opt_name = "AdaFactor" if name == "adafactor" else "AdamW"
    opt = make_optimizer(opt_name, [{"params": [w], "lr": 1.0}], 1.0)
    sched = make_scheduler(name, opt, warmup_steps=kw.get("warmup", 0), total_steps=steps,
                           num_cycles=kw.get("cycles", 1), power=kw.get("power", 1.0))
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        w.sum().backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return out


def test_schedulers_shape_the_learning_rate():
    assert _lrs("constant") == [1.0] * 10
    warm = _lrs("constant_with_warmup", warmup=4)
    assert warm[0] == 0.0 and warm[2] == 0.5 and warm[4:] == [1.0] * 6
    linear = _lrs("linear")
    assert linear[0] == 1.0 and linear[5] == pytest.approx(0.5)
    cosine = _lrs("cosine")
    assert cosine[0] == 1.0 and cosine[5] == pytest.approx(0.5) and cosine[-1] < 0.05
    restarts = _lrs("cosine_with_restarts", cycles=2)
    assert restarts[4] < 0.2 and restarts[5] == pytest.approx(1.0)  # back up at the start of cycle 2
    poly = _lrs("polynomial", power=2.0)
    assert poly[5] < linear[5]
    assert len(_lrs("adafactor")) == 10


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from trainer.models.tiny import build_tiny_sd15

    path = tmp_path_factory.mktemp("model") / "tiny"
    build_tiny_sd15(seed=0, four_level=True).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)  # 2 images x 5 repeats / batch 2 = 5 steps


def run(tiny_model, data, tmp_path, **overrides):
    """Train in <tmp_path>/runs/run, so the model and text caches land in <tmp_path>/models."""
    cfg = tiny_config(tiny_model, data, **{"training__max_train_epochs": 1, **overrides})
    run_dir = tmp_path / "runs" / "run"
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    events = read_events(run_dir)[0]
    assert events[-1]["type"] == "finished"
    tensors, _ = read_lora(run_dir / "output" / "t.safetensors")
    return events, tensors


def _modules(tensors) -> set[str]:
    return {k.split(".")[0] for k in tensors}


@pytest.mark.parametrize("overrides", [
    {"optimizer__loss_type": "huber", "optimizer__min_snr_gamma": 5.0},
    {"optimizer__loss_type": "smooth_l1", "noise__noise_offset": 0.05},
    {"optimizer__loss_type": "l1", "noise__multires_noise_iterations": 3},
    {"model__v_parameterization": True, "speed__sdpa": False},
    {"other__clip_skip": 2, "speed__cache_latents": False, "augment__color_aug": True,
     "augment__random_crop": True, "augment__flip_aug": True, "caption__caption_tag_dropout_rate": 0.5},
    {"optimizer__optimizer_type": "Prodigy", "optimizer__learning_rate": 1.0},
    {"optimizer__optimizer_type": "RAdamScheduleFree"},
    {"optimizer__optimizer_type": "AdamW8bit", "training__gradient_checkpointing": True},
])
def test_options_train_and_change_the_weights(tiny_model, data, tmp_path, overrides):
    events, tensors = run(tiny_model, data, tmp_path, **overrides)
    losses = [e["loss"] for e in events if e["type"] == "progress"]
    assert len(losses) == 5 and all(0 < v < 10 for v in losses)
    assert any(k.endswith("lora_up.weight") and t.abs().sum() > 0 for k, t in tensors.items())


def test_gradient_accumulation_counts_optimizer_steps(tiny_model, data, tmp_path):
    events, _ = run(tiny_model, data, tmp_path, training__gradient_accumulation_steps=2)
    assert next(e for e in events if e["type"] == "started")["total_steps"] == 3  # ceil(5 batches / 2)
    assert [e["step"] for e in events if e["type"] == "progress"] == [1, 2, 3]


def test_unet_only_with_cached_text_encoder_outputs_on_disk(tiny_model, data, tmp_path):
    events, tensors = run(tiny_model, data, tmp_path, training__network_train_unet_only=True,
                          speed__cache_text_encoder_outputs_to_disk=True)
    assert all(m.startswith("lora_unet_") for m in _modules(tensors))
    cached = list((tmp_path / "models" / "text-encoder-cache").glob("*.safetensors"))
    assert len(cached) == 2  # one per distinct caption


def test_text_encoder_only_and_separate_learning_rates(tiny_model, data, tmp_path):
    events, tensors = run(tiny_model, data, tmp_path, training__network_train_text_encoder_only=True,
                          optimizer__text_encoder_lr=5e-4)
    assert all(m.startswith("lora_te_") for m in _modules(tensors))
    assert next(e for e in events if e["type"] == "progress")["lr"] == {"text_encoder": 5e-4}


def test_conv_dim_adds_locon_modules(tiny_model, data, tmp_path):
    _, tensors = run(tiny_model, data, tmp_path, network__conv_dim=2, network__conv_alpha=1.0)
    conv = [k for k in tensors if "resnets" in k and k.endswith("conv1.alpha")]
    assert conv and all(tensors[k].item() == 1.0 for k in conv)


def test_network_weights_continue_from_a_file(tiny_model, data, tmp_path):
    _, first = run(tiny_model, data, tmp_path / "a")
    src = tmp_path / "a" / "runs" / "run" / "output" / "t.safetensors"
    # A rate of 1e-12 moves no weight visibly (a rate of 0 is refused), so the file must equal its start.
    _, second = run(tiny_model, data, tmp_path / "b", network__network_weights=str(src),
                    optimizer__learning_rate=1e-12)
    assert first.keys() == second.keys()
    for k in first:
        assert torch.allclose(first[k], second[k]), k


def test_step_saves_keep_only_the_last_n(tiny_model, data, tmp_path):
    events, _ = run(tiny_model, data, tmp_path, training__max_train_epochs=2, save__save_every_n_steps=2,
                    save__save_last_n_steps=4, save__save_every_n_epochs=0)
    names = sorted(p.name for p in (tmp_path / "runs" / "run" / "output").glob("*.safetensors"))
    assert names == ["t-step00000006.safetensors", "t-step00000008.safetensors", "t.safetensors"]


def test_regularisation_images_join_each_epoch(tiny_model, data, tmp_path):
    reg = make_dataset(tmp_path / "reg", n=3, folder="1_person")
    events, _ = run(tiny_model, data, tmp_path, dataset__reg_data_dir=str(reg), dataset__prior_loss_weight=0.5)
    started = next(e for e in events if e["type"] == "started")
    assert started["steps_per_epoch"] == 10  # 10 train + 10 balanced reg images, batch 2


def test_tensorboard_dir_follows_logging_settings(tiny_model, data, tmp_path):
    run(tiny_model, data, tmp_path, logging__logging_dir=str(tmp_path / "logs"), logging__log_prefix="p-",
        logging__log_tracker_name="mine")
    assert list((tmp_path / "logs" / "p-mine").glob("events.out.tfevents.*"))


def test_unet_only_run_continues_from_a_full_lora_and_says_what_it_left_out(tiny_model, data, tmp_path):
    _, full = run(tiny_model, data, tmp_path / "a")
    src = tmp_path / "a" / "runs" / "run" / "output" / "t.safetensors"
    events, unet_only = run(tiny_model, data, tmp_path / "b", network__network_weights=str(src),
                            optimizer__learning_rate=1e-12, training__network_train_unet_only=True)
    assert set(unet_only) == {k for k in full if k.startswith("lora_unet_")}
    assert all(torch.allclose(full[k], unet_only[k]) for k in unet_only)
    assert any("left out" in e["message"] for e in events if e["type"] == "warning")


def test_pruning_never_touches_files_of_other_runs(tiny_model, data, tmp_path):
    shared = tmp_path / "loras"
    shared.mkdir()
    foreign = shared / "t-000010.safetensors"  # an older run's epoch file that sorts after ours
    foreign.write_bytes(b"not ours")
    cfg = tiny_config(tiny_model, data, training__max_train_epochs=3, save__output_dir=str(shared),
                      save__save_last_n_epochs=1)
    assert train(cfg, tmp_path / "runs" / "run") == 0
    assert foreign.read_bytes() == b"not ours"
    assert sorted(p.name for p in shared.glob("*.safetensors")) == [
        "t-000002.safetensors", "t-000010.safetensors", "t.safetensors"]


def test_trigger_word_goes_on_training_captions_only():
    from trainer.data.scan import ImageItem
    from trainer.engine.build import with_trigger

    items = [ImageItem("a.png", "red hair", 5, "5_zk", "zk", False, 64, 64),
             ImageItem("b.png", "zk, smile", 5, "5_zk", "zk", False, 64, 64),
             ImageItem("r.png", "person", 1, "1_person", "person", True, 64, 64)]
    assert [it.caption for it in with_trigger(items, "zk")] == ["zk, red hair", "zk, smile", "person"]


def test_v_parameterization_sets_the_prediction_type_previews_use():
    from diffusers import DDPMScheduler

    from trainer.engine.build import _prediction_scheduler

    warnings = []
    sched = _prediction_scheduler(DDPMScheduler(), True, lambda *a: warnings.append(a))
    assert sched.config.prediction_type == "v_prediction" and warnings
    assert _prediction_scheduler(DDPMScheduler(), False, lambda *a: warnings.append(a)).config.prediction_type \
        == "epsilon"


def test_noise_and_loss_options_reach_every_step(tiny_model, data, tmp_path, monkeypatch):
    """The option runs above only show that training still works; this shows the values are really used."""
    from trainer.engine import loop, noise

    seen = {"noise": [], "loss": [], "snr": [], "target": []}

    def spy(name, real):
        def wrapped(*args, **kwargs):
            seen[name].append((args, kwargs))
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(noise, "sample_noise", spy("noise", noise.sample_noise))
    monkeypatch.setattr(noise, "per_sample_loss", spy("loss", noise.per_sample_loss))
    monkeypatch.setattr(noise, "min_snr_weights", spy("snr", noise.min_snr_weights))
    monkeypatch.setattr(noise, "training_target", spy("target", noise.training_target))
    assert loop.noise_lib is noise
    run(tiny_model, data, tmp_path, noise__multires_noise_iterations=3,
        noise__multires_noise_discount=0.4, optimizer__loss_type="huber", optimizer__huber_c=0.2,
        optimizer__huber_schedule="none", optimizer__min_snr_gamma=5.0, model__v_parameterization=True)
    assert len(seen["noise"]) == 5
    assert all(kw == {"offset": 0.0, "multires_iterations": 3, "multires_discount": 0.4, "adaptive_scale": 0.0,
                      "random_strength": False, "channel_mean": None} for _, kw in seen["noise"])
    assert all(args[2:] == ("huber", 0.2, "none", None) for args, _ in seen["loss"])  # None: no alpha mask
    assert all(args[2:] == (5.0, True) for args, _ in seen["snr"])
    assert all(args[4] is True for args, _ in seen["target"])  # v-prediction targets


def test_adaptive_and_random_noise_offset_reach_the_noise(tiny_model, data, tmp_path, monkeypatch):
    from trainer.engine import loop, noise

    seen = []
    real = noise.sample_noise
    monkeypatch.setattr(noise, "sample_noise", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    assert loop.noise_lib is noise
    run(tiny_model, data, tmp_path, noise__noise_offset=0.05, noise__adaptive_noise_scale=0.02,
        noise__noise_offset_random_strength=True)
    assert len(seen) == 5 and all(kw["adaptive_scale"] == 0.02 and kw["random_strength"] is True for kw in seen)


def test_input_perturbation_reaches_the_input_not_the_target(tiny_model, data, tmp_path, monkeypatch):
    """ip_noise_gamma: each step's model input is made from noise + perturbation, its target from the noise alone."""
    from trainer.families.base import Family

    calls = []
    real = Family.noisy_input_and_target
    monkeypatch.setattr(Family, "noisy_input_and_target",
                        lambda self, sched, latents, noise, t, v: calls.append(noise.clone()) or real(self, sched, latents,
                                                                                                     noise, t, v))
    run(tiny_model, data, tmp_path, noise__ip_noise_gamma=0.5)
    assert len(calls) == 10  # two a step: the target's noise, then the input's
    for plain, perturbed in zip(calls[::2], calls[1::2], strict=True):
        assert 0.3 < (perturbed - plain).std().item() < 0.7  # about 0.5 of a standard normal more


def test_debiased_estimation_weights_every_steps_loss(tiny_model, data, tmp_path, monkeypatch):
    from trainer.engine import noise

    seen = []
    real = noise.debiased_weights
    monkeypatch.setattr(noise, "debiased_weights", lambda *a, **kw: seen.append(a) or real(*a, **kw))
    run(tiny_model, data, tmp_path, optimizer__debiased_estimation_loss=True)
    assert len(seen) == 5


def test_the_timestep_range_reaches_every_draw(tiny_model, data, tmp_path, monkeypatch):
    from trainer.families.base import Family

    seen = []
    real = Family.sample_timesteps
    monkeypatch.setattr(Family, "sample_timesteps",
                        lambda self, sched, like, **kw: seen.append(kw) or real(self, sched, like, **kw))
    run(tiny_model, data, tmp_path, noise__min_timestep=100, noise__max_timestep=600)
    assert seen == [{"low": 100, "high": 600}] * 5


def test_a_pytorch_scheduler_class_sets_each_steps_rate(tiny_model, data, tmp_path):
    events, _ = run(tiny_model, data, tmp_path, optimizer__lr_scheduler_type="StepLR",
                    optimizer__lr_scheduler_args=["step_size=1", "gamma=0.5"], optimizer__lr_scheduler="constant")
    rates = [next(iter(e["lr"].values())) for e in events if e["type"] == "progress"]
    assert rates == pytest.approx([1e-3 * 0.5 ** i for i in range(1, 6)]), rates  # halved after every step


def test_noise_helpers_do_what_their_names_say():
    from diffusers import DDPMScheduler

    from trainer.engine import noise

    torch.manual_seed(0)
    latents = torch.zeros(64, 4, 8, 8)
    plain = noise.sample_noise(latents, offset=0.0, multires_iterations=0, multires_discount=0.3)
    shifted = noise.sample_noise(latents, offset=0.5, multires_iterations=0, multires_discount=0.3)
    # the offset adds one constant per image and channel: the spread of channel means grows
    assert shifted.mean(dim=(2, 3)).std() > 3 * plain.mean(dim=(2, 3)).std()
    pyramid = noise.sample_noise(latents, offset=0.0, multires_iterations=3, multires_discount=0.8)
    assert abs(pyramid.std().item() - 1.0) < 1e-4  # renormalised
    pred, target = torch.zeros(2, 4, 8, 8), torch.full((2, 4, 8, 8), 3.0)
    assert noise.per_sample_loss(pred, target, "l2", 0.1).tolist() == [9.0, 9.0]
    assert noise.per_sample_loss(pred, target, "l1", 0.1).tolist() == [3.0, 3.0]
    assert noise.per_sample_loss(pred, target, "huber", 1.0, "none").tolist() == [2.5, 2.5]  # delta(|x| - delta/2)
    sched = DDPMScheduler()
    t = torch.tensor([10, 990])
    w = noise.min_snr_weights(sched, t, 5.0, v_prediction=False)
    assert w[0] < 1.0 and w[1] == 1.0  # low-noise step capped, high-noise step untouched


def test_sd_scripts_pseudo_huber_and_its_schedules_match_known_values():
    """sd-scripts' form: 2c(sqrt(d^2 + c^2) - c) for huber, 2(sqrt(d^2 + c^2) - c) for smooth_l1, with c per
    sample from huber_schedule. Expected numbers worked out by hand from those formulas."""
    from diffusers import DDPMScheduler

    from trainer.engine import noise

    pred, target = torch.zeros(2, 4, 2, 2), torch.ones(2, 4, 2, 2)  # d = 1 everywhere
    c = torch.tensor([0.5, 2.0])
    huber = noise.per_sample_loss(pred, target, "huber", c, "constant")
    assert torch.allclose(huber, torch.tensor([0.6180340, 4 * (5 ** 0.5 - 2)]), atol=1e-6)  # 1.25**.5 - .5
    smooth = noise.per_sample_loss(pred, target, "smooth_l1", c, "constant")
    assert torch.allclose(smooth, torch.tensor([1.2360680, 2 * (5 ** 0.5 - 2)]), atol=1e-6)
    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    t = torch.tensor([0, 500, 1000 - 1])
    const = noise.huber_threshold(sched, t, "constant", 0.1, 2.0)
    assert torch.allclose(const, torch.tensor([0.2, 0.2, 0.2]))  # c * scale
    expo = noise.huber_threshold(sched, torch.tensor([0, 500]), "exponential", 0.1, 1.0)
    assert torch.allclose(expo, torch.tensor([1.0, 0.1 ** 0.5]), atol=1e-6)  # c ** (t / 1000)
    snr = noise.huber_threshold(sched, torch.tensor([0]), "snr", 0.1, 1.0)
    sigma = (0.00085 / (1 - 0.00085)) ** 0.5  # alphas_cumprod[0] = 1 - beta_start
    assert torch.allclose(snr, torch.tensor([0.9 / (1 + sigma) ** 2 + 0.1]), atol=1e-5)
    assert noise.huber_threshold(sched, t, "none", 0.3, 1.0) == 0.3  # Danlu's torch form: one fixed c


def test_the_loss_schedule_reaches_every_step(tiny_model, data, tmp_path, monkeypatch):
    from trainer.engine import noise

    seen = []
    real = noise.per_sample_loss
    monkeypatch.setattr(noise, "per_sample_loss", lambda *a: seen.append(a) or real(*a))
    run(tiny_model, data, tmp_path, optimizer__loss_type="smooth_l1", optimizer__huber_c=0.2,
        optimizer__huber_schedule="exponential", optimizer__huber_scale=3.0)
    assert seen and all(a[2] == "smooth_l1" and a[4] == "exponential" for a in seen)
    for a in seen:  # c = scale * c ** (t / 1000): between 0.6 and 3
        assert isinstance(a[3], torch.Tensor) and bool(((a[3] > 0.6 - 1e-6) & (a[3] <= 3.0)).all())


@pytest.mark.parametrize("on", [True, False])
def test_model_and_data_options_reach_the_engine(tiny_model, data, tmp_path, monkeypatch, on):
    """clip_skip, sdpa, gradient checkpointing and the augmentations, each seen where the engine uses it, both
    switched on and off: a run that ignored one of them would show the other value."""
    from trainer.engine import data as engine_data
    from trainer.engine import session as engine_session
    from trainer.families.sd15 import engine as sd15

    seen = {"layers": set(), "dataset": None, "models": None}
    hidden_states, load_models, dataset_cls = sd15.hidden_states, engine_session.load_models, engine_data.DanluDataset

    def spy_hidden(encoder, ids, layer, final_norm):
        seen["layers"].add(layer)
        return hidden_states(encoder, ids, layer, final_norm)

    def spy_load(*args, **kwargs):
        seen["models"] = load_models(*args, **kwargs)
        return seen["models"]

    class SpyDataset(dataset_cls):
        def __init__(self, *args, **kwargs):
            seen["dataset"] = kwargs
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sd15, "hidden_states", spy_hidden)
    monkeypatch.setattr(engine_session, "load_models", spy_load)
    monkeypatch.setattr(engine_data, "DanluDataset", SpyDataset)
    run(tiny_model, data, tmp_path, other__clip_skip=2 if on else 1, speed__sdpa=not on,
        training__gradient_checkpointing=on, speed__cache_latents=False, augment__color_aug=on,
        augment__flip_aug=on, augment__random_crop=on, caption__caption_tag_dropout_rate=0.5 if on else 0.0)
    assert seen["layers"] == ({-2} if on else {-1})  # clip_skip 2: the penultimate layer
    unet = seen["models"].unet
    processors = {type(p).__name__ for p in unet.attn_processors.values()}
    assert processors == ({"AttnProcessor"} if on else {"AttnProcessor2_0"})  # sdpa off: plain attention
    assert unet.is_gradient_checkpointing is on
    assert all(te.is_gradient_checkpointing is on for te in seen["models"].text_encoders)
    d = seen["dataset"]
    assert (d["color_aug"], d["flip_aug"], d["random_crop"]) == (on, on, on)
    assert d["caption_tag_dropout_rate"] == (0.5 if on else 0.0)


def test_clip_skip_takes_an_earlier_layer_through_the_final_norm():
    from transformers import CLIPTextModel

    from trainer.engine.textenc import hidden_states
    from trainer.models.tiny import _clip_config

    torch.manual_seed(0)
    encoder = CLIPTextModel(_clip_config()).eval()
    ids = torch.randint(0, 50, (2, 77))
    with torch.no_grad():
        last, out = hidden_states(encoder, ids, -1, final_norm=True)
        skip2, _ = hidden_states(encoder, ids, -2, final_norm=True)
        norm = getattr(encoder, "text_model", encoder).final_layer_norm
        assert torch.allclose(last, out.last_hidden_state)
        assert torch.allclose(skip2, norm(out.hidden_states[-2]))  # sd-scripts' clip_skip 2 on SD1.x
        assert not torch.allclose(skip2, last, atol=1e-3)
        raw, _ = hidden_states(encoder, ids, -2, final_norm=False)  # SDXL's use: no final norm
        assert torch.allclose(raw, out.hidden_states[-2])


@pytest.mark.parametrize("on", [True, False])
def test_gradient_checkpointing_reaches_the_unet_and_trained_text_encoder(tiny_model, data, tmp_path, on):
    """Both trained parts recompute activations when it is on, neither when it is off; and the switch goes through
    the current transformers call, not the alias it deprecates (a FutureWarning on every run)."""
    import warnings

    from trainer.engine.build import load_models
    from trainer.engine.precision import resolve_precision

    cfg = tiny_config(tiny_model, data, training__gradient_checkpointing=on)
    prec = resolve_precision("no", full_fp16=False, full_bf16=False, no_half_vae=False, device="cpu", warn=print)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        models = load_models(cfg, prec, tmp_path / "models", print, print)
    assert models.unet.is_gradient_checkpointing is on
    assert [te.is_gradient_checkpointing for te in models.text_encoders] == [on]


@pytest.mark.parametrize("te_batch,calls", [(0, [2]), (1, [1, 1])])
def test_text_encoder_outputs_are_cached_text_encoder_batch_size_at_a_time(tiny_model, data, tmp_path, monkeypatch,
                                                                          te_batch, calls):
    """sd-scripts' text_encoder_batch_size: captions encoded that many at a time while caching (0: the training
    batch, as sd-scripts' unset): more at a time is faster, fewer takes less memory (T5-XXL)."""
    from trainer.engine import loop

    sizes: list[int] = []
    real = loop.StepRunner._cached

    def spy(self, captions):
        sizes.append(len(captions))
        return real(self, captions)

    monkeypatch.setattr(loop.StepRunner, "_cached", spy)
    run(tiny_model, data, tmp_path, training__network_train_unet_only=True, speed__cache_text_encoder_outputs=True,
        speed__text_encoder_batch_size=te_batch)
    assert sizes[:len(calls)] == calls  # 2 captions, train_batch_size 2; then one lookup a step
