"""The "fastest" speed preset turns on what the GPU described runs safely; the defaults stay safe."""

from __future__ import annotations

from trainer.config import TrainConfig
from trainer.config.fastest import GpuInfo, for_gpu
from trainer.config.presets import apply_presets, get_preset

RTX_2080 = GpuInfo("NVIDIA GeForce RTX 2080", (7, 5), 8.0, cpu_count=8)  # Turing: no TF32, no fast bf16
RTX_4090 = GpuInfo("NVIDIA GeForce RTX 4090", (8, 9), 24.0, cpu_count=16)  # Ada (Ampere or newer)
SWITCHES = ("compile_blocks", "fused_optimizer", "channels_last", "tf32", "cudnn_benchmark", "pin_memory")


def switches(cfg: TrainConfig) -> dict:
    s = cfg.speed
    return {**{n: getattr(s, n) for n in SWITCHES}, "read_every": s.loss_read_every_n_steps,
            "workers": s.max_data_loader_n_workers, "precision": s.mixed_precision}


def test_defaults_are_the_safe_settings():
    assert switches(TrainConfig()) == {**dict.fromkeys(SWITCHES, False), "read_every": 1, "workers": 0,
                                       "precision": "bf16"}


def test_no_gpu_gets_only_what_helps_a_cpu():
    on = switches(apply_presets(["fastest"], TrainConfig(), gpu=None))
    assert [n for n in SWITCHES if on[n]] == ["fused_optimizer"]
    assert (on["read_every"], on["workers"]) == (1, 0)


def test_turing_gets_no_tf32_no_compile_and_fp16():
    on = switches(apply_presets(["fastest"], TrainConfig(), gpu=RTX_2080))
    assert [n for n in SWITCHES if on[n]] == ["fused_optimizer", "channels_last", "cudnn_benchmark", "pin_memory"]
    assert (on["precision"], on["workers"], on["read_every"]) == ("fp16", 2, 10)


def test_ampere_or_newer_gets_everything():
    on = switches(apply_presets(["fastest"], TrainConfig(), gpu=RTX_4090))
    assert all(on[n] for n in SWITCHES) and (on["precision"], on["workers"]) == ("bf16", 2)


def test_workers_never_exceed_the_cpus():
    one_cpu = GpuInfo("T4", (7, 5), 16.0, cpu_count=1)
    assert for_gpu(get_preset("fastest").overlay, one_cpu)["speed"]["max_data_loader_n_workers"] == 1


def test_the_preset_detects_this_machine_when_no_gpu_is_given(monkeypatch):
    import trainer.engine.speed as speed

    monkeypatch.setattr(speed, "detect_gpu", lambda: RTX_2080)
    assert apply_presets(["fastest"]).speed.mixed_precision == "fp16"


def test_a_flux_config_gets_only_the_switches_that_apply_to_flux():
    """channels_last is a U-Net (sd15/sdxl) switch: the preset must not turn a valid Flux config invalid."""
    from trainer.config.rules import check

    flux = TrainConfig.model_validate({"model": {"family": "flux"}})
    cfg = apply_presets(["fastest"], flux, gpu=RTX_4090)
    assert [f.field for f in check(cfg) if f.field.startswith("speed.")] == []
    assert cfg.speed.compile_blocks and cfg.speed.fused_optimizer and not cfg.speed.channels_last


def test_compile_blocks_with_fp8_base_is_refused_and_the_preset_leaves_it_off():
    """Compiled blocks with the fp8-stored base failed in the first backward (a compiled Linear's backward read
    the fp8 weight: "expected m1 and m2 to have the same dtype, float != Float8_e4m3fn")."""
    from trainer.config.rules import check

    fp8 = TrainConfig.model_validate({"model": {"family": "flux"}, "speed": {"fp8_base": True}})
    both = fp8.model_copy(update={"speed": fp8.speed.model_copy(update={"compile_blocks": True})})
    assert [f.level for f in check(both) if f.field == "speed.compile_blocks"] == ["error"]
    cfg = apply_presets(["fastest"], fp8, gpu=RTX_4090)
    assert cfg.speed.fp8_base and not cfg.speed.compile_blocks and cfg.speed.fused_optimizer


def test_the_preset_keeps_a_precision_the_config_is_tied_to():
    """full_fp16 / full_bf16 need their own mixed_precision, and fused_backward_pass cannot take fp16: the preset's
    precision (bf16, or fp16 on older cards) must not turn such a config invalid."""
    from trainer.config.rules import check

    cases = [({"speed": {"mixed_precision": "fp16", "full_fp16": True}}, RTX_4090),
             ({"speed": {"full_bf16": True}}, RTX_2080),
             ({"model": {"training_type": "dreambooth"}, "optimizer": {"optimizer_type": "AdaFactor"},
               "dreambooth": {"fused_backward_pass": True}}, RTX_2080)]
    for settings, gpu in cases:
        base = TrainConfig.model_validate(settings)
        cfg = apply_presets(["fastest"], base, gpu=gpu)
        assert cfg.speed.mixed_precision == base.speed.mixed_precision and cfg.speed.fused_optimizer
        assert [f.field for f in check(cfg) if f.level == "error" and f.field.startswith(("speed.", "dreambooth."))] == []
